"""Per-epoch quality coordinates: NaN fraction, the source's offset, detector edges.

Oracles: the stamps as the emulator serves them (numpy on the raw arrays), and the CRPIX
cards read by astropy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from astropy.io import fits

import finkcube
from finkcube.cube import assemble_cube, cube_to_cutouts, merge_cubes
from finkcube.names import KINDS


def test_nan_fraction_and_edge_follow_the_raw_stamps(emulator: Any) -> None:
    oid = emulator.catalog.named("nan_edges")
    ds = finkcube.build_cube(oid, url=emulator.url)
    assert ds.nan_fraction.dims == ("time", "kind")
    assert ds.edge.dims == ("time",)
    for i, sid in enumerate(ds.diaSourceId.values.tolist()):
        for k, kind in enumerate(KINDS):
            raw = emulator.catalog.array(sid, kind)  # the stamp as served, unpadded
            assert ds.nan_fraction.values[i, k] == np.isnan(raw).mean()
        science = np.isnan(emulator.catalog.array(sid, "Science"))
        border = science[[0, -1], :].any() or science[:, [0, -1]].any()
        assert bool(ds.edge.values[i]) == bool(border)
    assert ds.edge.values.any()
    # padding is not counted: a cube of clean stamps on a larger canvas has no NaN fraction
    clean = finkcube.build_cube(emulator.catalog.named("small"), url=emulator.url, size=60)
    assert (clean.nan_fraction.values == 0).all()
    assert not clean.edge.values.any()
    assert np.isnan(clean.cutout.values).any()


def test_offsets_come_from_crpix_and_are_nan_without_wcs(emulator: Any) -> None:
    oid = emulator.catalog.named("mixed_sizes")
    ds = finkcube.build_cube(oid, url=emulator.url, planes="all")
    canvas = ds.sizes["x"]
    for i in range(ds.sizes["time"]):
        header = fits.Header.fromstring(str(ds.wcs_header.values[i, 0]))
        side = int(ds.side.values[i])
        offset = (canvas - side) // 2 if side <= canvas else -((side - canvas) // 2)
        want_x = header["CRPIX1"] - 1 + offset - (canvas - 1) / 2
        want_y = header["CRPIX2"] - 1 + offset - (canvas - 1) / 2
        assert ds.offset_x.values[i] == want_x
        assert ds.offset_y.values[i] == want_y
    assert np.abs(ds.offset_x.values).max() <= 1.5  # the source within a pixel or so
    assert ds.offset_x.attrs["units"] == "pixel"
    plain = finkcube.build_cube(oid, url=emulator.url)
    assert np.isnan(plain.offset_x.values).all()


def test_good_selects_epochs_in_one_line(emulator: Any) -> None:
    oid = emulator.catalog.named("nan_edges")
    ds = finkcube.build_cube(oid, url=emulator.url, planes="all")
    good = ds.fink.good()
    assert good.sizes["time"] == int((~ds.edge.values & (ds.nan_fraction.values == 0).all(1)).sum())
    assert not good.edge.values.any()
    loose = ds.fink.good(max_nan=1.0, allow_edge=True)
    assert loose.sizes["time"] == ds.sizes["time"]
    near = ds.fink.good(max_nan=1.0, allow_edge=True, max_offset=0.5)
    distance = np.hypot(ds.offset_x.values, ds.offset_y.values)
    assert near.sizes["time"] == int((distance <= 0.5).sum())
    # the documented `where` spelling selects the same epochs
    same = ds.where(~ds.edge & (ds.nan_fraction == 0).all("kind"), drop=True)
    assert same.diaSourceId.values.tolist() == good.diaSourceId.values.tolist()


def test_quality_survives_a_store_and_a_merge(emulator: Any, tmp_path: Any) -> None:
    oid = emulator.catalog.named("nan_edges")
    ds = finkcube.build_cube(oid, url=emulator.url)
    finkcube.build_store([oid], tmp_path / "s.zarr", url=emulator.url)
    back = finkcube.open_cube(tmp_path / "s.zarr", oid).load()
    for name in ("nan_fraction", "edge", "offset_x", "offset_y"):
        xr.testing.assert_identical(back[name], ds[name])
    records, cutouts = cube_to_cutouts(ds.isel(time=slice(1, None)))
    first, first_cut = cube_to_cutouts(ds.isel(time=[0]))
    merged = merge_cubes(assemble_cube(oid, records, cutouts), first, first_cut)
    np.testing.assert_array_equal(merged.nan_fraction.values, ds.nan_fraction.values)
    np.testing.assert_array_equal(merged.edge.values, ds.edge.values)
