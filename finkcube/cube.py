"""Pure cube assembly: source records and decoded stamps in, one :class:`xarray.Dataset` out.

Nothing here reads or writes anything. :func:`assemble_cube` stacks the
:class:`~finkcube.decode.SourceCutouts` of one object on a common canvas, sorted by time;
:func:`cube_to_cutouts` undoes it exactly and :func:`merge_cubes` adds new sources to a cube.

Layout (the product contract): ``cutout (time, kind, y, x, plane)`` float32, NaN in blank
and padding pixels; a stamp of side ``s`` sits at ``(S - s) // 2`` of the ``S x S`` canvas,
a larger one is centre-cropped from ``(s - S) // 2`` (``cropped`` is then true). Per-epoch
coordinates along ``time``: ``diaSourceId`` (int64), ``band`` (str), ``side``, ``cropped``
and the requested source columns without their ``r:`` prefix. A column typed ``int``,
``bool`` or ``float`` with nulls is stored as float64 with NaN (an int column with nulls and
values beyond 2**53 as decimal strings), a ``str`` column with ``""`` for null; the attribute
``source_columns`` records each column's name and JSON type so that the records come back
exactly. A column whose bare name would clash with a name of the cube (``x``, ``y``, ...)
keeps its family as a prefix (``r_x``). Two sources of exactly the same time are both kept,
ordered by ``diaSourceId``: ``time`` is then non-decreasing rather than strictly ascending.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from finkcube._types import (
    CUTOUT_VAR,
    DIMS,
    KINDS,
    PLANES,
    PLANES_ARGS,
    PSF_DIMS,
    PSF_VAR,
    TIME_COLUMN,
    WCS_VAR,
    PlanesArg,
    bare_column,
    rubin_column,
)
from finkcube.decode import SourceCutouts, Stamp
from finkcube.errors import CubeError, FinkcubeWarning, InputError
from finkcube.ids import parse_id

if TYPE_CHECKING:
    from astropy.wcs import WCS

__all__ = ["assemble_cube", "cube_to_cutouts", "epoch_wcs", "merge_cubes"]

logger = logging.getLogger(__name__)

# TODO(move to _types): the cube's own coordinate, variable and attribute names.
SOURCE_ID = "diaSourceId"
OBJECT_ID = "diaObjectId"
BAND = "band"
SIDE = "side"
CROPPED = "cropped"
PSF_SIDE = "psf_side"
MISSING_ATTR = "missing_diaSourceIds"
COLUMNS_ATTR = "source_columns"
_ID_KEY, _TIME_KEY, _BAND_KEY = (rubin_column(c) for c in (SOURCE_ID, TIME_COLUMN, BAND))
_OBJECT_KEY = rubin_column(OBJECT_ID)
_RESERVED = {*DIMS, *PSF_DIMS, CUTOUT_VAR, PSF_VAR, WCS_VAR, SIDE, CROPPED, PSF_SIDE, OBJECT_ID}
#: Attributes a cube computes itself; the rest (``api_url``, ...) travel through a merge.
_OWN_ATTRS = {OBJECT_ID, "finkcube_version", "created", "updated", "planes", "size",
              MISSING_ATTR, COLUMNS_ATTR, "finkcube_complete"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Epoch:
    """One source on its way into a cube: ``side`` is its own side, maybe > the stamps'."""

    source_id: int
    time: float
    record: Mapping[str, Any]
    cutouts: SourceCutouts
    side: int


def placement(side: int, canvas: int) -> tuple[slice, slice, int]:
    """Return ``(source, target, offset)``: where a stamp of ``side`` goes in ``canvas``.

    ``offset`` is the canvas position of the stamp's pixel 0 (negative when cropped).

    Examples
    --------
    >>> placement(30, 40)
    (slice(0, 30, None), slice(5, 35, None), 5)
    >>> placement(45, 40)
    (slice(2, 42, None), slice(0, 40, None), -2)
    """
    if side <= canvas:
        start = (canvas - side) // 2
        return slice(0, side), slice(start, start + side), start
    crop = (side - canvas) // 2
    return slice(crop, crop + canvas), slice(0, canvas), -crop


# --------------------------------------------------------------------------- columns


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _encode_column(values: list[Any]) -> tuple[np.ndarray, str]:
    """Return a column as an array and its JSON type (``int float bool str json null``)."""
    present = [v for v in values if not _is_null(v)]
    nulls = len(present) < len(values)
    if not present:
        return np.full(len(values), np.nan), "null"
    if all(isinstance(v, bool | np.bool_) for v in present):
        if not nulls:
            return np.array(values, dtype=bool), "bool"
        return np.array([np.nan if _is_null(v) else float(v) for v in values]), "bool"
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in present):
        if not nulls and all(-(2**63) <= v < 2**63 for v in present):
            return np.array(values, dtype=np.int64), "int"
        if all(abs(v) <= 2**53 for v in present):
            return np.array([np.nan if _is_null(v) else float(v) for v in values]), "int"
        return np.array(["" if _is_null(v) else str(v) for v in values], dtype=object), "int"
    if all(isinstance(v, numbers.Real) for v in present):
        return np.array([np.nan if _is_null(v) else float(v) for v in values]), "float"
    if any(isinstance(v, list | dict) for v in present):
        texts = ["" if _is_null(v) else json.dumps(v) for v in values]
        return np.array(texts, dtype=object), "json"
    return np.array(["" if _is_null(v) else str(v) for v in values], dtype=object), "str"


def _decode_column(array: np.ndarray, kind: str) -> list[Any]:
    """Undo :func:`_encode_column` (``str`` nulls come back as ``""``)."""
    if array.dtype.kind == "f":
        cast = {"int": int, "bool": bool}.get(kind, float)
        return [None if math.isnan(v) else cast(v) for v in array.tolist()]
    if array.dtype.kind in "biu":
        return array.tolist()
    texts = [str(v) for v in array.tolist()]
    if kind == "int":
        return [int(t) if t else None for t in texts]
    if kind == "json":
        return [json.loads(t) if t else None for t in texts]
    return texts


def _coordinate_names(keys: Sequence[str]) -> dict[str, str]:
    """Map wire keys to coordinate names: bare, unless that clashes (then ``r_x``)."""
    bare = [bare_column(k) for k in keys]
    return {
        key: name if name not in _RESERVED and bare.count(name) == 1 else key.replace(":", "_")
        for key, name in zip(keys, bare, strict=True)
    }


# --------------------------------------------------------------------------- selection


def _record_epoch(record: Mapping[str, Any], object_id: int) -> tuple[int, float]:
    """Return a record's ``(diaSourceId, time)``, checked."""
    try:
        source_id = parse_id(record.get(_ID_KEY), what=SOURCE_ID)
    except InputError as exc:
        raise CubeError(
            f"diaObjectId {object_id}: a source record has no valid {_ID_KEY}: {exc}"
        ) from exc
    owner = record.get(_OBJECT_KEY)
    if owner is not None and owner != object_id:
        raise CubeError(
            f"diaSourceId {source_id} belongs to diaObjectId {owner}, not {object_id}: "
            "pass the records of one object only"
        )
    time = record.get(_TIME_KEY)
    if isinstance(time, bool) or not isinstance(time, numbers.Real) or not math.isfinite(time):
        raise CubeError(f"diaSourceId {source_id}: {_TIME_KEY} is {time!r}, not a number")
    return source_id, float(time)


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


def _select(
    object_id: int,
    records: Iterable[Mapping[str, Any]],
    cutouts: Mapping[int, SourceCutouts],
) -> tuple[dict[int, _Epoch], set[int]]:
    """Pair records with cutouts; return the epochs by id and the ids without cutouts."""
    epochs: dict[int, _Epoch] = {}
    missing: set[int] = set()
    for record in records:
        source_id, time = _record_epoch(record, object_id)
        if source_id in epochs or source_id in missing:
            logger.debug("diaSourceId %s listed twice; first record kept", source_id)
        elif source_id not in cutouts:
            missing.add(source_id)
        else:
            stamps = _check_cutouts(source_id, cutouts[source_id])
            epochs[source_id] = _Epoch(source_id, time, record, stamps, stamps.side)
    return epochs, missing


# --------------------------------------------------------------------------- assembly


def _check_options(planes: str, size: int | None) -> None:
    if planes not in PLANES_ARGS:
        raise InputError(f"invalid planes {planes!r}: expected one of {', '.join(PLANES_ARGS)}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise InputError(f"invalid size {size!r}: expected a positive number of pixels")


def _json_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``attrs`` without None values, numpy scalars made Python, checked as JSON."""
    out = {}
    for key, value in attrs.items():
        if value is None:
            continue
        value = value.item() if isinstance(value, np.generic) else value
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"cube attribute {key!r} is not JSON-serialisable: {exc}") from exc
        out[str(key)] = value
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _version() -> str:
    import finkcube  # at call time: the package imports this module

    return str(finkcube.__version__)


def _build(
    object_id: int,
    epochs: Iterable[_Epoch],
    missing: Iterable[int],
    *,
    planes: str,
    size: int | None,
    keys: Iterable[str],
    attrs: Mapping[str, Any],
) -> xr.Dataset:
    order = sorted(epochs, key=lambda e: (e.time, e.source_id))
    if not order:
        raise CubeError(f"diaObjectId {object_id}: no source with cutouts; nothing to stack")
    n = len(order)
    times = np.array([e.time for e in order])
    if n > 1 and not np.all(np.diff(times) > 0):
        logger.info("diaObjectId %s: sources share a time; kept in diaSourceId order", object_id)
    sides = np.array([e.side for e in order], dtype=np.int64)
    canvas = size if size is not None else int(max(e.cutouts.side for e in order))
    stamps = [e.cutouts.stamps for e in order]
    names = ["data"]
    if planes == "all":
        names.append("variance")
        if any("mask" in s.planes for row in stamps for s in row):
            names.append("mask")
    cube = np.full((n, len(KINDS), canvas, canvas, len(names)), np.nan, dtype=np.float32)
    for i, row in enumerate(stamps):
        src, dst, _ = placement(row[0].side, canvas)
        for k, stamp in enumerate(row):
            for p, name in enumerate(names):
                plane = stamp.planes.get(name)
                if plane is not None:
                    cube[i, k, dst, dst, p] = plane[src, src]
    if "mask" in names and np.nanmax(np.abs(cube[..., -1]), initial=0) >= 2**24:
        warnings.warn("mask bits above 2**24 are not exact in float32", FinkcubeWarning, 2)

    columns: dict[str, tuple[str, str]] = {_ID_KEY: (SOURCE_ID, "int")}
    coords: dict[str, Any] = {
        "time": ("time", times, {"long_name": "midpointMjdTai (MJD, TAI)"}),
        "kind": ("kind", np.array(KINDS, dtype=object)),
        "plane": ("plane", np.array(names, dtype=object)),
        SOURCE_ID: ("time", np.array([e.source_id for e in order], dtype=np.int64)),
        SIDE: ("time", sides, {"long_name": "stamp side before padding or cropping"}),
        CROPPED: ("time", sides > canvas, {"long_name": "stamp centre-cropped to the canvas"}),
    }
    wanted = [k for k in dict.fromkeys((_TIME_KEY, _BAND_KEY, *keys)) if k not in columns]
    for key, name in _coordinate_names([k for k in wanted if k != _OBJECT_KEY]).items():
        name = "time" if key == _TIME_KEY else name
        values = [e.record.get(key) for e in order]
        array, kind = _encode_column(values)
        if key == _BAND_KEY:
            array, kind = np.array(["" if _is_null(v) else str(v) for v in values], object), "str"
        columns[key] = (name, kind)
        if name != "time":
            coords[name] = ("time", array)
    data_vars: dict[str, Any] = {
        CUTOUT_VAR: (DIMS, cube, {"long_name": "cutout pixels (nJy; variance nJy**2)"})
    }
    if planes == "all":
        data_vars.update(_psf_and_headers(stamps))

    own = {
        OBJECT_ID: object_id,
        "finkcube_version": _version(),
        "created": attrs.get("created") or _now(),
        "planes": planes,
        "size": size,
        MISSING_ATTR: [str(s) for s in sorted(missing)],
        COLUMNS_ATTR: {key: list(value) for key, value in columns.items()},
    }
    merged = _json_attrs({**{k: v for k, v in attrs.items() if k != "created"}, **own})
    return xr.Dataset(data_vars, coords, attrs=merged)


def _psf_and_headers(stamps: Sequence[Sequence[Stamp]]) -> dict[str, Any]:
    n = len(stamps)
    headers = np.array([[s.header or "" for s in row] for row in stamps], dtype=object)
    out: dict[str, Any] = {WCS_VAR: (("time", "kind"), headers, {"long_name": "FITS WCS cards"})}
    psf_sides = np.array(
        [[0 if s.psf is None else s.psf.shape[0] for s in row] for row in stamps], np.int64
    )
    full = int(psf_sides.max(initial=0))
    if full:
        psf = np.full((n, len(KINDS), full, full), np.nan)
        for (i, k), side in np.ndenumerate(psf_sides):
            if side:
                start = (full - side) // 2
                psf[i, k, start : start + side, start : start + side] = stamps[i][k].psf
        out[PSF_VAR] = (PSF_DIMS, psf, {"long_name": "PSF image, centred, NaN-padded"})
        out[PSF_SIDE] = (("time", "kind"), psf_sides, {"long_name": "PSF side, 0: none"})
    return out


# --------------------------------------------------------------------------- public API


def assemble_cube(
    object_id: int,
    records: Sequence[Mapping[str, Any]],
    cutouts: Mapping[int, SourceCutouts],
    *,
    planes: PlanesArg = "data",
    size: int | None = None,
    columns: Sequence[str] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Stack the cutouts of one object into a cube, one epoch per source, sorted by time.

    Parameters
    ----------
    object_id : int
        The diaObjectId.
    records : sequence of mapping
        Source records as the API sends them (``r:`` keys, exact ints, any order).
    cutouts : mapping of int to SourceCutouts
        The decoded stamps by diaSourceId. Sources of ``records`` absent here are left out
        and listed in the attribute ``missing_diaSourceIds`` (decimal strings).
    planes : {"data", "all"}
        ``"data"``: the data plane only; ``"all"``: data, variance and (when any stamp has
        one) mask planes, plus the ``psf``, ``psf_side`` and ``wcs_header`` variables.
    size : int, optional
        A fixed canvas side; by default the largest stamp side of the object.
    columns : sequence of str, optional
        Source columns kept as per-epoch coordinates (bare or ``r:`` names; default: every
        column of the records). ``diaSourceId``, ``midpointMjdTai`` and ``band`` always are.
    attrs : mapping, optional
        Extra attributes (the API URL, ...); JSON values, None values dropped.

    Returns
    -------
    xarray.Dataset
        The cube (see the module docstring), numpy-backed.

    Raises
    ------
    CubeError
        When no source has cutouts, a record lacks its id or time, or stamps disagree.
    InputError
        For a bad ``planes``, ``size`` or attribute.

    Examples
    --------
    >>> from finkcube.decode import stamps_from_arrays
    >>> recs = [{"r:diaSourceId": s, "r:midpointMjdTai": 60000.0 + s, "r:band": "g"}
    ...         for s in (2, 1)]
    >>> cuts = {s: stamps_from_arrays(s, {k: np.ones((30 + s, 30 + s), np.float32)
    ...                                   for k in KINDS}) for s in (1, 2)}
    >>> ds = assemble_cube(9, recs, cuts)
    >>> ds.cutout.shape, ds.diaSourceId.values.tolist(), ds.side.values.tolist()
    ((2, 3, 32, 32, 1), [1, 2], [31, 32])
    """
    object_id = parse_id(object_id)
    _check_options(planes, size)
    epochs, missing = _select(object_id, records, cutouts)
    if columns is None:
        keys: Iterable[str] = dict.fromkeys(k for e in epochs.values() for k in e.record)
    else:
        keys = [rubin_column(c) for c in columns]
    return _build(
        object_id,
        epochs.values(),
        missing,
        planes=planes,
        size=size,
        keys=keys,
        attrs=dict(attrs or {}),
    )


def _epochs_from_cube(ds: xr.Dataset) -> tuple[list[_Epoch], list[dict[str, Any]]]:
    """Return the epochs of a cube (stamps un-padded, crops kept) and their records."""
    if CUTOUT_VAR not in ds or COLUMNS_ATTR not in ds.attrs or OBJECT_ID not in ds.attrs:
        raise CubeError("not a finkcube cube: no cutout variable or source_columns attribute")
    if [str(k) for k in ds["kind"].values] != list(KINDS):
        raise CubeError(f"cube kinds are {ds['kind'].values.tolist()}, expected {list(KINDS)}")
    object_id = int(ds.attrs[OBJECT_ID])
    records: list[dict[str, Any]] = [{} for _ in range(ds.sizes["time"])]
    for key, (name, kind) in ds.attrs[COLUMNS_ATTR].items():
        if kind == "null":
            continue
        for record, value in zip(records, _decode_column(ds[name].values, kind), strict=True):
            record[key] = value
    for record in records:
        record[_OBJECT_KEY] = object_id
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
                if name == PLANES[0]:
                    planes[name] = block.copy()
                elif not np.isnan(block).all():
                    planes[name] = block.astype(np.int32) if name == PLANES[2] else block.copy()
            own_psf = None
            if psf is not None and psf_sides is not None and psf_sides[i, k]:
                start = (psf.shape[-1] - psf_sides[i, k]) // 2
                stop = start + psf_sides[i, k]
                own_psf = psf[i, k, start:stop, start:stop].copy()
            header = str(headers[i, k]) if headers is not None and headers[i, k] else None
            stamps.append(Stamp(kind, planes, own_psf, header))
        cutouts = SourceCutouts(record[_ID_KEY], tuple(stamps))
        epochs.append(_Epoch(record[_ID_KEY], record[_TIME_KEY], record, cutouts, side))
    return epochs, records


def cube_to_cutouts(ds: xr.Dataset) -> tuple[list[dict[str, Any]], dict[int, SourceCutouts]]:
    """Return the source records and stamps a cube was assembled from (its inverse).

    Parameters
    ----------
    ds : xarray.Dataset
        A cube made by :func:`assemble_cube` (in memory or opened from a store; it is read).

    Returns
    -------
    records : list of dict
        One record per epoch, in time order, with ``r:`` keys (``r:diaObjectId`` included).
        A ``str`` column's nulls come back as ``""``.
    cutouts : dict of int to SourceCutouts
        The stamps by diaSourceId, un-padded to their own side. A stamp cropped to a fixed
        ``size`` comes back cropped (``size x size``). A variance or mask plane entirely
        NaN comes back absent; masks come back as int32.

    Examples
    --------
    >>> from finkcube.decode import stamps_from_arrays
    >>> rec = {"r:diaSourceId": 5, "r:diaObjectId": 9, "r:midpointMjdTai": 6e4, "r:band": "r"}
    >>> cut = stamps_from_arrays(5, {k: np.ones((31, 31), np.float32) for k in KINDS})
    >>> records, cutouts = cube_to_cutouts(assemble_cube(9, [rec], {5: cut}, size=40))
    >>> records == [rec], cutouts[5].side
    (True, 31)
    """
    epochs, records = _epochs_from_cube(ds)
    return records, {e.source_id: e.cutouts for e in epochs}


def merge_cubes(
    old: xr.Dataset,
    records: Sequence[Mapping[str, Any]],
    cutouts: Mapping[int, SourceCutouts],
    *,
    missing: Iterable[int] = (),
    columns: Sequence[str] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Add sources to a cube: the union of its epochs and the new ones, sorted by time.

    The cube keeps its ``planes`` and ``size``; with no fixed size the canvas grows when a
    new stamp is larger. A new source whose id is already in the cube replaces it; a source
    older than the newest epoch is placed in order.

    Parameters
    ----------
    old : xarray.Dataset
        The cube to extend (it is read into memory).
    records, cutouts
        The new sources, as for :func:`assemble_cube`.
    missing : iterable of int, optional
        More diaSourceIds known to lack cutouts (added to ``missing_diaSourceIds``).
    columns : sequence of str, optional
        Columns to keep besides the cube's own (default: every column of ``records``).
    attrs : mapping, optional
        Attributes to set or replace; the cube's ``created`` is kept, ``updated`` is set.

    Returns
    -------
    xarray.Dataset
        The new cube.

    Examples
    --------
    >>> from finkcube.decode import stamps_from_arrays
    >>> def src(s, side):
    ...     rec = {"r:diaSourceId": s, "r:midpointMjdTai": 6e4 + s, "r:band": "g"}
    ...     return rec, stamps_from_arrays(s, {k: np.ones((side, side), np.float32)
    ...                                        for k in KINDS})
    >>> (r1, c1), (r2, c2) = src(2, 30), src(1, 36)
    >>> cube = merge_cubes(assemble_cube(9, [r1], {2: c1}), [r2], {1: c2})
    >>> cube.diaSourceId.values.tolist(), cube.sizes["x"]
    ([1, 2], 36)
    """
    old_epochs, _ = _epochs_from_cube(old)
    object_id = int(old.attrs[OBJECT_ID])
    epochs = {e.source_id: e for e in old_epochs}
    new, new_missing = _select(object_id, records, cutouts)
    epochs.update(new)
    gone = {int(s) for s in old.attrs.get(MISSING_ATTR, [])} | new_missing | set(missing)
    if columns is None:
        extra: Iterable[str] = (k for e in new.values() for k in e.record)
    else:
        extra = (rubin_column(c) for c in columns)
    keys = dict.fromkeys((*old.attrs[COLUMNS_ATTR], *extra))
    kept = {k: v for k, v in old.attrs.items() if k not in _OWN_ATTRS}
    return _build(
        object_id,
        epochs.values(),
        gone - epochs.keys(),
        planes=old.attrs.get("planes", PLANES_ARGS[0]),
        size=old.attrs.get("size"),
        keys=keys,
        attrs={**kept, **(attrs or {}), "created": old.attrs.get("created"), "updated": _now()},
    )


def epoch_wcs(ds: xr.Dataset, index: int, kind: str) -> WCS:
    """Rebuild the celestial WCS of one epoch's stamp, in the cube's pixel grid.

    Rubin's cutout headers carry a local linear WCS without ``CTYPE``/``CUNIT``; this adds
    ``RA---TAN``/``DEC--TAN`` in degrees and shifts ``CRPIX`` by the stamp's offset in the
    canvas (its padding, or minus its crop), so pixel ``(x, y)`` of ``ds.cutout`` maps to
    the sky position of that pixel in the original file.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube built with ``planes="all"``.
    index : int
        The epoch's position along ``time``.
    kind : str
        ``"Science"``, ``"Template"`` or ``"Difference"``.

    Returns
    -------
    astropy.wcs.WCS

    Raises
    ------
    CubeError
        When the cube keeps no WCS cards (``planes="data"``) or this stamp had none.
    InputError
        For an unknown kind.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    if kind not in KINDS:
        raise InputError(f"invalid kind {kind!r}: expected one of {', '.join(KINDS)}")
    if WCS_VAR not in ds:
        raise CubeError("this cube keeps no WCS cards: build it with planes='all'")
    epoch = ds.isel(time=index)
    text = str(epoch[WCS_VAR].sel(kind=kind).values.item())
    if not text:
        raise CubeError(f"epoch {index} ({kind}) of this cube has no WCS cards")
    header = fits.Header.fromstring(text)
    canvas = ds.sizes["x"]
    _, _, offset = placement(int(epoch[SIDE].values), canvas)
    for axis, ctype in ((1, "RA---TAN"), (2, "DEC--TAN")):
        header.setdefault(f"CTYPE{axis}", ctype)
        header.setdefault(f"CUNIT{axis}", "deg")
        header[f"CRPIX{axis}"] = header.get(f"CRPIX{axis}", 0.0) + offset
        header[f"NAXIS{axis}"] = canvas
    return WCS(header)
