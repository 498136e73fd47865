"""Pure numpy cores on stamps: the cube's centring convention, resizing and normalisation.

:func:`placement` and :func:`placement_offset` say where a stamp sits in a cube's canvas;
the cube builder (:mod:`finkcube.cube.assemble`), its inverse and :func:`finkcube.wcs.epoch_wcs` all
use them. The other functions work on stamps whose two last axes are ``(y, x)``; everything
before is a stack. The xarray side (:mod:`finkcube.accessor`) maps them over dask blocks
with :func:`xarray.apply_ufunc`, and :class:`finkcube.ml.CubeDataset` calls them on the one
epoch it reads, so both give the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import numpy as np

from finkcube.errors import InputError
from finkcube.names import DATA_PLANE, VARIANCE_PLANE

__all__ = [
    "MAD_TO_SIGMA",
    "NORMALIZE_METHODS",
    "normalize_stamps",
    "placement",
    "placement_offset",
    "resize_stamps",
]

#: Factor turning a median absolute deviation into a Gaussian sigma: 1 / Phi^-1(3/4).
MAD_TO_SIGMA: Final = 1.482602218505602
#: Per-stamp normalisations :func:`normalize_stamps` knows.
NORMALIZE_METHODS: Final = ("robust", "minmax")

NormalizeMethod = Literal["robust", "minmax"]


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


def placement_offset(side: np.ndarray | int, canvas: int) -> np.ndarray:
    """Return where pixel 0 of a stamp lands in a canvas, the cube's centring convention.

    A stamp of side ``s`` that fits sits at ``(canvas - s) // 2``; a larger one is
    centre-cropped from ``(s - canvas) // 2``, so it lands at minus that.

    Parameters
    ----------
    side : int or numpy.ndarray
        The stamp's own side(s).
    canvas : int
        The canvas side.

    Returns
    -------
    numpy.ndarray
        The offset(s), ``int64``.

    Examples
    --------
    >>> placement_offset(np.array([30, 31, 40, 45]), 40).tolist()
    [5, 4, 0, -2]
    """
    side = np.asarray(side, dtype=np.int64)
    return np.where(side <= canvas, (canvas - side) // 2, -((side - canvas) // 2))


def resize_stamps(
    stamps: np.ndarray, sides: np.ndarray | int | None = None, *, size: int
) -> np.ndarray:
    """Move square canvases of stamps to a canvas of side ``size``, keeping each centred.

    Each stamp is placed where the cube builder would have put it had it been built with
    ``size=size``: its own side ``s`` (``sides``) gives its offset in the old canvas and in
    the new one (see :func:`placement_offset`). Pixels the old canvas does not hold are NaN.

    Parameters
    ----------
    stamps : numpy.ndarray
        Stamps, shape ``(..., S, S)``.
    sides : int or numpy.ndarray or None
        The stamps' own sides, broadcastable to ``stamps.shape[:-2]``; None means ``S``
        (the canvas itself is treated as one stamp).
    size : int
        The new canvas side.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(..., size, size)``.

    Raises
    ------
    InputError
        If ``size`` is not positive or the stamps are not square.

    Examples
    --------
    >>> a = np.arange(16, dtype=np.float32).reshape(4, 4)
    >>> resize_stamps(a, size=2).tolist()
    [[5.0, 6.0], [9.0, 10.0]]
    >>> resize_stamps(a, size=6)[1:5, 1:5].tolist() == a.tolist()
    True
    """
    stamps = np.asarray(stamps)
    old = stamps.shape[-1]
    if stamps.ndim < 2 or stamps.shape[-2] != old:
        raise InputError(f"stamps must be square on their two last axes, got {stamps.shape}")
    size = _check_size(size)
    lead = stamps.shape[:-2]
    side = np.broadcast_to(np.asarray(old if sides is None else sides, dtype=np.int64), lead)
    shift = placement_offset(side, size) - placement_offset(side, old)
    out = np.full((*lead, size, size), np.nan, dtype=np.float32)
    for d in np.unique(shift):
        d = int(d)
        start = max(0, -d)  # first pixel of the old canvas that is kept
        dest = max(0, d)  # where it lands
        n = min(old - start, size - dest)
        if n <= 0:
            continue
        which = shift == d
        src, dst = slice(start, start + n), slice(dest, dest + n)
        out[which, dst, dst] = stamps[which, src, src]
    return out


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size <= 0:
        raise InputError(f"size must be a positive integer number of pixels, got {size!r}")
    return int(size)


def _stats(data: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-stamp centre and scale of ``data`` (``(..., Y, X)``), float64, never NaN or 0."""
    flat = data.reshape(*data.shape[:-2], -1).astype(np.float64)
    finite = np.isfinite(flat)
    filled = np.asarray(finite.any(axis=-1))
    # Blank stamps get zeros so that the nan-reductions see no all-NaN slice (and warn not).
    safe = np.where(filled[..., None], flat, 0.0)
    if method == "robust":
        centre = np.nanmedian(safe, axis=-1)
        scale = MAD_TO_SIGMA * np.nanmedian(np.abs(safe - centre[..., None]), axis=-1)
    else:
        centre = np.nanmin(safe, axis=-1)
        scale = np.nanmax(safe, axis=-1) - centre
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return centre, scale


def normalize_stamps(
    stamps: np.ndarray,
    planes: Sequence[str],
    method: NormalizeMethod | str = "robust",
    fill: float | None = 0.0,
) -> np.ndarray:
    """Scale each stamp by statistics of its own data plane, then fill NaN.

    The centre and scale come from the ``data`` plane of each stamp:

    - ``"robust"``: centre = median, scale = 1.4826 x MAD (median absolute deviation,
      scaled to match a Gaussian sigma);
    - ``"minmax"``: centre = minimum, scale = maximum - minimum (data to ``[0, 1]``).

    NaN pixels are ignored. The ``data`` plane becomes ``(x - centre) / scale``, a
    ``variance`` plane ``v / scale**2`` (so it stays the variance of the scaled data), any
    other plane (``mask``) is left alone. A scale that is zero or undefined (constant or
    blank stamp) counts as 1. Then NaN become ``fill`` (``None`` keeps them).

    Parameters
    ----------
    stamps : numpy.ndarray
        Shape ``(..., P, Y, X)``: ``P`` planes named by ``planes``.
    planes : sequence of str
        The plane names, in the order of axis ``-3``; must hold ``"data"``.
    method : {"robust", "minmax"}
        The statistics.
    fill : float or None
        What NaN pixels become after scaling.

    Returns
    -------
    numpy.ndarray
        float32, same shape.

    Raises
    ------
    InputError
        For an unknown method or planes without ``"data"``.

    Examples
    --------
    >>> stamp = np.array([[[1.0, 2.0], [3.0, np.nan]]], dtype=np.float32)
    >>> normalize_stamps(stamp, ["data"], "minmax", fill=-1.0).tolist()
    [[[0.0, 0.5], [1.0, -1.0]]]
    """
    if method not in NORMALIZE_METHODS:
        raise InputError(f"unknown normalisation {method!r}: expected one of {NORMALIZE_METHODS}")
    planes = list(planes)
    if DATA_PLANE not in planes:
        raise InputError(f"normalising needs the {DATA_PLANE!r} plane, got planes {planes}")
    stamps = np.asarray(stamps)
    if stamps.ndim < 3 or stamps.shape[-3] != len(planes):
        raise InputError(f"stamps of shape {stamps.shape} do not hold the planes {planes}")
    centre, scale = _stats(stamps[..., planes.index(DATA_PLANE), :, :], method)
    out = stamps.astype(np.float64)  # a copy
    centre, scale = centre[..., None, None], scale[..., None, None]
    for p, name in enumerate(planes):
        if name == DATA_PLANE:
            out[..., p, :, :] = (out[..., p, :, :] - centre) / scale
        elif name == VARIANCE_PLANE:
            out[..., p, :, :] /= scale**2
    if fill is not None:
        out[np.isnan(out)] = fill
    return out.astype(np.float32)
