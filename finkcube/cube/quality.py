"""Per-epoch quality of a cube's stamps, as coordinates along ``time``.

- ``nan_fraction`` ``(time, kind)``: the fraction of NaN pixels in the stamp's own
  footprint (the canvas padding does not count), data plane;
- ``offset_x``, ``offset_y`` ``(time)``: where the source sits (the Science stamp's
  ``CRPIX``, Rubin's source position) relative to the canvas centre, pixel
  ``(S - 1) / 2`` of an ``S``-pixel canvas, in pixels; NaN when the cube keeps no WCS cards
  (``planes="data"`` without ``align``);
- ``edge`` ``(time)``: the stamp was cut at a detector edge: a pixel of its outermost rows
  or columns (of its own footprint, any kind) is NaN. Off-detector pixels are NaN and the
  stamp is cut around a source on the detector, so they always reach its border.

:func:`with_quality` adds them (the builder calls it); :func:`good_epochs` selects on them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr

from finkcube.cube.canvas import placement
from finkcube.errors import InputError
from finkcube.names import (
    CUTOUT_VAR,
    DATA_PLANE,
    EDGE,
    KINDS,
    NAN_FRACTION,
    OFFSET_X,
    OFFSET_Y,
    SIDE,
    WCS_VAR,
)

__all__ = ["good_epochs", "with_quality"]


def _crpix(text: str) -> tuple[float, float]:
    """The (CRPIX1, CRPIX2) of header cards, NaN when absent."""
    from astropy.io import fits

    header = fits.Header.fromstring(text)
    return float(header.get("CRPIX1", np.nan)), float(header.get("CRPIX2", np.nan))


def with_quality(ds: xr.Dataset, blanks: Iterable[np.ndarray] | None = None) -> xr.Dataset:
    """Return the cube with its quality coordinates (see the module docstring) set anew.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube.
    blanks : iterable of numpy.ndarray, optional
        Each epoch's NaN mask of its data planes in their own footprint on the canvas,
        ``(kind, side, side)`` boolean, when the caller has them (the cube builder, from the
        stamps: a lazy cube's pixels are then not read); by default read from ``cutout``.

    Examples
    --------
    >>> data = np.ones((1, 3, 4, 4, 1), np.float32)
    >>> data[0, 0, 0, 0, 0] = np.nan
    >>> ds = xr.Dataset({"cutout": (("time", "kind", "y", "x", "plane"), data)},
    ...                 coords={"time": [6e4], "kind": ["Science", "Template", "Difference"],
    ...                         "plane": ["data"], "side": ("time", [4])})
    >>> q = with_quality(ds)
    >>> q.nan_fraction.values.tolist(), bool(q.edge[0]), float(q.offset_x[0])
    ([[0.0625, 0.0, 0.0]], True, nan)
    """
    n, canvas = ds.sizes["time"], ds.sizes["x"]
    sides = ds[SIDE].values if SIDE in ds.coords else np.full(n, canvas)
    if blanks is None:
        planes = [str(p) for p in ds["plane"].values]
        data = ds[CUTOUT_VAR].values[..., planes.index(DATA_PLANE)]
        footprints = (placement(int(side), canvas)[1] for side in sides)
        blanks = (np.isnan(data[i, :, dst, dst]) for i, dst in enumerate(footprints))
    headers = ds[WCS_VAR].values if WCS_VAR in ds else None
    nan = np.zeros((n, len(KINDS)))
    edge = np.zeros(n, dtype=bool)
    offsets = np.full((n, 2), np.nan)
    centre = (canvas - 1) / 2.0
    for i, blank in enumerate(blanks):
        nan[i] = blank.mean(axis=(1, 2))
        edge[i] = bool(blank[:, [0, -1], :].any() or blank[:, :, [0, -1]].any())
        if headers is not None and headers[i, 0]:
            offset = placement(int(sides[i]), canvas)[2]
            x, y = _crpix(str(headers[i, 0]))
            offsets[i] = (x - 1.0 + offset - centre, y - 1.0 + offset - centre)
    return ds.assign_coords({
        NAN_FRACTION: (("time", "kind"), nan, {"long_name": "fraction of NaN stamp pixels"}),
        OFFSET_X: ("time", offsets[:, 0], {"long_name": "source x - canvas centre",
                                           "units": "pixel"}),
        OFFSET_Y: ("time", offsets[:, 1], {"long_name": "source y - canvas centre",
                                           "units": "pixel"}),
        EDGE: ("time", edge, {"long_name": "stamp cut at a detector edge (NaN on its border)"}),
    })  # fmt: skip


def good_epochs(
    ds: xr.Dataset,
    *,
    max_nan: float = 0.0,
    max_offset: float | None = None,
    allow_edge: bool = False,
) -> xr.Dataset:
    """Return the epochs of a cube that pass the quality cuts.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube; a cube without the quality coordinates gets them first.
    max_nan : float
        The largest fraction of NaN pixels any kind's stamp may have.
    max_offset : float, optional
        The farthest the source may sit from the canvas centre, pixels (an unknown offset
        passes).
    allow_edge : bool
        Keep the stamps cut at a detector edge.

    Returns
    -------
    xarray.Dataset
        The cube at the epochs kept: ``ds.isel(time=keep)``.
    """
    if not 0.0 <= max_nan <= 1.0:
        raise InputError(f"invalid max_nan {max_nan!r}: expected a fraction from 0 to 1")
    q = ds if NAN_FRACTION in ds.coords else with_quality(ds)
    keep = (q[NAN_FRACTION] <= max_nan).all("kind").values
    if not allow_edge:
        keep &= ~q[EDGE].values.astype(bool)
    if max_offset is not None:
        distance = np.hypot(q[OFFSET_X].values, q[OFFSET_Y].values)
        keep &= ~(distance > max_offset)
    return q.isel(time=np.flatnonzero(keep))
