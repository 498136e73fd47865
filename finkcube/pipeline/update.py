"""Incremental updates: add to the cubes of a store the sources that appeared since.

An update reads what each cube holds (its diaSourceIds, and those known to lack cutouts),
lists the sources of all objects in batches, fetches the cutouts of the new sources only
on one bounded pool, merges them into each cube (time ascending, canvas re-padded when a
new stamp is larger) and rewrites the cubes that changed. A store with nothing new is not
written at all. :func:`finkcube.distributed.update_store_distributed` runs the per-object
part on a dask.distributed cluster.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import xarray as xr

from finkcube.cube.assemble import COLUMNS_ATTR, merge_cubes
from finkcube.errors import FinkcubeError, InputError
from finkcube.ids import parse_ids
from finkcube.names import MISSING_ATTR, SOURCE_ID, PlanesArg, bare_column
from finkcube.pipeline.build import BuildReport, ObjectResult, _check_planes
from finkcube.pipeline.fetch import fetch_objects, list_sources
from finkcube.service.client import FinkClient
from finkcube.service.decode import SourceCutouts
from finkcube.store import finalize_store, list_objects, open_cube, write_cube

__all__ = ["update_store"]

logger = logging.getLogger(__name__)

#: The objects of one fetch: ``(diaObjectId, new source records)``.
Plan = list[tuple[int, list[dict[str, Any]]]]
#: The dask scheduler that reads cubes: this process, even when a dask.distributed client
#: is the default (its workers may not see the store, and the reads are small).
_HERE = "threads"


def _open_known(
    store: str | os.PathLike[str],
    ids: Sequence[int],
    storage_options: Mapping[str, Any] | None,
    workers: int,
) -> tuple[dict[int, xr.Dataset], dict[int, set[int]]]:
    """Open each cube lazily and read the diaSourceIds it holds or knows to lack cutouts.

    Cubes are opened ``workers`` at a time: on an object store each takes a few round trips.
    """

    def known(oid: int) -> tuple[xr.Dataset, set[int]]:
        cube = open_cube(store, oid, storage_options=storage_options)
        ids = {int(s) for s in cube[SOURCE_ID].compute(scheduler=_HERE).values}
        return cube, ids | {int(s) for s in cube.attrs.get(MISSING_ATTR, [])}

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(ids)))) as pool:
        opened = dict(zip(ids, pool.map(known, ids), strict=True))
    return {k: v[0] for k, v in opened.items()}, {k: v[1] for k, v in opened.items()}


def _targets(
    store: str | os.PathLike[str],
    object_ids: Iterable[int | str] | None,
    storage_options: Mapping[str, Any] | None,
) -> list[int]:
    """The objects to update: the given ones, all complete in the store, or all of them."""
    existing = list_objects(store, storage_options=storage_options)
    ids = existing if object_ids is None else parse_ids(object_ids)
    unknown = sorted(set(ids) - set(existing))
    if unknown:
        raise InputError(f"{store}: no complete cube for diaObjectId {unknown[0]}; build it first")
    return ids


def _plan_updates(
    client: FinkClient,
    cubes: Mapping[int, xr.Dataset],
    known: Mapping[int, set[int]],
) -> tuple[list[ObjectResult], list[tuple[PlanesArg, Plan]]]:
    """List every object's sources and keep the new ones.

    Objects built alike (planes, columns) are listed together, in batches. Returns the
    results of the objects with nothing new, and per kind of build the objects to fetch.
    """
    alike: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for oid, cube in cubes.items():
        columns = tuple(bare_column(c) for c in cube.attrs[COLUMNS_ATTR])
        alike.setdefault((cube.attrs.get("planes", "data"), columns), []).append(oid)
    unchanged: list[ObjectResult] = []
    plans: list[tuple[PlanesArg, Plan]] = []
    for (planes, columns), oids in alike.items():
        listed = list_sources(client, oids, list(columns))
        plan: Plan = []
        for oid in oids:
            new = [r for r in listed[oid] if int(r["r:diaSourceId"]) not in known[oid]]
            if new:
                plan.append((oid, new))
            else:
                unchanged.append(ObjectResult(oid, "unchanged", cubes[oid].sizes["time"]))
        if plan:
            plans.append((_check_planes(planes), plan))
    return unchanged, plans


def _merge_and_write(
    cube: xr.Dataset,
    records: list[dict[str, Any]],
    cutouts: Mapping[int, SourceCutouts],
    missing: Sequence[int],
    store: str | os.PathLike[str],
    storage_options: Mapping[str, Any] | None,
) -> ObjectResult:
    """Merge the new sources into a cube and rewrite it; a cube that cannot merge fails."""
    old = cube.load(scheduler=_HERE)
    oid = int(old.attrs["diaObjectId"])
    try:
        merged = merge_cubes(old, records, cutouts, missing=missing)
    except FinkcubeError as exc:
        logger.error("diaObjectId %s: %s", oid, exc)
        return ObjectResult(oid, "failed", error=str(exc))
    write_cube(merged, store, storage_options=storage_options)
    n = merged.sizes["time"]
    logger.info("diaObjectId %s: %d epochs added", oid, n - old.sizes["time"])
    return ObjectResult(oid, "updated", n, n - old.sizes["time"], tuple(missing))


def update_store(
    store: str | os.PathLike[str],
    *,
    client: FinkClient | None = None,
    url: str | None = None,
    object_ids: Iterable[int | str] | None = None,
    workers: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
    progress: bool | None = False,
    scheduler: Any = None,
) -> BuildReport:
    """Add to each cube of a store the sources that appeared since it was built.

    Only the cutouts of sources not yet in a cube are fetched (nor those of sources known
    to lack cutouts); the cube is re-sorted by time (a late source older than the newest
    epoch is placed in order) and re-padded when a new stamp is larger than its canvas.
    An object with nothing new is left untouched, and a store with nothing new is not
    written at all.

    Parameters
    ----------
    store : str or path
        A finkcube store: a local path or an fsspec URL.
    client, workers, storage_options, progress
        As for :func:`~finkcube.build.build_store`.
    url : str, optional
        The API's base URL when no client is given (default: the URL the store's cubes
        were built from).
    object_ids : iterable, optional
        Update only these objects (default: every complete object).
    scheduler : str or distributed.Client, optional
        Run the per-object work as tasks on a dask.distributed cluster; see
        :func:`finkcube.distributed.update_store_distributed`.

    Returns
    -------
    BuildReport
        ``updated``, ``unchanged`` or ``failed`` per object.

    Raises
    ------
    InputError
        For an object with no complete cube in the store.
    StoreError
        When ``store`` is not a finkcube store.

    Examples
    --------
    >>> import tempfile
    >>> from finkcube.pipeline.build import build_store
    >>> from finkcube.emulator import Emulator
    >>> with Emulator() as emu, tempfile.TemporaryDirectory() as tmp:
    ...     oid = emu.catalog.named("small")
    ...     _ = build_store([oid], f"{tmp}/cubes.zarr", url=emu.url)
    ...     _ = emu.catalog.add_sources(oid, 2)
    ...     report = update_store(f"{tmp}/cubes.zarr")
    >>> [(r.status, r.added) for r in report.results]
    [('updated', 2)]
    """
    if scheduler is not None:
        from finkcube.pipeline.distributed import update_store_distributed

        return update_store_distributed(
            store,
            scheduler=scheduler,
            url=client.url if client is not None else url,
            object_ids=object_ids,
            workers=workers,
            storage_options=storage_options,
        )
    started = time.perf_counter()
    report = BuildReport(str(store))
    ids = _targets(store, object_ids, storage_options)
    cubes, known = _open_known(store, ids, storage_options, workers or 8)
    own = client is None
    if client is None:
        first = next(iter(cubes.values()), None)
        default_url = url or (first.attrs.get("api_url") if first is not None else None)
        active = FinkClient(default_url, workers=workers or 8)
    else:
        active = client
    changed = False
    try:
        unchanged, plans = _plan_updates(active, cubes, known)
        report.results.extend(unchanged)
        for planes, plan in plans:
            changed = True  # from here on the store may change
            for oid, recs, cutouts, missing in fetch_objects(active, plan, planes, progress):
                report.results.append(
                    _merge_and_write(cubes[oid], recs, cutouts, missing, store, storage_options)
                )
    finally:
        if changed:  # a store with nothing new is left byte for byte as it was
            finalize_store(store, storage_options=storage_options)
        if own:
            active.close()
    report.seconds = time.perf_counter() - started
    return report
