"""Pure assembly of an object's forced light curve onto its own dimension of the cube.

The service's ``/api/v1/fp`` gives one row per visit of the object's position, detection or
not (no cutouts). :func:`attach_forced_photometry` puts those rows on the dimension
:data:`FP_DIM` (``fp_time``, the visit's ``midpointMjdTai``), beside the stamps and
detections of the ``time`` dimension, so that both sit in one ``xarray.Dataset``:

- ``fp_time`` (float64, MJD TAI): strictly ascending, like ``time``: two rows of one time
  are both kept, ordered by ``fp_diaForcedSourceId``, the later moved up by float64 steps
  (:func:`~finkcube.cube.times.strictly_ascending`);
- ``fp_diaForcedSourceId`` and ``fp_visit`` (int64, exact; a missing visit is 0),
  ``fp_band`` (str, ``""`` when missing);
- ``fp_psfFlux``, ``fp_psfFluxErr``, ``fp_scienceFlux``, ``fp_scienceFluxErr`` (float64,
  nJy; NaN when missing).

The fluxes are data variables (measurements, like ``cutout``), the ids and band their
coordinates: so plain xarray and :func:`~finkcube.open_cube` read them back alike. The cube
attribute :data:`FP_ATTR` says the cube carries a forced light
curve, even an empty one (an object with no forced photometry yet): an update refetches it.
Nothing here reads or writes anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from finkcube.cube.times import strictly_ascending
from finkcube.names import BAND, TIME_COLUMN

__all__ = [
    "FP_ATTR",
    "FP_COLUMNS",
    "FP_DIM",
    "FP_ID",
    "FP_PREFIX",
    "attach_forced_photometry",
    "drop_forced_photometry",
    "forced_columns",
    "has_forced_photometry",
    "same_forced_photometry",
]

logger = logging.getLogger(__name__)

#: The dimension of the forced light curve, and the prefix of its coordinates.
FP_DIM = "fp_time"
FP_PREFIX = "fp_"
#: The cube attribute that marks a cube built with its forced light curve.
FP_ATTR = "forced_photometry"
#: The id of a forced measurement.
FP_ID = "diaForcedSourceId"
_INTS = (FP_ID, "visit")
_FLUXES = ("psfFlux", "psfFluxErr", "scienceFlux", "scienceFluxErr")
#: The ``/api/v1/fp`` columns the cube keeps (bare names), ``diaObjectId`` aside.
FP_COLUMNS = (FP_ID, "visit", TIME_COLUMN, BAND, *_FLUXES)


def _values(columns: Mapping[str, Any], name: str, n: int) -> np.ma.MaskedArray:
    """One column as a masked array of ``n`` values (all masked when the column is absent)."""
    if name not in columns:
        return np.ma.masked_all(n, dtype=object)
    values = np.ma.asarray(columns[name])
    if values.shape != (n,):
        raise ValueError(f"forced photometry column {name!r} has shape {values.shape}, not {n}")
    return values


def _floats(values: np.ma.MaskedArray) -> np.ndarray:
    out = np.full(values.shape, np.nan)
    for i, value in enumerate(values.tolist()):  # masked entries come back as None
        if value is not None:
            out[i] = float(value)
    return out


def _ints(values: np.ma.MaskedArray) -> np.ndarray:
    """int64 exactly (Python ints, never through float), 0 where missing."""
    return np.array([0 if v is None else int(v) for v in values.tolist()], dtype=np.int64)


def _strings(values: np.ma.MaskedArray) -> np.ndarray:
    return np.array(["" if v is None else str(v) for v in values.tolist()], dtype=object)


def forced_columns(columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The forced light curve as the cube stores it: typed, sorted, one row per measurement.

    Parameters
    ----------
    columns : mapping of str to array-like
        The ``/api/v1/fp`` columns by bare name (an :class:`astropy.table.Table` works:
        masked values are missing values). Rows without a ``diaForcedSourceId`` or a
        finite ``midpointMjdTai`` are dropped (logged); a repeated id is kept once.

    Returns
    -------
    dict of str to numpy.ndarray
        The columns of :data:`FP_COLUMNS`, sorted by (time, id).

    Examples
    --------
    >>> fp = forced_columns({"diaForcedSourceId": [7, 5], "midpointMjdTai": [2.0, 1.0],
    ...                      "band": ["r", "g"], "psfFlux": [3.5, None]})
    >>> fp["diaForcedSourceId"].tolist(), fp["band"].tolist(), fp["psfFlux"].tolist()
    ([5, 7], ['g', 'r'], [nan, 3.5])
    """
    names = [name for name in (FP_ID, TIME_COLUMN) if name in columns]
    n = len(columns[names[0]]) if names else 0
    ids, times = _values(columns, FP_ID, n), _floats(_values(columns, TIME_COLUMN, n))
    keep = ~np.ma.getmaskarray(ids) & np.isfinite(times)
    seen: set[int] = set()
    for i in np.flatnonzero(keep):
        value = int(ids[i])
        keep[i] = value not in seen
        seen.add(value)
    if not keep.all():
        logger.info("forced photometry: %d row(s) without id, time or with a repeated id "
                    "dropped", int((~keep).sum()))  # fmt: skip
    out: dict[str, np.ndarray] = {}
    for name in FP_COLUMNS:
        values = _values(columns, name, n)[keep]
        if name in _INTS:
            out[name] = _ints(values)
        elif name == BAND:
            out[name] = _strings(values)
        else:
            out[name] = _floats(values)
    order = np.lexsort((out[FP_ID], out[TIME_COLUMN]))
    rows = {name: values[order] for name, values in out.items()}
    rows[TIME_COLUMN] = strictly_ascending(rows[TIME_COLUMN])
    return rows


def _coord_name(column: str) -> str:
    return FP_DIM if column == TIME_COLUMN else FP_PREFIX + column


def drop_forced_photometry(cube: xr.Dataset) -> xr.Dataset:
    """The cube without its forced light curve (its ``fp_time`` dimension and attribute)."""
    names = [name for name, var in cube.variables.items() if FP_DIM in var.dims]
    out = cube.drop_vars(names)
    out.attrs = {k: v for k, v in cube.attrs.items() if k != FP_ATTR}
    return out


def attach_forced_photometry(cube: xr.Dataset, columns: Mapping[str, Any]) -> xr.Dataset:
    """Return the cube with the forced light curve ``columns`` on its ``fp_time`` dimension.

    A forced light curve the cube already has is replaced.

    Parameters
    ----------
    cube : xarray.Dataset
        A cube.
    columns : mapping of str to array-like
        The ``/api/v1/fp`` columns by bare name (see :func:`forced_columns`).

    Returns
    -------
    xarray.Dataset
        The cube, with the ``fp_*`` coordinates of the module docstring and the attribute
        ``forced_photometry = True``.

    Examples
    --------
    >>> cube = xr.Dataset(coords={"time": [1.0]})
    >>> fp = {"diaForcedSourceId": [5], "midpointMjdTai": [0.5], "psfFlux": [2.0]}
    >>> out = attach_forced_photometry(cube, fp)
    >>> out.sizes["fp_time"], out.fp_psfFlux.values.tolist(), out.attrs["forced_photometry"]
    (1, [2.0], True)
    """
    fp = forced_columns(columns)
    coords: dict[str, Any] = {}
    fluxes: dict[str, Any] = {}
    for name, values in fp.items():
        attrs = {"long_name": f"forced photometry: {name}"}
        if name in _FLUXES:
            attrs["units"] = "nJy"
        (fluxes if name in _FLUXES else coords)[_coord_name(name)] = (FP_DIM, values, attrs)
    out = drop_forced_photometry(cube).assign_coords(coords).assign(fluxes)
    out.attrs = {**out.attrs, FP_ATTR: True}
    return out


def has_forced_photometry(cube: xr.Dataset) -> bool:
    """Whether the cube was built with its forced light curve (refetched by an update)."""
    return bool(cube.attrs.get(FP_ATTR, False))


def same_forced_photometry(cube: xr.Dataset, columns: Mapping[str, Any]) -> bool:
    """Whether the cube's forced light curve already equals ``columns`` (NaN equal to NaN)."""
    if not has_forced_photometry(cube):
        return False
    fp = forced_columns(columns)
    for name, values in fp.items():
        coord = _coord_name(name)
        if coord not in cube.variables:
            return False
        held = np.asarray(cube[coord].values)
        if held.shape != values.shape:
            return False
        if name in _INTS:
            if not np.array_equal(held.astype(np.int64), values):
                return False
        elif name == BAND:
            if [str(v) for v in held] != values.tolist():
                return False
        elif not np.array_equal(held.astype(np.float64), values, equal_nan=True):
            return False
    return True
