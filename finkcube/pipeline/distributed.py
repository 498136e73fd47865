"""Scale-out: the per-object work of a build as tasks on a dask.distributed cluster.

The orchestrator (this process) validates the ids, prepares the store, lists the sources
in batches and submits one task per object; each task fetches that object's cutouts on its
own bounded pool, assembles the cube and writes the object's group. The orchestrator alone
finalises the store. The result is the same store as :func:`finkcube.build.build_store`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from finkcube.errors import FinkcubeError, InputError
from finkcube.ids import parse_ids
from finkcube.names import PlanesArg
from finkcube.pipeline.build import BuildReport, ObjectResult, _assemble, _check_planes, _check_size
from finkcube.pipeline.fetch import fetch_objects, list_sources
from finkcube.service.client import FinkClient
from finkcube.store import (
    check_store,
    delete_cube,
    finalize_store,
    init_store,
    list_objects,
    open_cube,
    write_cube,
)

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["build_store_distributed", "update_store_distributed"]

logger = logging.getLogger(__name__)

#: The key of an object's task is ``finkcube-build-ID`` (``finkcube-update-ID``).
TASK_PREFIX = "finkcube-build"
UPDATE_PREFIX = "finkcube-update"


def _build_object_task(
    object_id: int,
    records: list[dict[str, Any]],
    store: str,
    url: str,
    planes: PlanesArg,
    size: int | None,
    columns: Sequence[str] | None,
    workers: int,
    storage_options: Mapping[str, Any] | None,
) -> ObjectResult:
    """Fetch, assemble and write one object's cube (runs on a dask worker).

    A failure of this object (the service, its cutouts, the store) is its result, so that
    one object cannot stop the others; anything else raises.
    """
    with FinkClient(url, workers=workers) as client:
        try:
            for oid, recs, cutouts, missing in fetch_objects(
                client, [(object_id, records)], planes, False
            ):
                cube = _assemble(client, oid, recs, cutouts, planes, size, columns)
                write_cube(cube, store, storage_options=storage_options)
                n = cube.sizes["time"]
                return ObjectResult(oid, "built", n, n, tuple(missing))
        except FinkcubeError as exc:
            logger.error("diaObjectId %s: %s", object_id, exc)
            return ObjectResult(object_id, "failed", error=str(exc))
    raise AssertionError("unreachable: one object planned, none fetched")


def _update_object_task(
    object_id: int,
    records: list[dict[str, Any]],
    store: str,
    url: str,
    planes: PlanesArg,
    workers: int,
    storage_options: Mapping[str, Any] | None,
) -> ObjectResult:
    """Fetch one object's new sources, merge them into its cube, rewrite it (on a worker)."""
    from finkcube.pipeline.update import _merge_and_write

    with FinkClient(url, workers=workers) as client:
        try:
            cube = open_cube(store, object_id, storage_options=storage_options)
            for _, recs, cutouts, missing in fetch_objects(
                client, [(object_id, records)], planes, False
            ):
                return _merge_and_write(cube, recs, cutouts, missing, store, storage_options)
        except FinkcubeError as exc:
            logger.error("diaObjectId %s: %s", object_id, exc)
            return ObjectResult(object_id, "failed", error=str(exc))
    raise AssertionError("unreachable: one object planned, none fetched")


def _wait(futures: list[Any]) -> None:
    from distributed import wait

    wait(futures)


def _connect(scheduler: str | Client) -> tuple[Client, bool]:
    try:
        from distributed import Client
    except ImportError as exc:
        raise InputError(
            "--scheduler needs dask.distributed: pip install 'finkcube[distributed]'"
        ) from exc
    if isinstance(scheduler, Client):
        return scheduler, False
    try:
        # Waits up to dask's ``distributed.comm.timeouts.connect`` (30 s by default).
        return Client(scheduler), True
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the dask scheduler at {scheduler!r}: {exc}") from exc


def _absolute(store: str | os.PathLike[str]) -> str:
    """A local path made absolute (workers may run elsewhere, from another directory)."""
    text = os.fspath(store)
    if "://" in text or "::" in text:
        return text
    return os.path.abspath(text)


def build_store_distributed(
    object_ids: Iterable[int | str],
    store: str | os.PathLike[str],
    *,
    scheduler: str | Client,
    url: str | None = None,
    planes: str = "data",
    size: int | None = None,
    columns: Sequence[str] | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> BuildReport:
    """Build a store like :func:`~finkcube.build.build_store`, one dask task per object.

    This process checks the ids and the store, lists the sources in batches and submits
    one task per object; each task fetches that object's cutouts, assembles its cube and
    writes its group. This process alone creates and finalises the store.

    Parameters
    ----------
    object_ids, store, url, planes, size, columns, overwrite, storage_options
        As for :func:`~finkcube.build.build_store`. A local ``store`` path is made absolute;
        the workers must see the same filesystem (or use an fsspec URL such as ``s3://``).
        ``storage_options`` travel with each task (credentials included).
    scheduler : str or distributed.Client
        A scheduler address (``tcp://host:8786``) or a connected client.
    workers : int, optional
        Concurrent requests inside each task (default 8). The cluster runs several tasks at
        once, so the total is ``workers`` times the tasks running.

    Returns
    -------
    BuildReport
        One result per object, as for a local build.

    Raises
    ------
    InputError
        For a bad id or option, or a scheduler that cannot be reached (nothing is sent).
    StoreError
        When ``store`` holds something other than a finkcube store and ``overwrite`` is
        false (nothing is sent).

    Examples
    --------
    >>> import tempfile
    >>> from distributed import Client, LocalCluster
    >>> from finkcube.emulator import Emulator
    >>> with (
    ...     Emulator() as emu,
    ...     tempfile.TemporaryDirectory() as tmp,
    ...     LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
    ...     Client(cluster) as client,
    ... ):
    ...     ids = [emu.catalog.named("small"), emu.catalog.named("single")]
    ...     report = build_store_distributed(ids, f"{tmp}/c.zarr", scheduler=client, url=emu.url)
    >>> report.count("built")
    2
    """
    started = time.perf_counter()
    ids = parse_ids(object_ids)
    if not ids:
        raise InputError("no diaObjectId given: pass ids or --objects-file")
    checked_planes = _check_planes(planes)
    size = _check_size(size)
    target = _absolute(store)
    resume = check_store(target, storage_options=storage_options, overwrite=overwrite)
    resume = resume and not overwrite
    done = set(list_objects(target, storage_options=storage_options)) if resume else set()
    report = BuildReport(str(store))
    dask_client, own = _connect(scheduler)
    ready = False
    try:
        with FinkClient(url) as lister:
            todo = [oid for oid in ids if oid not in done]
            report.results.extend(ObjectResult(oid, "skipped") for oid in ids if oid in done)
            listed = list_sources(lister, todo, columns) if todo else {}
            plan = [oid for oid in todo if listed[oid]]
            report.results.extend(ObjectResult.unknown(oid) for oid in todo if not listed[oid])
            if not plan and not resume:
                logger.info("%s: nothing to build; nothing written", store)
                report.seconds = time.perf_counter() - started
                return report
            init_store(target, storage_options=storage_options, overwrite=overwrite)
            ready = True
            futures = []
            for oid in plan:
                delete_cube(target, oid, storage_options=storage_options)
                futures.append(
                    dask_client.submit(
                        _build_object_task,
                        oid,
                        listed[oid],
                        target,
                        lister.url,
                        checked_planes,
                        size,
                        columns,
                        workers or 8,
                        storage_options,
                        key=f"{TASK_PREFIX}-{oid}",
                        pure=False,
                    )
                )
            # Every task ends before the store is finalised, even when one of them raised.
            _wait(futures)
            report.results.extend(dask_client.gather(futures))
    finally:
        if ready:
            finalize_store(target, storage_options=storage_options)
        if own:
            dask_client.close()
    report.seconds = time.perf_counter() - started
    return report


def update_store_distributed(
    store: str | os.PathLike[str],
    *,
    scheduler: str | Client,
    url: str | None = None,
    object_ids: Iterable[int | str] | None = None,
    workers: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> BuildReport:
    """Update a store like :func:`~finkcube.update.update_store`, one dask task per object.

    This process reads what each cube holds, lists the sources in batches and submits one
    task per object that has new sources; each task fetches the new cutouts, merges them
    into the cube and rewrites its group. This process alone finalises the store, and
    only when something changed.

    Parameters
    ----------
    store, url, object_ids, storage_options
        As for :func:`~finkcube.update.update_store`; see :func:`build_store_distributed`
        for local paths and ``storage_options``.
    scheduler : str or distributed.Client
        A scheduler address (``tcp://host:8786``) or a connected client.
    workers : int, optional
        Concurrent requests inside each task (default 8).

    Returns
    -------
    BuildReport
        ``updated``, ``unchanged`` or ``failed`` per object, as for a local update.
    """
    from finkcube.pipeline.update import _open_known, _plan_updates, _targets

    started = time.perf_counter()
    target = _absolute(store)
    report = BuildReport(str(store))
    ids = _targets(target, object_ids, storage_options)
    cubes, known = _open_known(target, ids, storage_options, workers or 8)
    first = next(iter(cubes.values()), None)
    default_url = url or (first.attrs.get("api_url") if first is not None else None)
    dask_client, own = _connect(scheduler)
    changed = False
    try:
        with FinkClient(default_url) as lister:
            unchanged, plans = _plan_updates(lister, cubes, known)
            report.results.extend(unchanged)
            futures = [
                dask_client.submit(
                    _update_object_task,
                    oid,
                    records,
                    target,
                    lister.url,
                    planes,
                    workers or 8,
                    storage_options,
                    key=f"{UPDATE_PREFIX}-{oid}",
                    pure=False,
                )
                for planes, plan in plans
                for oid, records in plan
            ]
            changed = bool(futures)
            _wait(futures)
            report.results.extend(dask_client.gather(futures))
    finally:
        if changed:
            finalize_store(target, storage_options=storage_options)
        if own:
            dask_client.close()
    report.seconds = time.perf_counter() - started
    return report
