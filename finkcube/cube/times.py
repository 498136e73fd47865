"""A cube's time axis: strictly ascending even where sources share a time, and its epochs
as :class:`astropy.time.Time`.

``time`` is the cube's dimension coordinate: Rubin's ``midpointMjdTai`` (MJD, TAI, units
``d``), strictly ascending, so that every xarray selection works on it (a scalar, a list,
a slice, ``method="nearest"``), in finkcube and in plain xarray alike. Two sources of one
object can carry exactly the same ``midpointMjdTai`` (two diaSources of one visit); both
are kept, in diaSourceId order, and :func:`strictly_ascending` moves each later one of a
tie to the next float64 after its predecessor: one unit in the last place, 7.3e-12 d
(0.63 µs) at MJD 60,000, some 50 million times shorter than a 30 s exposure. pandas refuses a
list of times or ``method="nearest"`` on an index with repeated values, so a cube that kept
them would raise there; ``diaSourceId`` stays the exact key of an epoch
(:func:`select_sources`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from finkcube.errors import InputError
from finkcube.names import SOURCE_ID

if TYPE_CHECKING:
    from astropy.time import Time

__all__ = ["epoch_times", "nearest_epochs", "select_sources", "strictly_ascending"]


def strictly_ascending(times: np.ndarray) -> np.ndarray:
    """Return sorted times made strictly ascending: each tie moved up by float64 steps.

    ``times`` must be sorted (non-decreasing), as the epochs of a cube are once ordered by
    (time, diaSourceId). A value not above its predecessor becomes the next float64 after
    it (``numpy.nextafter``), so the first of a tie keeps the service's value and the others
    follow it by one unit in the last place each. Already strictly ascending times are
    returned unchanged, so applying it again changes nothing.

    Examples
    --------
    >>> t = strictly_ascending(np.array([61000.25, 61000.25, 61000.25, 61001.5]))
    >>> bool((np.diff(t) > 0).all()), float(t[0]), float(t[2] - t[0]) < 2e-11
    (True, 61000.25, True)
    """
    out = np.array(times, dtype=np.float64)
    if out.size > 1 and not (np.diff(out) > 0).all():
        for i in range(1, out.size):
            if out[i] <= out[i - 1]:
                out[i] = np.nextafter(out[i - 1], np.inf)
    return out


def epoch_times(ds: xr.Dataset) -> Time:
    """Return the epochs' times as an :class:`astropy.time.Time` (MJD, TAI scale).

    Examples
    --------
    >>> ds = xr.Dataset(coords={"time": [60000.5, 60001.25]})
    >>> t = epoch_times(ds)
    >>> t.scale, str(t.utc.isot[0])
    ('tai', '2023-02-25T11:59:23.000')
    """
    from astropy.time import Time

    return Time(np.asarray(ds["time"].values, dtype=float), format="mjd", scale="tai")


def select_sources(ds: xr.Dataset, source_ids: int | Iterable[int]) -> xr.Dataset:
    """Return the epochs of the given diaSourceIds, in the order given.

    A single id gives a cube of one epoch (the ``time`` dimension is kept).

    Raises
    ------
    InputError
        For an id the cube does not hold.

    Examples
    --------
    >>> ds = xr.Dataset(coords={"time": [1.0, 1.0, 2.0], "diaSourceId": ("time", [7, 5, 9])})
    >>> select_sources(ds, [5, 9]).diaSourceId.values.tolist()
    [5, 9]
    """
    wanted = [int(source_ids)] if isinstance(source_ids, int | np.integer) else list(source_ids)
    held = {int(sid): i for i, sid in enumerate(ds[SOURCE_ID].values)}
    absent = [sid for sid in wanted if int(sid) not in held]
    if absent:
        raise InputError(f"diaSourceId {absent[0]} is not an epoch of this cube")
    return ds.isel(time=[held[int(sid)] for sid in wanted])


def nearest_epochs(ds: xr.Dataset, times: float | Iterable[float]) -> xr.Dataset:
    """Return, for each time given (MJD, TAI), the epoch nearest to it.

    The same as ``ds.sel(time=times, method="nearest")`` on a cube of this finkcube, whose
    times are strictly ascending; kept for cubes written before (finkcube 0.1.0 development), whose
    ``time`` can repeat a value (pandas then refuses ``method="nearest"``): among epochs at
    one time, the first (lowest diaSourceId) is taken. A time halfway between two epochs
    takes the earlier.

    Examples
    --------
    >>> ds = xr.Dataset(coords={"time": [1.0, 1.0, 2.0], "diaSourceId": ("time", [5, 7, 9])})
    >>> nearest_epochs(ds, [0.2, 1.9]).diaSourceId.values.tolist()
    [5, 9]
    """
    axis = np.asarray(ds["time"].values, dtype=float)
    if axis.size == 0:
        raise InputError("the cube has no epoch")
    wanted = np.atleast_1d(np.asarray(times, dtype=float))
    after = np.clip(np.searchsorted(axis, wanted, side="left"), 0, axis.size - 1)
    # The first epoch of a time is where that time itself sorts in (ties kept in order).
    right = np.searchsorted(axis, axis[after], side="left")
    left = np.clip(right - 1, 0, axis.size - 1)
    before = np.searchsorted(axis, axis[left], side="left")
    closer = np.abs(axis[left] - wanted) <= np.abs(axis[right] - wanted)
    return ds.isel(time=np.where(closer, before, right).tolist())
