"""Planning an ingest: which rows of which alert files each object's cube needs.

The plan is made from the first pass (:func:`~finkcube.bulk.packets.scan_file`: the ids of
every row) and from what the store already holds (each complete cube's diaSourceIds, and
those it knows lack cutouts). A row whose diaSourceId the object's stored cube already has
is not read again; an object with no such new row is settled ``unchanged`` and never
written. The other objects are packed, in the order they first appear in the files, into
:class:`Group` values of about ``batch`` rows: each group is one unit of work (one dask task
on a cluster) that reads its rows, then writes each of its objects' cubes once.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from finkcube.bulk.packets import FileIndex
from finkcube.names import MISSING_ATTR, SOURCE_ID
from finkcube.pipeline.report import ObjectResult
from finkcube.store import Store, list_objects, open_cube

__all__ = ["Group", "IngestPlan", "ObjectRows", "Stored", "plan_ingest"]


@dataclass(frozen=True, slots=True)
class Stored:
    """What the store's complete cube of an object holds: its epochs' and missing ids."""

    epochs: frozenset[int]
    missing: frozenset[int]


@dataclass(frozen=True, slots=True)
class ObjectRows:
    """One object's work: the rows to read (file index, row, diaSourceId), in file order."""

    object_id: int
    rows: tuple[tuple[int, int, int], ...]
    stored: Stored | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """Objects whose rows are read together and whose cubes one task writes."""

    objects: tuple[ObjectRows, ...]

    @property
    def alerts(self) -> int:
        """How many rows the group reads."""
        return sum(len(o.rows) for o in self.objects)


@dataclass(slots=True)
class IngestPlan:
    """The groups to run, the objects settled without reading, and the scan's counts."""

    groups: list[Group] = field(default_factory=list)
    settled: list[ObjectResult] = field(default_factory=list)
    alerts: int = 0
    solar_system: int = 0
    known: int = 0


def _stored(store: Store, ids: Sequence[int], threads: int) -> dict[int, Stored]:
    """The epochs and missing ids of the complete cubes of ``ids``, read ``threads`` at a time."""

    def read(oid: int) -> Stored:
        cube = open_cube(store, oid)
        held = frozenset(int(s) for s in cube[SOURCE_ID].values)
        return Stored(held, frozenset(int(s) for s in cube.attrs.get(MISSING_ATTR, [])))

    if not ids:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(ids)))) as pool:
        return dict(zip(ids, pool.map(read, ids), strict=True))


def plan_ingest(
    indexes: Sequence[FileIndex],
    store: Store,
    *,
    resume: bool,
    batch: int,
    threads: int = 8,
) -> IngestPlan:
    """Plan an ingest from the files' ids and the store's complete cubes.

    Parameters
    ----------
    indexes : sequence of FileIndex
        The first pass over each file, in the files' canonical order.
    store : Store
        The target store.
    resume : bool
        Whether a finkcube store is there to merge into (False: everything is new).
    batch : int
        About how many rows a group reads (an object is never split).
    threads : int
        How many stored cubes are opened at a time.
    """
    plan = IngestPlan()
    rows: dict[int, list[tuple[int, int, int]]] = {}
    for index, found in enumerate(indexes):
        plan.alerts += len(found.source_ids)
        for row, (oid, sid) in enumerate(
            zip(found.object_ids.tolist(), found.source_ids.tolist(), strict=True)
        ):
            if oid == 0:
                plan.solar_system += 1
            else:
                rows.setdefault(oid, []).append((index, row, sid))
    complete = set(list_objects(store)) if resume else set()
    stored = _stored(store, [oid for oid in rows if oid in complete], threads)
    current: list[ObjectRows] = []
    size = 0
    for oid, found_rows in rows.items():
        known = stored.get(oid)
        new = tuple(r for r in found_rows if known is None or r[2] not in known.epochs)
        plan.known += len(found_rows) - len(new)
        if not new:
            assert known is not None
            plan.settled.append(ObjectResult(oid, "unchanged", len(known.epochs)))
            continue
        current.append(ObjectRows(oid, new, known))
        size += len(new)
        if size >= batch:
            plan.groups.append(Group(tuple(current)))
            current, size = [], 0
    if current:
        plan.groups.append(Group(tuple(current)))
    return plan
