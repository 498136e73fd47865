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
ordered by ``diaSourceId``, and ``time`` stays strictly ascending: the later of a tie is
moved up by one float64 step (:func:`~finkcube.cube.times.strictly_ascending`).

Helpers: :mod:`finkcube.cube.epochs` pairs records with stamps (and takes a cube apart),
:mod:`finkcube.cube.columns` encodes the columns, :mod:`finkcube.cube.wcs` rebuilds the stamps' WCS.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import xarray as xr

from finkcube._version import __version__
from finkcube.config import MAX_SIZE
from finkcube.cube.columns import column_attrs, encode_columns
from finkcube.cube.epochs import Epoch, epochs_from_cube, pair_epochs
from finkcube.cube.quality import with_quality
from finkcube.cube.stack import CutoutStack, PsfStack, lazily
from finkcube.cube.times import strictly_ascending
from finkcube.cube.wcs import epoch_wcs
from finkcube.cutouts import SourceCutouts
from finkcube.errors import CubeError, InputError
from finkcube.ids import parse_id

# Importable from here, as it was before _types.py spelled it.
from finkcube.names import BAND as BAND
from finkcube.names import (
    COLUMNS_ATTR,
    CROPPED,
    CUTOUT_VAR,
    DIMS,
    KINDS,
    MISSING_ATTR,
    OBJECT_ID,
    PLANES_ARGS,
    SIDE,
    SOURCE_ID,
    PlanesArg,
    rubin_column,
)

__all__ = ["assemble_cube", "cube_to_cutouts", "epoch_wcs", "merge_cubes"]

logger = logging.getLogger(__name__)

#: Attributes a cube computes itself; the rest (``api_url``, ...) travel through a merge.
_OWN_ATTRS = {OBJECT_ID, "finkcube_version", "created", "updated", "planes", "size",
              MISSING_ATTR, COLUMNS_ATTR, "finkcube_complete"}  # fmt: skip


def _check_options(planes: str, size: int | None) -> None:
    if planes not in PLANES_ARGS:
        raise InputError(f"invalid planes {planes!r}: expected one of {', '.join(PLANES_ARGS)}")
    if size is not None and (
        isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE
    ):
        raise InputError(f"invalid size {size!r}: expected a canvas side of 1..{MAX_SIZE} pixels")


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


def _build(
    object_id: int,
    epochs: list[Epoch],
    missing: Iterable[int],
    *,
    planes: str,
    size: int | None,
    keys: Iterable[str],
    attrs: Mapping[str, Any],
    lazy: bool = False,
) -> xr.Dataset:
    epochs.sort(key=lambda e: (e.time, e.source_id))
    order = epochs  # emptied below, once its stamps are taken
    if not order:
        raise CubeError(f"diaObjectId {object_id}: no source with cutouts; nothing to stack")
    times = strictly_ascending(np.array([e.time for e in order]))
    if any(t != e.time for t, e in zip(times, order, strict=True)):
        logger.info("diaObjectId %s: sources share a time; later ones moved up by float64 "
                    "steps, in diaSourceId order", object_id)  # fmt: skip
    sides = np.array([e.side for e in order], dtype=np.int64)
    ids = np.array([e.source_id for e in order], dtype=np.int64)
    canvas = size if size is not None else int(max(e.cutouts.side for e in order))
    records = [e.record for e in order]
    rows = [e.cutouts.stamps for e in order]
    order.clear()  # the stamps are now held by the stacks only
    stack = CutoutStack(rows, canvas, all_planes=planes == "all")
    extra = PsfStack(rows) if planes == "all" else None

    columns, arrays = encode_columns(records, keys)
    coords: dict[str, Any] = {
        "time": ("time", times, {"long_name": "midpointMjdTai (MJD, TAI)", "units": "d"}),
        "kind": ("kind", np.array(KINDS, dtype=object)),
        "plane": ("plane", np.array(stack.planes, dtype=object)),
        SOURCE_ID: ("time", ids),
        SIDE: ("time", sides, {"long_name": "stamp side before padding or cropping"}),
        CROPPED: ("time", sides > canvas, {"long_name": "stamp centre-cropped to the canvas"}),
    }
    coords.update({name: ("time", array, column_attrs(name)) for name, array in arrays.items()})
    data_vars: dict[str, Any] = {
        CUTOUT_VAR: (DIMS, lazily(stack, CUTOUT_VAR) if lazy else stack[:],
                     {"long_name": "cutout pixels (nJy; variance nJy**2)"}),
    }  # fmt: skip
    if extra is not None:
        data_vars.update(extra.variables(lazy=lazy))

    own = {
        OBJECT_ID: object_id,
        "finkcube_version": __version__,
        "created": attrs.get("created") or _now(),
        "planes": planes,
        "size": size,
        MISSING_ATTR: [str(s) for s in sorted(missing)],
        COLUMNS_ATTR: {key: list(value) for key, value in columns.items()},
    }
    merged = _json_attrs({**{k: v for k, v in attrs.items() if k != "created"}, **own})
    return with_quality(xr.Dataset(data_vars, coords, attrs=merged), stack.blanks())


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
    missing: Iterable[int] = (),
    lazy: bool = False,
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
    missing : iterable of int, optional
        More diaSourceIds known to lack cutouts (added to ``missing_diaSourceIds``).
    lazy : bool
        Make ``cutout`` and ``psf`` dask arrays chunked along ``time`` as a store writes
        them, each chunk of epochs placed on the canvas when it is computed
        (:mod:`finkcube.cube.stack`). The cube then holds the stamps, not its pixels:
        :func:`~finkcube.store.write_cube` writes it a chunk at a time, so that a build
        never holds its stamps and its whole cube at once.

    Returns
    -------
    xarray.Dataset
        The cube (see the module docstring), numpy-backed unless ``lazy``.

    Raises
    ------
    CubeError
        When no source has cutouts, a record lacks its id or time, or stamps disagree.
    InputError
        For a bad ``planes``, ``size`` or attribute.

    Examples
    --------
    >>> from finkcube.service.decode import stamps_from_arrays
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
    epochs, gone = pair_epochs(object_id, records, cutouts)
    if columns is None:
        keys: Iterable[str] = dict.fromkeys(k for e in epochs.values() for k in e.record)
    else:
        keys = [rubin_column(c) for c in columns]
    left_out = (gone | {int(s) for s in missing}) - epochs.keys()
    chosen = list(epochs.values())
    epochs.clear()
    return _build(
        object_id,
        chosen,
        left_out,
        planes=planes,
        size=size,
        keys=keys,
        attrs=dict(attrs or {}),
        lazy=lazy,
    )


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
    >>> from finkcube.service.decode import stamps_from_arrays
    >>> rec = {"r:diaSourceId": 5, "r:diaObjectId": 9, "r:midpointMjdTai": 6e4, "r:band": "r"}
    >>> cut = stamps_from_arrays(5, {k: np.ones((31, 31), np.float32) for k in KINDS})
    >>> records, cutouts = cube_to_cutouts(assemble_cube(9, [rec], {5: cut}, size=40))
    >>> records == [rec], cutouts[5].side
    (True, 31)
    """
    epochs, records = epochs_from_cube(ds)
    return records, {e.source_id: e.cutouts for e in epochs}


def merge_cubes(
    old: xr.Dataset,
    records: Sequence[Mapping[str, Any]],
    cutouts: Mapping[int, SourceCutouts],
    *,
    missing: Iterable[int] = (),
    columns: Sequence[str] | None = None,
    attrs: Mapping[str, Any] | None = None,
    lazy: bool = False,
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
    lazy : bool
        As for :func:`assemble_cube`.

    Returns
    -------
    xarray.Dataset
        The new cube.

    Examples
    --------
    >>> from finkcube.service.decode import stamps_from_arrays
    >>> def src(s, side):
    ...     rec = {"r:diaSourceId": s, "r:midpointMjdTai": 6e4 + s, "r:band": "g"}
    ...     return rec, stamps_from_arrays(s, {k: np.ones((side, side), np.float32)
    ...                                        for k in KINDS})
    >>> (r1, c1), (r2, c2) = src(2, 30), src(1, 36)
    >>> cube = merge_cubes(assemble_cube(9, [r1], {2: c1}), [r2], {1: c2})
    >>> cube.diaSourceId.values.tolist(), cube.sizes["x"]
    ([1, 2], 36)
    """
    old_epochs, _ = epochs_from_cube(old)
    object_id = int(old.attrs[OBJECT_ID])
    epochs = {e.source_id: e for e in old_epochs}
    new, new_missing = pair_epochs(object_id, records, cutouts)
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
        list(epochs.values()),
        gone - epochs.keys(),
        planes=old.attrs.get("planes", PLANES_ARGS[0]),
        size=old.attrs.get("size"),
        keys=keys,
        attrs={**kept, **(attrs or {}), "created": old.attrs.get("created"), "updated": _now()},
        lazy=lazy,
    )
