"""The time axis: units, astropy times, and selections on a cube whose sources share a time.

Oracles: astropy's Time, plain numpy on the coordinates, plain xarray for the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from astropy.time import Time

import finkcube
from finkcube.cube import assemble_cube, merge_cubes
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


def test_duplicate_times_are_kept_in_order_and_made_strictly_ascending() -> None:
    ds = _duplicated()
    assert ds.diaSourceId.values.tolist() == [11, 12, 30, 31, 40]
    times = ds.time.values
    assert (np.diff(times) > 0).all()
    # the first of a tie keeps the service's value; the next is one float64 step above it
    want = [61000.25, np.nextafter(61000.25, np.inf), 61001.5, np.nextafter(61001.5, np.inf)]
    assert times.tolist() == [*want, 61003.0]
    assert abs(times[1] - 61000.25) * 86400 < 1e-6  # below a microsecond
    # every xarray selection works, as on any unique, sorted index
    assert ds.sel(time=[61003.0, 61000.25]).diaSourceId.values.tolist() == [40, 11]
    assert ds.sel(time=61003.1, method="nearest").diaSourceId.item() == 40
    assert ds.sel(time=[61001.4, 0.0], method="nearest").diaSourceId.values.tolist() == [30, 11]
    assert ds.sel(time=slice(61000, 61002)).sizes["time"] == 4
    assert ds.sel(time=61001.5).diaSourceId.item() == 30
    # the indexes pandas builds agree: unique and increasing
    index = ds.indexes["time"]
    assert index.is_unique
    assert index.is_monotonic_increasing
    # finkcube's own selections give the same epochs
    assert ds.fink.source([31, 11]).diaSourceId.values.tolist() == [31, 11]
    assert ds.fink.source(40).sizes["time"] == 1
    assert ds.fink.nearest([61003.1, 61001.4, 0.0]).diaSourceId.values.tolist() == [40, 30, 11]
    assert ds.fink.nearest(1e6).diaSourceId.values.tolist() == [40]
    with pytest.raises(InputError, match="diaSourceId 99"):
        ds.fink.source(99)


def test_merging_epochs_at_a_shared_time_is_order_independent() -> None:
    records = {
        sid: {"r:diaSourceId": sid, "r:midpointMjdTai": t, "r:band": "g"} for sid, t in SOURCES
    }
    rng = np.random.default_rng(1)
    cutouts = {
        sid: stamps_from_arrays(sid, {k: rng.random((30, 30), np.float32) for k in KINDS})
        for sid in records
    }
    whole = assemble_cube(5, list(records.values()), cutouts)
    for first, later in (([31, 40], [12, 30, 11]), ([11, 30], [31, 12, 40]), ([30], [31])):
        cube = assemble_cube(5, [records[s] for s in first], {s: cutouts[s] for s in first})
        cube = merge_cubes(cube, [records[s] for s in later], {s: cutouts[s] for s in later})
        # the same epochs re-merged (an idempotent update) change nothing either
        again = merge_cubes(cube, [records[s] for s in later], {s: cutouts[s] for s in later})
        for merged in (cube, again):
            expected = whole.sel(time=whole.diaSourceId.isin(first + later))
            assert merged.diaSourceId.values.tolist() == expected.diaSourceId.values.tolist()
            assert merged.time.values.tolist() == expected.time.values.tolist()
            np.testing.assert_array_equal(merged.cutout.values, expected.cutout.values)


def test_duplicate_times_survive_the_store(tmp_path: Path) -> None:
    ds = _duplicated()
    store = str(tmp_path / "dup.zarr")
    init_store(store)
    write_cube(ds, store)
    finalize_store(store)
    for opened in (finkcube.open_cube(store, 5), open_store(store)[5]):
        assert opened.time.values.tolist() == ds.time.values.tolist()
        assert opened.diaSourceId.values.tolist() == ds.diaSourceId.values.tolist()
        assert opened.indexes["time"].is_unique
        assert opened.sel(time=[61000.25], method="nearest").diaSourceId.item() == 11
        assert opened.fink.source(30).time.item() == 61001.5
    plain = xr.open_zarr(f"{store}/5")  # as the README shows
    assert plain.time.values.tolist() == ds.time.values.tolist()
    assert plain.sel(time=[61001.5, 61003.0]).diaSourceId.values.tolist() == [30, 40]
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
