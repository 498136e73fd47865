"""A cube's time axis: its epochs as :class:`astropy.time.Time`, and selections that never
trip over two sources at one time.

``time`` is the cube's dimension coordinate: Rubin's ``midpointMjdTai`` (MJD, TAI, units
``d``), sorted. Two sources of one object at exactly the same time (two diaSources of one
visit) are both kept, in diaSourceId order, so ``time`` is non-decreasing rather than
strictly ascending; ``diaSourceId`` is the unique key of an epoch. On such a cube, xarray
selects by a scalar time (both epochs) or a slice as usual, but a list of times or
``method="nearest"`` raises pandas' ``InvalidIndexError``: :func:`select_sources` (by
diaSourceId) and :func:`nearest_epochs` (by time) select by position and never raise on
duplicates.
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

__all__ = ["epoch_times", "nearest_epochs", "select_sources"]


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

    Among epochs at one time, the first (lowest diaSourceId) is taken; a time halfway
    between two epochs takes the earlier.

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
