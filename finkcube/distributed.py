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

from finkcube.build import BuildReport, ObjectResult, _assemble, _check_planes, _check_size
from finkcube.client import FinkClient
from finkcube.errors import FinkcubeError, InputError
from finkcube.fetch import fetch_objects, list_sources
from finkcube.ids import parse_ids
from finkcube.store import delete_cube, finalize_store, init_store, list_objects, write_cube

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["build_store_distributed"]

logger = logging.getLogger(__name__)


def _build_object_task(
    object_id: int,
    records: list[dict[str, Any]],
    store: str,
    url: str,
    planes: str,
    size: int | None,
    columns: Sequence[str] | None,
    workers: int,
    storage_options: Mapping[str, Any] | None,
) -> ObjectResult:
    """Fetch, assemble and write one object's cube (runs on a dask worker)."""
    with FinkClient(url, workers=workers) as client:
        try:
            for oid, recs, cutouts, missing in fetch_objects(
                client,
                [(object_id, records)],
                planes,
                False,  # type: ignore[arg-type]
            ):
                cube = _assemble(client, oid, recs, cutouts, planes, size, columns)  # type: ignore[arg-type]
                write_cube(cube, store, storage_options=storage_options)
                n = cube.sizes["time"]
                return ObjectResult(oid, "built", n, n, tuple(missing))
        except FinkcubeError as exc:
            return ObjectResult(object_id, "failed", error=str(exc))
    raise AssertionError("unreachable: one object planned, none fetched")


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
        return Client(scheduler, timeout="10s"), True
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the dask scheduler at {scheduler!r}: {exc}") from exc


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

    Parameters
    ----------
    object_ids, store, url, planes, size, columns, overwrite, storage_options
        As for :func:`~finkcube.build.build_store`.
    scheduler : str or distributed.Client
        A scheduler address (``tcp://host:8786``) or a connected client.
    workers : int, optional
        Concurrent requests inside each task (default 8). The cluster runs several tasks at
        once, so the total is ``workers`` times the tasks running.

    Returns
    -------
    BuildReport
        One result per object, as for a local build.
    """
    started = time.perf_counter()
    ids = parse_ids(object_ids)
    if not ids:
        raise InputError("no diaObjectId given: pass ids or --objects-file")
    checked_planes = _check_planes(planes)
    size = _check_size(size)
    report = BuildReport(str(store))
    dask_client, own = _connect(scheduler)
    try:
        with FinkClient(url) as lister:
            init_store(store, storage_options=storage_options, overwrite=overwrite)
            done = set(list_objects(store, storage_options=storage_options))
            todo = [oid for oid in ids if oid not in done]
            report.results.extend(ObjectResult(oid, "skipped") for oid in ids if oid in done)
            listed = list_sources(lister, todo, columns)
            futures = []
            for oid in todo:
                if not listed[oid]:
                    report.results.append(
                        ObjectResult(oid, "failed", error="the service lists no source for it")
                    )
                    continue
                delete_cube(store, oid, storage_options=storage_options)
                futures.append(
                    dask_client.submit(
                        _build_object_task,
                        oid,
                        listed[oid],
                        str(store),
                        lister.url,
                        checked_planes,
                        size,
                        columns,
                        workers or 8,
                        storage_options,
                        key=f"finkcube-build-{oid}",
                        pure=False,
                    )
                )
            report.results.extend(dask_client.gather(futures))
    finally:
        finalize_store(store, storage_options=storage_options)
        if own:
            dask_client.close()
    report.seconds = time.perf_counter() - started
    return report
