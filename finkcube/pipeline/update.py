"""Incremental updates: add to the cubes of a store the sources that appeared since.

An update reads what each cube holds (its diaSourceIds, and those it left out), lists the
sources of all objects in batches, fetches the cutouts of the new sources and of the
left-out sources last asked long enough ago (``retry_missing_after``),
merges them into each cube (time ascending, canvas re-padded when a new stamp is larger)
and rewrites the cubes that changed, through the same loop and executors as a build. A store
with nothing new is not written at all.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from finkcube.errors import InputError
from finkcube.names import ALIGNED_WCS_ATTR, URL_ENV
from finkcube.pipeline.completeness import DEFAULT_RETRY_MISSING_AFTER, retry_age
from finkcube.pipeline.executors import executor_for
from finkcube.pipeline.jobs import Job
from finkcube.pipeline.plan import Plan, plan_build, plan_update, stored_url, update_targets
from finkcube.pipeline.report import BuildReport
from finkcube.pipeline.select import Selection, select_objects
from finkcube.service.client import FinkClient
from finkcube.store import (
    Store,
    cube_attributes,
    delete_cube,
    finalize_store,
    list_objects,
    locate,
    repair_store,
)
from finkcube.store.selection import stored_selections

__all__ = ["update_store"]

logger = logging.getLogger(__name__)


def _reselect(client: FinkClient, store: Store, records: list[dict[str, Any]]) -> Plan:
    """Plan the builds of the objects the recorded selections give now that the store lacks."""
    plan = Plan(resume=True)
    if not records:
        return plan
    held = set(list_objects(store))
    for record in records:
        selection = Selection.from_dict(record.get("selection", {}))
        new = [oid for oid in select_objects(client, selection) if oid not in held]
        logger.info("%s: %d new object(s)", selection.describe(), len(new))
        if not new:
            continue
        more = plan_build(
            client, store, new, planes=record.get("planes", "data"), size=record.get("size"),
            columns=record.get("columns"), overwrite=False,
            forced_photometry=bool(record.get("forced_photometry", False)),
            align=record.get("align"),
        )  # fmt: skip
        plan.jobs.extend(more.jobs)
        plan.settled.extend(more.settled)
        held.update(new)
    return plan


def _keep_aligned(store: Store, jobs: list[Job]) -> list[Job]:
    """The jobs, those of aligned cubes marked to align (a ``planes="data"`` one then fetches
    the WCS of its new sources); one read of the stored attributes."""
    attrs = cube_attributes(store, [job.object_id for job in jobs]) if jobs else {}
    aligned = {oid for oid, held in attrs.items() if held.get(ALIGNED_WCS_ATTR)}
    return [replace(job, align="sky") if job.object_id in aligned else job for job in jobs]


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
    reselect: bool = False,
    retry_missing_after: dt.timedelta | float | None = DEFAULT_RETRY_MISSING_AFTER,
) -> BuildReport:
    """Add to each cube of a store the sources that appeared since it was built, and those
    it left out that the service serves now.

    Only the cutouts of sources not yet in a cube are fetched: new ones, and the ones the
    cube lists as left out (``missing_diaSourceIds``) whose last try is at least
    ``retry_missing_after`` old. The cube is re-sorted by time (a late source older than
    the newest epoch is placed in order) and re-padded when a new stamp is larger than its
    canvas; a left-out source served now is filled in place, one still missing gets its
    new reason and time. An object with nothing to fetch is left untouched, and a store
    with nothing to fetch is not written at all.

    Parameters
    ----------
    store : str or path
        A finkcube store: a local path or an fsspec URL.
    client, workers, storage_options, progress
        As for :func:`~finkcube.build.build_store`.
    url : str, optional
        The API's base URL when no client is given; by default ``$FINKCUBE_URL`` when set,
        else the URL the store's cubes were built from.
    object_ids : iterable, optional
        Update only these objects (default: every complete object).
    scheduler : str or distributed.Client, optional
        Run the per-object work as tasks on a dask.distributed cluster, as
        :func:`~finkcube.build_store` does: one task per object with new sources.
    reselect : bool
        First run again the selections the store was built from (``build_store(...,
        selection=...)``) and build the objects they give that the store lacks, with the
        options recorded with each selection; objects that left a selection are kept.
    retry_missing_after : datetime.timedelta or float or None
        Ask again for a left-out source when its last try is at least this old (a
        timedelta, or hours; default one hour, 0: every left-out source); None never asks
        again. The service's missing cutouts are often transient (cutouts are ingested
        apart from sources, and their files move after the nightly merge).

    Returns
    -------
    BuildReport
        ``updated``, ``unchanged`` or ``failed`` per object (``built`` for the objects a
        reselection added).

    Raises
    ------
    InputError
        For an object with no complete cube in the store; with ``reselect``, when the
        store records no selection; for a negative ``retry_missing_after``.
    StoreRefusedError
        When ``store`` is not a finkcube store.

    Examples
    --------
    >>> import tempfile
    >>> from finkcube import build_store
    >>> from finkcube.emulator import Emulator
    >>> with Emulator() as emu, tempfile.TemporaryDirectory() as tmp:
    ...     oid = emu.catalog.named("small")
    ...     _ = build_store([oid], f"{tmp}/cubes.zarr", url=emu.url)
    ...     _ = emu.catalog.add_sources(oid, 2)
    ...     report = update_store(f"{tmp}/cubes.zarr")
    >>> [(r.status, r.added) for r in report.results]
    [('updated', 2)]
    """
    started = time.perf_counter()
    retry_after = retry_age(retry_missing_after)
    target = locate(store, storage_options)  # once: every step below gets this one
    report = BuildReport(str(store))
    repair_store(target)  # promote what a crashed earlier run staged, before planning
    ids = update_targets(target, object_ids)
    records = stored_selections(target) if reselect else []
    if reselect and not records:
        raise InputError(
            f"{store} records no selection to run again: build it with --cone, --tag or "
            "--name (selection=...) to use --reselect"
        )
    if client is None:
        url = url or os.environ.get(URL_ENV) or stored_url(target, ids)
    executor = executor_for(scheduler, target)
    active = FinkClient(url, workers=workers or 8) if client is None else client
    changed = False
    try:
        plan = plan_update(active, target, ids, retry_missing_after=retry_after)
        plan.jobs[:] = _keep_aligned(target, plan.jobs)
        fresh = _reselect(active, target, records)
        plan.jobs.extend(fresh.jobs)
        plan.settled.extend(fresh.settled)
        for job in fresh.jobs:  # an interrupted earlier write of these is redone
            delete_cube(target, job.object_id)
        report.results.extend(plan.settled)
        changed = bool(plan.jobs)  # from here on the store may change
        if changed:
            report.results.extend(executor.run(plan.jobs, active, target, progress))
    finally:
        if changed:  # a store with nothing new is left byte for byte as it was
            finalize_store(target)
        if client is None:
            active.close()
        executor.close()
        report.seconds = time.perf_counter() - started
    return report
