"""Planning: what a build or an update has to do, decided before any cutout is fetched.

A plan is the list of :class:`~finkcube.pipeline.jobs.Job` to run and the results of the
objects settled without fetching anything (already complete, unknown to the service, nothing
new). Planning reads the store and lists sources (one request per 50 objects); it writes
nothing, so a plan that finds nothing to do leaves the store as it was.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from finkcube.cube.photometry import FP_ATTR
from finkcube.errors import InputError
from finkcube.ids import parse_ids
from finkcube.names import (
    ALIGNED_WCS_ATTR,
    COLUMNS_ATTR,
    MISSING_ATTR,
    SOURCE_ID,
    PlanesArg,
    bare_column,
)
from finkcube.pipeline.completeness import DEFAULT_RETRY_MISSING_AFTER, due
from finkcube.pipeline.fetch import list_sources
from finkcube.pipeline.jobs import Job, as_columns, check_planes
from finkcube.pipeline.report import UNKNOWN_OBJECT, ObjectResult
from finkcube.service.client import FinkClient
from finkcube.store import (
    Store,
    check_store,
    cube_attributes,
    list_objects,
    open_store,
)
from finkcube.store.stream import read_with_attributes

__all__ = ["Plan", "plan_build", "plan_update", "stored_url", "update_targets"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Plan:
    """The jobs to run, and the results of the objects settled without fetching."""

    jobs: list[Job] = field(default_factory=list)
    settled: list[ObjectResult] = field(default_factory=list)
    #: Whether a finkcube store is already at the target (a resumed build, an update).
    resume: bool = False


def _refuse_other_options(
    store: Store,
    done: Sequence[int],
    planes: PlanesArg,
    size: int | None,
    forced: bool,
    align: str | None = None,
) -> None:
    """InputError when a complete cube to skip was built with other planes, size, forced
    photometry or alignment."""
    if not done:
        return
    again = "build into another store, or pass --overwrite (overwrite=True) to rebuild this one"
    for oid, attrs in cube_attributes(store, done).items():
        had_planes, had_size = attrs.get("planes", "data"), attrs.get("size")
        if (had_planes, had_size) != (planes, size):
            raise InputError(
                f"diaObjectId {oid} in {store} was built with planes={had_planes!r}, "
                f"size={had_size!r}, not planes={planes!r}, size={size!r}; {again}"
            )
        if bool(attrs.get(FP_ATTR, False)) != forced:
            had = "with" if forced is False else "without"
            raise InputError(
                f"diaObjectId {oid} in {store} was built {had} its forced photometry "
                f"(--forced-photometry); {again}"
            )
        if bool(attrs.get(ALIGNED_WCS_ATTR)) != (align is not None):
            had = "aligned" if align is None else "not aligned"
            raise InputError(f"diaObjectId {oid} in {store} was built {had} on the sky "
                             f"(--align sky); {again}")  # fmt: skip


def plan_build(
    client: FinkClient,
    store: Store,
    object_ids: Sequence[int],
    *,
    planes: PlanesArg,
    size: int | None,
    columns: Sequence[str] | None,
    overwrite: bool,
    forced_photometry: bool = False,
    align: str | None = None,
) -> Plan:
    """Plan a build: skip the complete cubes, list the sources of the others.

    The store is checked first, before any request (a path holding something else is
    refused); a re-run with other ``planes`` or ``size`` than the complete cubes it would
    skip is refused too, instead of silently skipping them. A complete cube is skipped
    even when it lacks some sources (``missing_diaSourceIds``): asking again for those is
    the job of :func:`~finkcube.update_store`, which fills them in place.
    """
    resume = check_store(store, overwrite=overwrite) and not overwrite
    complete = set(list_objects(store)) if resume else set()
    done = [oid for oid in object_ids if oid in complete]
    _refuse_other_options(store, done, planes, size, forced_photometry, align)
    plan = Plan(settled=[ObjectResult(oid, "skipped") for oid in done], resume=resume)
    todo = [oid for oid in object_ids if oid not in complete]
    listed = list_sources(client, todo, columns) if todo else {}
    for oid in todo:
        if listed[oid]:
            job = Job(oid, tuple(listed[oid]), planes, size, as_columns(columns),
                      forced_photometry=forced_photometry, align=align)  # fmt: skip
            plan.jobs.append(job)
        else:
            logger.info("diaObjectId %s: %s", oid, UNKNOWN_OBJECT)
            plan.settled.append(ObjectResult.unknown(oid))
    return plan


def update_targets(store: Store, object_ids: Iterable[int | str] | None) -> list[int]:
    """The objects to update: the given ones (each must have a complete cube), or all, as
    the store's catalog lists them (one read, after :func:`~finkcube.store.repair_store`)."""
    existing = open_store(store).ids
    ids = existing if object_ids is None else parse_ids(object_ids)
    unknown = sorted(set(ids) - set(existing))
    if unknown:
        raise InputError(f"{store}: no complete cube for diaObjectId {unknown[0]}; build it first")
    return ids


#: What an update needs to know of a cube: its epochs, planes, columns, the diaSourceIds it
#: holds or lacks and does not ask again yet, and whether it carries its forced light curve.
_Known = tuple[int, str, tuple[str, ...], set[int], bool]


def _known(
    store: Store,
    ids: Sequence[int],
    workers: int,
    retry_after: dt.timedelta | None,
    now: dt.datetime,
) -> dict[int, _Known]:
    """What an update needs to know of each cube (:data:`_Known`), without opening one: the
    groups' attributes and their ``diaSourceId`` arrays, from one read of each group's
    ``zarr.json`` (:func:`~finkcube.store.stream.read_with_attributes`)."""
    stored = read_with_attributes(store, ids, variable=SOURCE_ID, threads=min(workers, 4))
    known: dict[int, _Known] = {}
    for oid in ids:
        cube, held = stored[oid]
        gone = {int(s) for s in cube.get(MISSING_ATTR, [])}
        gone -= due(cube, now, retry_after)  # asked again: listed as new
        columns = tuple(bare_column(c) for c in cube[COLUMNS_ATTR])
        sources = {int(s) for s in held.tolist()}
        forced = bool(cube.get(FP_ATTR, False))
        planes = cube.get("planes", "data")
        known[oid] = (int(held.size), planes, columns, sources | gone, forced)
    return known


def stored_url(store: Store, ids: Sequence[int]) -> str | None:
    """The service URL the first of ``ids`` was built from (None for an empty store)."""
    if not ids:
        return None
    url = next(iter(cube_attributes(store, ids[:1]).values()), {}).get("api_url")
    return str(url) if url else None


def plan_update(
    client: FinkClient,
    store: Store,
    ids: Sequence[int],
    *,
    retry_missing_after: dt.timedelta | None = DEFAULT_RETRY_MISSING_AFTER,
    now: dt.datetime | None = None,
) -> Plan:
    """Plan an update: list every object's sources again and keep those to fetch.

    Objects built alike (planes, columns) are listed together, in batches. A source is
    fetched when the cube does not hold it and either does not list it as left out, or
    last asked for it at least ``retry_missing_after`` before ``now`` (None: never asked
    again). A cube that carries its forced light curve always gets a job: the light curve
    is fetched again, and the cube rewritten only when it changed (or has new sources).
    """
    moment = now or dt.datetime.now(dt.UTC)
    known = _known(store, ids, client.workers, retry_missing_after, moment)
    alike: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for oid, (_, planes, columns, _, _) in known.items():
        alike.setdefault((planes, columns), []).append(oid)
    plan = Plan(resume=True)
    for (planes, columns), oids in alike.items():
        listed = list_sources(client, oids, list(columns))
        for oid in oids:
            epochs, _, _, seen, forced = known[oid]
            new = [r for r in listed[oid] if int(r["r:diaSourceId"]) not in seen]
            if new or forced:
                job = Job(oid, tuple(new), check_planes(planes), None, columns, True, forced)
                plan.jobs.append(job)
            else:
                plan.settled.append(ObjectResult(oid, "unchanged", epochs))
    return plan
