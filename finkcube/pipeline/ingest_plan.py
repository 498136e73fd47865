"""Planning an ingest: which rows of which alert files each object's cube needs.

The plan is made from the first pass (:func:`~finkcube.bulk.packets.scan_file`: the ids of
every row) and from what the store already holds (each complete cube's diaSourceIds, and
those it knows lack cutouts), and from the store's record of left-out sources (the root
attribute :data:`LEFT_OUT_ATTR`: the null-cutout diaSourceIds of objects that have no cube yet,
because no alert of theirs ingested so far had all three cutouts). A row whose
diaSourceId the object's stored cube already has is not read again; an object with no
such new row is settled ``unchanged`` and never written. The other objects are packed, in
the order they first appear in the files, into :class:`Group` values of about ``batch``
rows: each group is one unit of work (one dask task on a cluster) that reads its rows,
then writes each of its objects' cubes once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from finkcube.bulk.packets import FileIndex
from finkcube.errors import StoreError
from finkcube.names import MISSING_ATTR, SOURCE_ID
from finkcube.pipeline.report import ObjectResult
from finkcube.store import Store, list_objects, open_cube
from finkcube.store.rootattrs import root_attribute, set_root_attribute

__all__ = [
    "LEFT_OUT_ATTR",
    "Group",
    "IngestPlan",
    "ObjectRows",
    "Stored",
    "plan_ingest",
    "read_left_out",
    "write_left_out",
]

#: The root attribute recording the left-out sources of objects without a cube:
#: ``{diaObjectId: [diaSourceId, ...]}`` (decimal strings, sorted).
LEFT_OUT_ATTR = "finkcube_left_out"


@dataclass(frozen=True, slots=True)
class Stored:
    """What the store's complete cube of an object holds: its epochs' and missing ids."""

    epochs: frozenset[int]
    missing: frozenset[int]


@dataclass(frozen=True, slots=True)
class ObjectRows:
    """One object's work: the rows to read (file index, row, diaSourceId), in file order;
    its stored cube, if any; the ids the store's record lists as left out for it."""

    object_id: int
    rows: tuple[tuple[int, int, int], ...]
    stored: Stored | None = None
    left_out: frozenset[int] = frozenset()


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
    left_out: dict[int, frozenset[int]] = field(default_factory=dict)


def read_left_out(store: Store) -> dict[int, frozenset[int]]:
    """The store's record of left-out sources by object (empty when it has none).

    Raises
    ------
    StoreError
        When the record cannot be read or is not JSON.
    """
    found = root_attribute(store, LEFT_OUT_ATTR) or {}
    if not isinstance(found, dict):
        raise StoreError(f"{store.url}: the root attribute {LEFT_OUT_ATTR} is not a mapping; "
                         "ingest into a new store")  # fmt: skip
    return {int(oid): frozenset(int(s) for s in ids) for oid, ids in found.items()}


def write_left_out(store: Store, record: Mapping[int, frozenset[int]]) -> None:
    """Replace the store's record of left-out sources in one write (deleted when empty).

    Examples
    --------
    >>> from finkcube.store import init_store, locate
    >>> store = locate("memory://doc-left-out.zarr")
    >>> init_store(store)
    >>> write_left_out(store, {12: frozenset({5, 3})})
    >>> read_left_out(store)
    {12: frozenset({3, 5})}
    >>> write_left_out(store, {})
    >>> read_left_out(store)
    {}
    """
    kept = {
        str(oid): [str(s) for s in sorted(record[oid])] for oid in sorted(record) if record[oid]
    }
    set_root_attribute(store, LEFT_OUT_ATTR, kept or None)


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
    plan.left_out = read_left_out(store) if resume else {}
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
        current.append(ObjectRows(oid, new, known, plan.left_out.get(oid, frozenset())))
        size += len(new)
        if size >= batch:
            plan.groups.append(Group(tuple(current)))
            current, size = [], 0
    if current:
        plan.groups.append(Group(tuple(current)))
    return plan
