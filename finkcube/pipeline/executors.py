"""Where the jobs run: this process's threads, or one task per object on a dask cluster.

Both executors run the same loop (:func:`~finkcube.pipeline.run.run_jobs`), so a build or an
update gives the same store whichever runs it. On a cluster each task makes its own client
(``workers`` requests in flight inside the task) and writes its own object's group; only the
calling process creates and finalises the store.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from finkcube.errors import FinkcubeError, InputError
from finkcube.pipeline.jobs import Job
from finkcube.pipeline.report import ObjectResult
from finkcube.pipeline.run import run_jobs
from finkcube.service.client import FinkClient
from finkcube.store import Store, locate

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "Cluster",
    "Executor",
    "Threads",
    "connect",
    "executor_for",
    "refuse_cluster",
    "worker_url",
]

logger = logging.getLogger(__name__)

#: The key of an object's task: ``finkcube-build-ID`` or ``finkcube-update-ID``.
TASK_PREFIX = "finkcube-build"
UPDATE_PREFIX = "finkcube-update"


class Executor(Protocol):
    """Runs jobs against a store and returns one result per job."""

    def run(
        self,
        jobs: Sequence[Job],
        client: FinkClient,
        store: Store,
        progress: bool | None,
    ) -> list[ObjectResult]:
        """Run ``jobs``; ``client`` is the caller's (its URL and settings)."""
        ...

    def close(self) -> None:
        """Release what the executor holds (a cluster connection it opened)."""
        ...


class Threads:
    """Run the jobs here, their requests on the client's bounded pool of threads."""

    def run(
        self,
        jobs: Sequence[Job],
        client: FinkClient,
        store: Store,
        progress: bool | None,
    ) -> list[ObjectResult]:
        """Run every job in this process, in order."""
        return list(run_jobs(jobs, client, store, progress=progress))

    def close(self) -> None:
        """Nothing to release."""


def _job_task(
    job: Job,
    url: str,
    workers: int,
    store: str,
    storage_options: Mapping[str, Any] | None,
) -> ObjectResult:
    """One object's job on a dask worker: its own client, the same loop.

    A failure of this object (the service, its cutouts, the store) is its result, so that
    one object cannot stop the others.
    """
    with FinkClient(url, workers=workers) as client:
        try:
            (result,) = run_jobs([job], client, locate(store, storage_options))
        except FinkcubeError as exc:
            logger.error("diaObjectId %s: %s", job.object_id, exc)
            return ObjectResult(job.object_id, "failed", error=str(exc))
    return result


def connect(scheduler: str | Client) -> tuple[Client, bool]:
    """The dask.distributed client of ``scheduler`` (an address or a client), and whether it
    was made here (and is then the caller's to close).

    Raises
    ------
    InputError
        When dask.distributed is not installed, ``scheduler`` is not an address, or the
        scheduler cannot be reached.
    """
    try:
        from distributed import Client
        from distributed.comm import get_address_host_port
    except ImportError as exc:
        raise InputError(
            "--scheduler needs dask.distributed: pip install 'finkcube[distributed]'"
        ) from exc
    if isinstance(scheduler, Client):
        return scheduler, False
    # The address is checked with distributed's own parser before a client is made: a
    # client whose address does not parse is left half-open by distributed, and its
    # clean-up then hangs at exit and prints a traceback.
    try:
        get_address_host_port(scheduler)
    except ValueError as exc:
        raise InputError(
            f"{scheduler!r} is not a dask scheduler address ({exc}): give tcp://HOST:PORT"
        ) from exc
    try:
        # Waits up to dask's ``distributed.comm.timeouts.connect`` (30 s by default). Not
        # made this process's default client: the tasks are submitted to it by name, and
        # the caller's own dask computations stay on the scheduler they chose.
        return Client(scheduler, set_as_default=False), True
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the dask scheduler at {scheduler!r}: {exc}") from exc


class Cluster:
    """Run one task per object on a dask.distributed cluster.

    Parameters
    ----------
    scheduler : str or distributed.Client
        A scheduler address (``tcp://host:8786``) or a connected client. A client made here
        from an address is closed by :meth:`close`.
    """

    def __init__(self, scheduler: str | Client) -> None:
        self._client, self._own = connect(scheduler)

    def run(
        self,
        jobs: Sequence[Job],
        client: FinkClient,
        store: Store,
        progress: bool | None,
    ) -> list[ObjectResult]:
        """Submit one task per job and wait for all of them (even when one raised).

        Each task gets the store's URL (a local path made absolute: the workers may run
        elsewhere, from another directory) and its storage options, credentials included.
        """
        from distributed import wait

        target = worker_url(store)
        futures = [
            self._client.submit(
                _job_task,
                job,
                client.url,
                client.workers,
                target,
                dict(store.options),
                key=f"{UPDATE_PREFIX if job.merge else TASK_PREFIX}-{job.object_id}",
                pure=False,
            )
            for job in jobs
        ]
        wait(futures)
        return list(self._client.gather(futures))

    def close(self) -> None:
        """Close the cluster connection if it was opened here."""
        if self._own:
            self._client.close()


def worker_url(store: Store) -> str:
    """The store's URL as a worker elsewhere sees it: on local disk the absolute path fsspec
    resolved here (``~`` and this directory are the caller's, not the worker's); else the
    URL as given."""
    return store.root if store.local else store.url


def refuse_cluster(store: Store) -> None:
    """InputError for a store that only one process may write (an Icechunk repository,
    whose one session commits the run): no dask.distributed tasks for it."""
    if not store.shared_writes:
        raise InputError(
            f"{store.url} is written from one process (one commit per run): run without --scheduler"
        )


def executor_for(scheduler: Any, store: Store) -> Executor:
    """:class:`Threads` for None, else a :class:`Cluster` on ``scheduler`` (refused for a
    store that one process only may write)."""
    if scheduler is None:
        return Threads()
    refuse_cluster(store)
    return Cluster(scheduler)
