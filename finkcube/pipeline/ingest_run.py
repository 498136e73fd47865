"""Running one group of an ingest: read its rows, decode their FITS, write each cube once.

:func:`run_group` is what runs on this process for a local ingest, or as one dask task per
group on a cluster. The rows of the group are read file by file (the second pass); each
packet's three FITS files are decoded at once into a :class:`~finkcube.cutouts.Stamp` each
by the same decoder as a REST ``planes="all"`` build (:func:`~finkcube.service.fitsfile.
decode_fits`), and the bytes dropped. As soon as the last row of an object is read, its cube
is assembled (or merged into the stored one, by diaSourceId) and written; a group holds the
decoded stamps of its unfinished objects only.

A packet with a null cutout is a source left out, listed in the cube's
``missing_diaSourceIds`` as a REST build lists a source whose cutout the service lacks. An
object with no cube whose every packet in the run has a null cutout gets no cube (a cube
has at least one epoch): its left-out ids go to the store's record
(the root attribute :data:`~finkcube.pipeline.ingest_plan.LEFT_OUT_ATTR`, written by the caller from
:attr:`GroupResult.waiting`), and join its cube's ``missing_diaSourceIds`` when a later
ingest brings a stamp, so that the store does not depend on how the files were split. A
diaSourceId met twice is read once: the first packet with all three cutouts wins. An object
whose cutouts cannot be decoded or stacked fails alone (its result says why).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from finkcube.bulk.files import AlertFile
from finkcube.bulk.packets import Packet, read_packets
from finkcube.cube.assemble import assemble_cube, merge_cubes
from finkcube.cutouts import SourceCutouts, stamps_from_fits
from finkcube.errors import FinkcubeError, StoreError
from finkcube.names import KINDS, PlanesArg, rubin_column
from finkcube.pipeline.completeness import NO_CUTOUT, REASONS_ATTR, UNKNOWN_REASON, record_left_out
from finkcube.pipeline.ingest_plan import Group, ObjectRows
from finkcube.pipeline.report import ObjectResult
from finkcube.service.fitsfile import decode_fits
from finkcube.store import Store, open_cube, write_cube

__all__ = ["GroupResult", "run_group"]

logger = logging.getLogger(__name__)

#: Ingested cubes hold every plane of the packets' FITS files.
PLANES: PlanesArg = "all"
#: The dask scheduler that reads a stored cube to merge (see pipeline.run).
_HERE = "threads"


@dataclass(slots=True)
class GroupResult:
    """What one group did: a result per object and the counts of its rows.

    ``waiting`` holds the left-out ids of objects still without a cube (for the store's
    record); ``placed`` the objects whose recorded left-out ids are now in their cube.
    """

    results: list[ObjectResult] = field(default_factory=list)
    ingested: int = 0
    left_out: int = 0
    duplicates: int = 0
    waiting: dict[int, frozenset[int]] = field(default_factory=dict)
    placed: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Source:
    record: dict[str, Any]
    cutouts: SourceCutouts | None  # None: a null cutout in the packet


@dataclass(slots=True)
class _Pending:
    work: ObjectRows
    remaining: int
    sources: dict[int, _Source] = field(default_factory=dict)
    error: str | None = None


def _record(packet: Packet, columns: Sequence[str]) -> dict[str, Any]:
    return {rubin_column(name): packet.source.get(name) for name in columns}


def _decode(packet: Packet, source_id: int, url: str) -> SourceCutouts | None:
    """The packet's stamps, or None when a cutout is null (logged at info: a night has
    millions of alerts, and the report counts them)."""
    null = [kind for kind in KINDS if packet.cutouts.get(kind) is None]
    if null:
        logger.info("diaSourceId %s: cutout%s is null in %s; left out", source_id, null[0], url)
        return None
    stamps = [decode_fits(packet.cutouts[k], kind=k, source_id=source_id) for k in KINDS]  # type: ignore[arg-type]
    return stamps_from_fits(source_id, stamps)


def _finish(
    pending: _Pending, store: Store, columns: Sequence[str], out: GroupResult
) -> ObjectResult:
    oid, stored = pending.work.object_id, pending.work.stored
    if pending.error is not None:
        return ObjectResult(oid, "failed", error=pending.error)
    records = [s.record for s in pending.sources.values()]
    cutouts = {sid: s.cutouts for sid, s in pending.sources.items() if s.cutouts is not None}
    nulls = tuple(sorted(sid for sid, s in pending.sources.items() if s.cutouts is None))
    out.left_out += len(nulls)
    recorded = pending.work.left_out
    if stored is None and not cutouts:  # no stamp yet: the store's record keeps the ids
        out.waiting[oid] = recorded | set(nulls)
        logger.info("diaObjectId %s: no alert with all cutouts yet; no cube", oid)
        return ObjectResult(oid, "unchanged", 0, 0, nulls)
    if stored is not None and not cutouts and recorded | set(nulls) <= stored.missing:
        if recorded:
            out.placed.append(oid)
        return ObjectResult(oid, "unchanged", len(stored.epochs))  # nothing new: not written
    try:
        if stored is None:
            cube = assemble_cube(
                oid, records, cutouts, planes=PLANES, columns=columns, missing=recorded
            )
            previous = None
        else:
            old = open_cube(store, oid).load(scheduler=_HERE)
            cube = merge_cubes(old, records, cutouts, missing=recorded, columns=columns)
            previous = old.attrs
    except StoreError:
        raise
    except FinkcubeError as exc:
        logger.error("diaObjectId %s: %s", oid, exc)
        return ObjectResult(oid, "failed", error=str(exc))
    cube.attrs.update(_reasons(cube.attrs, previous))
    write_cube(cube, store)
    if recorded:
        out.placed.append(oid)
    epochs = cube.sizes["time"]
    added = epochs - (0 if stored is None else len(stored.epochs))
    out.ingested += added
    logger.info("diaObjectId %s: %d epochs written, %d new", oid, epochs, added)
    return ObjectResult(oid, "built" if stored is None else "updated", epochs, added, nulls)


def run_group(
    files: Sequence[AlertFile],
    group: Group,
    store: Store,
    columns: Sequence[str],
    progress: Callable[[int], None] | None = None,
) -> GroupResult:
    """Read the rows of a group, and write the cube of each of its objects once.

    Parameters
    ----------
    files : sequence of AlertFile
        Every file of the ingest (the rows refer to them by index).
    group : Group
        The objects and rows to ingest.
    store : Store
        A finkcube store (created by the caller).
    columns : sequence of str
        The bare names of the per-epoch columns the cubes keep.
    progress : callable, optional
        Called with the number of rows read, as they are read.

    Raises
    ------
    DecodeError
        When a file cannot be read (the message names it).
    StoreError
        When the store cannot be written.
    """
    out = GroupResult()
    pending = {o.object_id: _Pending(o, len(o.rows)) for o in group.objects}
    owner: dict[tuple[int, int], int] = {}
    by_file: dict[int, list[int]] = {}
    for work in group.objects:
        for index, row, _ in work.rows:
            owner[(index, row)] = work.object_id
            by_file.setdefault(index, []).append(row)
    for index in sorted(by_file):
        url = files[index].url
        for packet in read_packets(files[index], sorted(by_file[index])):
            state = pending[owner[(index, packet.row)]]
            _take(state, packet, url, columns, out)
            state.remaining -= 1
            if progress is not None:
                progress(1)
            if state.remaining == 0:
                out.results.append(_finish(state, store, columns, out))
                state.sources.clear()
    return out


def _take(
    state: _Pending, packet: Packet, url: str, columns: Sequence[str], out: GroupResult
) -> None:
    """Decode one packet into its object's pending sources (first complete packet wins)."""
    if state.error is not None:
        return
    source_id = int(packet.source.get("diaSourceId") or 0)
    seen = state.sources.get(source_id)
    if seen is not None and seen.cutouts is not None:
        out.duplicates += 1
        return
    try:
        cutouts = _decode(packet, source_id, url)
    except FinkcubeError as exc:
        state.error = f"{exc} (in {url})"
        logger.error("diaObjectId %s: %s", state.work.object_id, state.error)
        return
    if seen is not None:
        out.duplicates += 1
        if cutouts is None:
            return
    state.sources[source_id] = _Source(_record(packet, columns), cutouts)


def counts(results: Sequence[GroupResult]) -> Mapping[str, int]:
    """The row counts of several groups, summed."""
    return {
        "ingested": sum(r.ingested for r in results),
        "left_out": sum(r.left_out for r in results),
        "duplicates": sum(r.duplicates for r in results),
    }


def _reasons(attrs: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """The cube's ``missing_reasons`` and ``missing_tried``: a source a packet brought without
    its cutouts is ``no_cutout``, with no try to date (it was never asked of the service, so
    the next ``update`` asks for it); the reasons of a merged cube's own left-outs are kept."""
    kept = record_left_out(attrs, previous, {}, dt.datetime.now(dt.UTC))
    kept[REASONS_ATTR] = [NO_CUTOUT if r == UNKNOWN_REASON else r for r in kept[REASONS_ATTR]]
    return kept
