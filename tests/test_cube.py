"""Unit tests of finkcube.cube: records and stamps in, a padded, time-sorted cube out."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from astropy.wcs import WCS

from finkcube.cube import assemble_cube, cube_to_cutouts, epoch_wcs, merge_cubes
from finkcube.errors import CubeError, InputError
from finkcube.names import DIMS, KINDS, PSF_DIMS
from finkcube.service.decode import SourceCutouts, Stamp
from tests._cubes import BASE_SOURCE_ID, synthetic_cutouts, synthetic_inputs, synthetic_records

MIXED = (30, 31, 102, 64, 45, 77)


def _by_id(ds: xr.Dataset) -> dict[int, int]:
    """Map each diaSourceId to its position along time."""
    return {int(s): i for i, s in enumerate(ds.diaSourceId.values)}


def _assert_same(a: np.ndarray, b: np.ndarray) -> None:
    """Pixel for pixel, NaN included."""
    assert a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def test_cube_layout_dims_coords_dtypes() -> None:
    oid, records, cutouts = synthetic_inputs(MIXED)
    ds = assemble_cube(oid, records, cutouts)
    n, canvas = len(MIXED), max(MIXED)
    assert ds.cutout.dims == DIMS
    assert ds.cutout.shape == (n, 3, canvas, canvas, 1)
    assert ds.cutout.dtype == np.float32
    assert ds.kind.values.tolist() == list(KINDS)
    assert ds.plane.values.tolist() == ["data"]
    assert ds.time.dtype == np.float64
    assert np.all(np.diff(ds.time.values) > 0)
    assert ds.diaSourceId.dtype == np.int64
    assert sorted(ds.diaSourceId.values.tolist()) == sorted(cutouts)
    assert min(cutouts) > 2**53  # exactness is tested where a float detour would fail
    assert ds.band.dtype == object
    assert all(isinstance(b, str) for b in ds.band.values)
    assert ds.cropped.dtype == bool
    assert not ds.cropped.any()
    assert "diaObjectId" not in ds.coords
    assert ds.psfFlux.dtype == np.float64
    assert ds.bboxSize.dtype == np.int64
    assert ds.isDipole.dtype == bool
    assert "psf" not in ds
    assert "wcs_header" not in ds


def test_cube_sorts_by_time_and_keeps_each_record_with_its_stamp() -> None:
    oid, records, cutouts = synthetic_inputs(MIXED)
    assert records[0]["r:midpointMjdTai"] > records[-1]["r:midpointMjdTai"]  # newest first
    ds = assemble_cube(oid, records, cutouts)
    position = _by_id(ds)
    for record in records:
        i = position[record["r:diaSourceId"]]
        assert ds.time.values[i] == record["r:midpointMjdTai"]
        assert ds.band.values[i] == record["r:band"]
        assert ds.side.values[i] == cutouts[record["r:diaSourceId"]].side


def test_cube_pixels_are_centred_with_nan_padding() -> None:
    oid, records, cutouts = synthetic_inputs(MIXED)
    ds = assemble_cube(oid, records, cutouts)
    canvas = ds.sizes["x"]
    cube = ds.cutout.values
    for sid, i in _by_id(ds).items():
        s = cutouts[sid].side
        o = (canvas - s) // 2
        for k, stamp in enumerate(cutouts[sid].stamps):
            _assert_same(cube[i, k, o : o + s, o : o + s, 0], stamp.planes["data"])
            padding = np.ones((canvas, canvas), bool)
            padding[o : o + s, o : o + s] = False
            assert np.isnan(cube[i, k, :, :, 0][padding]).all()
            assert np.isnan(stamp.planes["data"]).any()  # blank pixels stay NaN above


def test_single_source_object() -> None:
    oid, records, cutouts = synthetic_inputs([33])
    ds = assemble_cube(oid, records, cutouts)
    assert ds.sizes["time"] == 1
    assert ds.sizes["x"] == ds.sizes["y"] == 33
    _assert_same(
        ds.cutout.values[0, 2, :, :, 0],
        cutouts[records[0]["r:diaSourceId"]].stamps[2].planes["data"],
    )


def test_fixed_size_pads_and_centre_crops() -> None:
    oid, records, cutouts = synthetic_inputs([30, 41, 64, 40])
    ds = assemble_cube(oid, records, cutouts, size=40)
    assert ds.sizes["x"] == 40
    assert ds.attrs["size"] == 40
    for sid, i in _by_id(ds).items():
        s = cutouts[sid].side
        data = cutouts[sid].stamps[0].planes["data"]
        assert bool(ds.cropped.values[i]) is (s > 40)
        assert ds.side.values[i] == s
        if s > 40:
            c = (s - 40) // 2
            _assert_same(ds.cutout.values[i, 0, :, :, 0], data[c : c + 40, c : c + 40])
        else:
            o = (40 - s) // 2
            _assert_same(ds.cutout.values[i, 0, o : o + s, o : o + s, 0], data)


def test_planes_all_variance_mask_where_present_psf_and_headers() -> None:
    oid, records, cutouts = synthetic_inputs(MIXED, planes="all", mask_every=2)
    ds = assemble_cube(oid, records, cutouts, planes="all")
    assert ds.plane.values.tolist() == ["data", "variance", "mask"]
    assert ds.psf.dims == PSF_DIMS
    assert ds.psf.dtype == np.float64
    assert ds.sizes["psf_x"] == ds.sizes["psf_y"] == 55
    assert ds.wcs_header.dims == ("time", "kind")
    canvas = ds.sizes["x"]
    for sid, i in _by_id(ds).items():
        s = cutouts[sid].side
        o = (canvas - s) // 2
        for k, stamp in enumerate(cutouts[sid].stamps):
            inner = ds.cutout.values[i, k, o : o + s, o : o + s]
            _assert_same(inner[..., 1], stamp.planes["variance"])
            if "mask" in stamp.planes:
                _assert_same(inner[..., 2], stamp.planes["mask"].astype(np.float32))
            else:
                assert np.isnan(inner[..., 2]).all()
            p = stamp.psf.shape[0]
            assert ds.psf_side.values[i, k] == p
            q = (55 - p) // 2
            psf = ds.psf.values[i, k]
            _assert_same(psf[q : q + p, q : q + p], stamp.psf)
            assert np.isnan(psf).sum() == 55 * 55 - p * p
            assert ds.wcs_header.values[i, k] == stamp.header


def test_planes_all_without_any_mask_has_two_planes() -> None:
    oid, records, cutouts = synthetic_inputs([30, 40], planes="all")
    assert assemble_cube(oid, records, cutouts, planes="all").plane.values.tolist() == [
        "data",
        "variance",
    ]


def _file_wcs(header: str) -> WCS:
    h = fits.Header.fromstring(header)
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CUNIT1"] = h["CUNIT2"] = "deg"
    return WCS(h)


@pytest.mark.parametrize("size", [None, 40])
def test_epoch_wcs_sky_coordinates_survive_padding_and_crop(size: int | None) -> None:
    oid, records, cutouts = synthetic_inputs([30, 64, 41], planes="all")
    ds = assemble_cube(oid, records, cutouts, planes="all", size=size)
    canvas = ds.sizes["x"]
    for sid, i in _by_id(ds).items():
        s = cutouts[sid].side
        offset = (canvas - s) // 2 if s <= canvas else -((s - canvas) // 2)
        for kind, stamp in zip(KINDS, cutouts[sid].stamps, strict=True):
            wcs = epoch_wcs(ds, i, kind)
            assert wcs.has_celestial
            original = _file_wcs(stamp.header)
            px = np.array([0.0, 10.0, s / 2, s - 1.0])
            py = np.array([3.0, s - 1.0, s / 2, 0.0])
            before = original.pixel_to_world(px, py)
            after = wcs.pixel_to_world(px + offset, py + offset)
            assert before.separation(after).max().arcsec < 1e-6
            # and the canvas pixel holds the file pixel those coordinates name
            x, y = 12, 20
            value = ds.cutout.values[i, KINDS.index(kind), y + offset, x + offset, 0]
            _assert_same(np.array(value), np.array(stamp.planes["data"][y, x]))


def test_epoch_wcs_needs_planes_all() -> None:
    oid, records, cutouts = synthetic_inputs([30])
    with pytest.raises(CubeError, match="planes='all'"):
        epoch_wcs(assemble_cube(oid, records, cutouts), 0, "Science")


def test_missing_sources_are_listed_and_nothing_left_is_an_error() -> None:
    oid, records, cutouts = synthetic_inputs([30, 40, 50, 60])
    gone = sorted(cutouts)[1:3]
    kept = {sid: c for sid, c in cutouts.items() if sid not in gone}
    ds = assemble_cube(oid, records, kept)
    assert ds.sizes["time"] == 2
    assert ds.attrs["missing_diaSourceIds"] == [str(s) for s in gone]
    with pytest.raises(CubeError, match="nothing to stack"):
        assemble_cube(oid, records, {})


def test_mismatched_shapes_are_refused() -> None:
    good = synthetic_cutouts(5, 30)
    odd = Stamp("Template", {"data": np.zeros((31, 31), np.float32)})
    with pytest.raises(CubeError):
        SourceCutouts(5, (good.stamps[0], odd, good.stamps[2]))
    # the cube guards too, should a malformed value object reach it
    broken = synthetic_cutouts(5, 30)
    object.__setattr__(broken, "stamps", (good.stamps[0], odd, good.stamps[2]))
    record = synthetic_records(7, [5])
    with pytest.raises(CubeError, match="Template data plane is"):
        assemble_cube(7, record, {5: broken})
    with pytest.raises(CubeError, match="not a SourceCutouts of it"):
        assemble_cube(7, record, {5: synthetic_cutouts(6, 30)})


def test_bad_records_and_options() -> None:
    oid, records, cutouts = synthetic_inputs([30, 31])
    with pytest.raises(CubeError, match="belongs to diaObjectId"):
        assemble_cube(oid + 1, records, cutouts)
    with pytest.raises(CubeError, match="not a number"):
        assemble_cube(oid, [{**records[0], "r:midpointMjdTai": None}], cutouts)
    with pytest.raises(CubeError, match="no valid r:diaSourceId"):
        assemble_cube(oid, [{"r:midpointMjdTai": 1.0}], cutouts)
    with pytest.raises(InputError, match="planes"):
        assemble_cube(oid, records, cutouts, planes="some")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="size"):
        assemble_cube(oid, records, cutouts, size=0)
    with pytest.raises(InputError, match="JSON"):
        assemble_cube(oid, records, cutouts, attrs={"when": object()})


def test_attributes_are_json_and_complete() -> None:
    oid, records, cutouts = synthetic_inputs([30, 31])
    ds = assemble_cube(oid, records, cutouts, attrs={"api_url": "http://x", "none": None})
    json.dumps(ds.attrs)  # what Zarr will store
    assert ds.attrs["diaObjectId"] == oid
    assert ds.attrs["api_url"] == "http://x"
    assert "none" not in ds.attrs
    assert "size" not in ds.attrs
    assert ds.attrs["planes"] == "data"
    assert ds.attrs["created"].endswith("+00:00")


def test_columns_nulls_types_and_name_clashes() -> None:
    oid, records, cutouts = synthetic_inputs([30, 31, 32])
    for i, record in enumerate(records):
        record["r:x"] = 10.5 + i  # Rubin's centroid column: clashes with the x dimension
        record["r:parentDiaSourceId"] = None if i == 1 else 2**60 + i
        record["f:scores"] = [0.5, i]
    ds = assemble_cube(oid, records, cutouts)
    assert ds.r_x.dims == ("time",)
    assert ds.sizes["x"] == 32
    assert np.isnan(ds.psfFluxErr.values).sum() == sum(r["r:psfFluxErr"] is None for r in records)
    back, _ = cube_to_cutouts(ds)
    assert sorted(back, key=lambda r: r["r:diaSourceId"]) == sorted(
        records, key=lambda r: r["r:diaSourceId"]
    )
    chosen = assemble_cube(oid, records, cutouts, columns=["psfFlux", "r:notThere"])
    assert {str(c) for c in chosen.coords} == {
        "time", "kind", "plane", "diaSourceId", "band", "side", "cropped", "psfFlux", "notThere",
        "nan_fraction", "offset_x", "offset_y", "edge",
    }  # fmt: skip
    assert np.isnan(chosen.notThere.values).all()


def test_equal_times_are_kept_in_id_order() -> None:
    oid, records, cutouts = synthetic_inputs([30, 31, 32])
    same = records[0]["r:midpointMjdTai"]
    for record in records:
        record["r:midpointMjdTai"] = same
    ds = assemble_cube(oid, records, cutouts)
    assert ds.sizes["time"] == 3
    assert ds.diaSourceId.values.tolist() == sorted(cutouts)
    assert np.all(np.diff(ds.time.values) >= 0)


@pytest.mark.parametrize(("planes", "size"), [("data", None), ("all", None), ("all", 40)])
def test_cube_to_cutouts_round_trip_is_exact(planes: str, size: int | None) -> None:
    oid, records, cutouts = synthetic_inputs(MIXED, planes=planes, mask_every=2)
    ds = assemble_cube(oid, records, cutouts, planes=planes, size=size)  # type: ignore[arg-type]
    back_records, back = cube_to_cutouts(ds)
    assert [r["r:diaSourceId"] for r in back_records] == ds.diaSourceId.values.tolist()
    by_id = {r["r:diaSourceId"]: r for r in records}
    assert all(by_id[r["r:diaSourceId"]] == r for r in back_records)
    assert back.keys() == cutouts.keys()
    for sid, original in cutouts.items():
        if size is not None and original.side > size:
            assert back[sid].side == size
            continue
        for a, b in zip(original.stamps, back[sid].stamps, strict=True):
            assert a.planes.keys() == b.planes.keys()
            for name in a.planes:
                _assert_same(a.planes[name], b.planes[name])
            assert a.header == b.header
            _assert_same(np.asarray(a.psf), np.asarray(b.psf))
    if size is not None:
        return  # crops cannot be undone: merge_cubes keeps them (test below)
    again = assemble_cube(oid, back_records, back, planes=planes)  # type: ignore[arg-type]
    again.attrs["created"] = ds.attrs["created"]
    xr.testing.assert_identical(again, ds)


def test_merge_places_late_sources_in_order_and_repads() -> None:
    oid, records, cutouts = synthetic_inputs([30, 40, 36, 50, 102], seed=3)
    by_time = sorted(records, key=lambda r: r["r:midpointMjdTai"])
    late = by_time[1]  # older than the newest epoch, arrives later
    first = [
        r for r in records if r is not late and r["r:diaSourceId"] != by_time[-1]["r:diaSourceId"]
    ]
    old = assemble_cube(oid, first, cutouts, attrs={"api_url": "http://x"})
    assert old.sizes["x"] == 50
    news = [late, by_time[-1]]
    merged = merge_cubes(old, news, {r["r:diaSourceId"]: cutouts[r["r:diaSourceId"]] for r in news})
    full = assemble_cube(oid, records, cutouts, attrs={"api_url": "http://x"})
    assert merged.sizes["x"] == 102
    assert merged.attrs["created"] == old.attrs["created"]
    assert "updated" in merged.attrs
    merged.attrs.pop("updated")
    merged.attrs["created"] = full.attrs["created"]
    xr.testing.assert_identical(merged, full)


def test_merge_new_source_wins_and_missing_is_updated() -> None:
    oid, records, cutouts = synthetic_inputs([30, 31, 32], planes="all")
    a, b, c = sorted(cutouts)
    old = assemble_cube(oid, records, {a: cutouts[a], b: cutouts[b]}, planes="all", size=31)
    assert old.attrs["missing_diaSourceIds"] == [str(c)]
    replacement = synthetic_cutouts(a, 33, planes="all", seed=99)
    record_a = next(r for r in records if r["r:diaSourceId"] == a)
    record_c = next(r for r in records if r["r:diaSourceId"] == c)
    merged = merge_cubes(old, [record_a, record_c], {a: replacement, c: cutouts[c]})
    assert merged.sizes["time"] == 3
    assert merged.sizes["x"] == 31  # the fixed size is kept
    assert merged.attrs["missing_diaSourceIds"] == []
    i = _by_id(merged)[a]
    assert merged.cropped.values[i]
    _assert_same(
        merged.cutout.values[i, 0, :, :, 0], replacement.stamps[0].planes["data"][1:32, 1:32]
    )
    kept = merge_cubes(old, [], {}, missing=[2**62])
    assert kept.attrs["missing_diaSourceIds"] == sorted([str(c), str(2**62)])
    assert kept.sizes["time"] == 2


def test_merge_of_a_cropped_cube_keeps_its_crops_exact() -> None:
    oid, records, cutouts = synthetic_inputs([30, 64, 41], planes="all")
    old = assemble_cube(oid, records, cutouts, planes="all", size=40)
    again = merge_cubes(old, [], {})
    again.attrs.pop("updated")
    xr.testing.assert_identical(again, old)


def test_stamp_replace_keeps_value_semantics() -> None:
    # the helper's stamps are frozen values: a cube never aliases the caller's arrays
    oid, records, cutouts = synthetic_inputs([30])
    ds = assemble_cube(oid, records, cutouts)
    stamp = cutouts[BASE_SOURCE_ID].stamps[0]
    stamp.planes["data"][5, 5] = -1.0
    assert ds.cutout.values[0, 0, 5, 5, 0] != -1.0
    assert replace(stamp, kind="Science").kind == "Science"
