"""The time axis: units, astropy times, and selections on a cube whose sources share a time.

Oracles: astropy's Time, plain numpy on the coordinates, plain xarray for the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from astropy.time import Time

import finkcube
from finkcube.cube import assemble_cube
from finkcube.errors import InputError
from finkcube.names import KINDS
from finkcube.service.decode import stamps_from_arrays
from finkcube.store import finalize_store, init_store, open_store, write_cube

#: Two pairs of sources of one visit each: (diaSourceId, time).
SOURCES = [(31, 61001.5), (12, 61000.25), (30, 61001.5), (11, 61000.25), (40, 61003.0)]


def _duplicated() -> xr.Dataset:
    records = [
        {"r:diaSourceId": sid, "r:midpointMjdTai": t, "r:band": "g", "r:psfFlux": 1.0 * sid}
        for sid, t in SOURCES
    ]
    rng = np.random.default_rng(0)
    cutouts = {
        sid: stamps_from_arrays(sid, {k: rng.random((30, 30), np.float32) for k in KINDS})
        for sid, _ in SOURCES
    }
    return assemble_cube(5, records, cutouts)


def test_duplicate_times_are_kept_sorted_with_diasourceid_as_the_key() -> None:
    ds = _duplicated()
    assert ds.time.values.tolist() == [61000.25, 61000.25, 61001.5, 61001.5, 61003.0]
    assert ds.diaSourceId.values.tolist() == [11, 12, 30, 31, 40]
    assert (np.diff(ds.time.values) >= 0).all()
    # what xarray selects by time, duplicates or not
    assert ds.sel(time=61001.5).diaSourceId.values.tolist() == [30, 31]
    assert ds.sel(time=slice(61000, 61002)).sizes["time"] == 4
    # what it refuses on a non-unique index (the README says so): a list, or nearest
    with pytest.raises(pd.errors.InvalidIndexError):
        ds.sel(time=[61003.0])
    with pytest.raises(pd.errors.InvalidIndexError):
        ds.sel(time=61003.1, method="nearest")
    # finkcube's selections never raise on duplicates
    assert ds.fink.source([31, 11]).diaSourceId.values.tolist() == [31, 11]
    assert ds.fink.source(40).sizes["time"] == 1
    assert ds.fink.nearest([61003.1, 61001.4, 0.0]).diaSourceId.values.tolist() == [40, 30, 11]
    assert ds.fink.nearest(1e6).diaSourceId.values.tolist() == [40]
    with pytest.raises(InputError, match="diaSourceId 99"):
        ds.fink.source(99)


def test_duplicate_times_survive_the_store(tmp_path: Path) -> None:
    ds = _duplicated()
    store = str(tmp_path / "dup.zarr")
    init_store(store)
    write_cube(ds, store)
    finalize_store(store)
    for opened in (finkcube.open_cube(store, 5), open_store(store)["5"].to_dataset()):
        assert opened.time.values.tolist() == ds.time.values.tolist()
        assert opened.diaSourceId.values.tolist() == ds.diaSourceId.values.tolist()
        assert opened.sel(time=61000.25).sizes["time"] == 2
        assert opened.fink.source(30).time.item() == 61001.5
    plain = xr.open_zarr(store, group="5")
    assert plain.time.attrs["units"] == "d"
    assert plain.time.dtype == np.float64  # "d" is not decoded as a time delta


def test_times_are_astropy_tai_and_columns_carry_rubin_units(emulator: Any) -> None:
    ds = finkcube.build_cube(emulator.catalog.named("small"), url=emulator.url)
    times = ds.fink.times()
    assert isinstance(times, Time)
    assert times.scale == "tai"
    assert times.format == "mjd"
    np.testing.assert_array_equal(times.mjd, ds.time.values)
    want = Time(ds.time.values[0], format="mjd", scale="tai").utc.isot
    assert times[0].utc.isot == want
    assert ds.time.attrs["units"] == "d"
    assert ds.psfFlux.attrs["units"] == "nJy"
    assert ds.psfFluxErr.attrs["units"] == "nJy"
    assert ds.ra.attrs["units"] == "deg"
    assert ds.dec.attrs["units"] == "deg"
