"""A cube's epochs: each source record paired with its checked cutouts, into a cube and out.

:func:`pair_epochs` checks the records and stamps handed to :func:`finkcube.cube.assemble_cube`
and pairs them by diaSourceId; :func:`epochs_from_cube` takes a cube apart into the same
epochs (stamps un-padded, crops kept), for :func:`finkcube.cube.cube_to_cutouts` and
:func:`finkcube.cube.merge_cubes`.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from finkcube.cube.canvas import placement
from finkcube.cube.columns import ID_KEY, OBJECT_KEY, TIME_KEY, decode_columns
from finkcube.cutouts import SourceCutouts, Stamp
from finkcube.errors import CubeError, InputError
from finkcube.ids import parse_id
from finkcube.names import (
    COLUMNS_ATTR,
    CUTOUT_VAR,
    DATA_PLANE,
    KINDS,
    MASK_PLANE,
    OBJECT_ID,
    PSF_SIDE,
    PSF_VAR,
    SIDE,
    SOURCE_ID,
    WCS_VAR,
)

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["Epoch", "epochs_from_cube", "pair_epochs"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Epoch:
    """One source on its way into a cube: ``side`` is its own side, maybe > the stamps'."""

    source_id: int
    time: float
    record: Mapping[str, Any]
    cutouts: SourceCutouts
    side: int


def _record_id(record: Mapping[str, Any], object_id: int) -> int | None:
    """Return a record's diaSourceId, or None (with a warning) when it is not a valid id.

    The id 0 is the mark :func:`finkcube.pipeline.fetch.list_sources` leaves on a record
    whose id it already reported; it is skipped quietly.
    """
    value = record.get(ID_KEY)
    try:
        return parse_id(value, what=SOURCE_ID)
    except InputError:
        log = logger.debug if value == 0 and not isinstance(value, bool) else logger.warning
        shown = "no " + ID_KEY if ID_KEY not in record else f"{ID_KEY} {value!r:.60}"
        log("diaObjectId %s: a source record with %s skipped: not a valid id", object_id, shown)
        return None


def _record_epoch(record: Mapping[str, Any], source_id: int, object_id: int) -> float:
    """Return a record's time, checked, and that it belongs to ``object_id``."""
    owner = record.get(OBJECT_KEY)
    if owner is not None and owner != object_id:
        raise CubeError(
            f"diaSourceId {source_id} belongs to diaObjectId {owner}, not {object_id}: "
            "pass the records of one object only"
        )
    time = record.get(TIME_KEY)
    if isinstance(time, bool) or not isinstance(time, numbers.Real) or not math.isfinite(time):
        raise CubeError(f"diaSourceId {source_id}: {TIME_KEY} is {time!r}, not a number")
    return float(time)


def _check_cutouts(source_id: int, cutouts: Any) -> SourceCutouts:
    """Guard the stacking: three kinds in order, one square shape, square PSFs."""
    if not isinstance(cutouts, SourceCutouts) or cutouts.source_id != source_id:
        raise CubeError(f"diaSourceId {source_id}: its cutouts are not a SourceCutouts of it")
    if tuple(stamp.kind for stamp in cutouts.stamps) != KINDS:
        raise CubeError(f"diaSourceId {source_id}: stamps are not {list(KINDS)} in order")
    side = cutouts.side
    for stamp in cutouts.stamps:
        for name, plane in stamp.planes.items():
            if plane.shape != (side, side):
                raise CubeError(
                    f"diaSourceId {source_id}: {stamp.kind} {name} plane is {plane.shape}, "
                    f"the source's stamps are {side}x{side}"
                )
        if stamp.psf is not None and (stamp.psf.ndim != 2 or len(set(stamp.psf.shape)) != 1):
            raise CubeError(f"diaSourceId {source_id}: {stamp.kind} PSF is {stamp.psf.shape}")
    return cutouts


def pair_epochs(
    object_id: int,
    records: Iterable[Mapping[str, Any]],
    cutouts: Mapping[int, SourceCutouts],
) -> tuple[dict[int, Epoch], set[int]]:
    """Pair records with cutouts; return the epochs by id and the ids without cutouts.

    A diaSourceId listed twice keeps its first record. A record without a valid
    diaSourceId (what the server sent: a float, a negative, a path) is skipped with a
    warning.

    Raises
    ------
    CubeError
        When no record has a valid id, for a record without a valid time or of another
        object, or stamps that are not three square kinds of one shape.
    """
    epochs: dict[int, Epoch] = {}
    missing: set[int] = set()
    skipped = 0
    for record in records:
        source_id = _record_id(record, object_id)
        if source_id is None:
            skipped += 1
            continue
        time = _record_epoch(record, source_id, object_id)
        if source_id in epochs or source_id in missing:
            logger.debug("diaSourceId %s listed twice; first record kept", source_id)
        elif source_id not in cutouts:
            missing.add(source_id)
        else:
            stamps = _check_cutouts(source_id, cutouts[source_id])
            epochs[source_id] = Epoch(source_id, time, record, stamps, stamps.side)
    if skipped and not epochs and not missing:
        raise CubeError(
            f"diaObjectId {object_id}: no valid {ID_KEY} in its {skipped} source "
            "record(s): nothing to build (the records are malformed)"
        )
    return epochs, missing


def epochs_from_cube(ds: xr.Dataset) -> tuple[list[Epoch], list[dict[str, Any]]]:
    """Return the epochs of a cube (stamps un-padded, crops kept) and their records.

    Raises
    ------
    CubeError
        When ``ds`` is not a finkcube cube.
    """
    if CUTOUT_VAR not in ds or COLUMNS_ATTR not in ds.attrs or OBJECT_ID not in ds.attrs:
        raise CubeError("not a finkcube cube: no cutout variable or source_columns attribute")
    if [str(k) for k in ds["kind"].values] != list(KINDS):
        raise CubeError(f"cube kinds are {ds['kind'].values.tolist()}, expected {list(KINDS)}")
    object_id = int(ds.attrs[OBJECT_ID])
    records = decode_columns(ds)
    for record in records:
        record[OBJECT_KEY] = object_id
    cube = ds[CUTOUT_VAR].values
    names = [str(p) for p in ds["plane"].values]
    headers = ds[WCS_VAR].values if WCS_VAR in ds else None
    psf = ds[PSF_VAR].values if PSF_VAR in ds else None
    psf_sides = ds[PSF_SIDE].values if PSF_SIDE in ds else None
    canvas = cube.shape[2]
    epochs = []
    for i, (side, record) in enumerate(zip(ds[SIDE].values.tolist(), records, strict=True)):
        _, dst, _ = placement(side, canvas)
        stamps = []
        for k, kind in enumerate(KINDS):
            planes = {}
            for p, name in enumerate(names):
                block = cube[i, k, dst, dst, p]
                if name == DATA_PLANE:
                    planes[name] = block.copy()
                elif not np.isnan(block).all():
                    planes[name] = block.astype(np.int32) if name == MASK_PLANE else block.copy()
            own_psf = None
            if psf is not None and psf_sides is not None and psf_sides[i, k]:
                start = (psf.shape[-1] - psf_sides[i, k]) // 2
                stop = start + psf_sides[i, k]
                own_psf = psf[i, k, start:stop, start:stop].copy()
            header = str(headers[i, k]) if headers is not None and headers[i, k] else None
            stamps.append(Stamp(kind, planes, own_psf, header))
        cutouts = SourceCutouts(record[ID_KEY], tuple(stamps))
        epochs.append(Epoch(record[ID_KEY], record[TIME_KEY], record, cutouts, side))
    return epochs, records
