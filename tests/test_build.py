"""build_cube and build_store against the emulator, over real sockets."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from finkcube import FinkClient, build_cube, build_store, open_cube
from finkcube.errors import InvalidIdError, NotFoundError, StoreError
from finkcube.names import CUTOUTS_PATH, DIMS, KINDS, SOURCES_PATH


@pytest.fixture
def client(emulator: Any) -> FinkClient:
    with FinkClient(emulator.url, workers=8, timeout=10, retries=2, backoff=0.01, env={}) as c:
        yield c


def _canvas_slice(side: int, canvas: int) -> slice:
    offset = (canvas - side) // 2
    return slice(offset, offset + side)


def _assert_matches_catalog(cube: xr.Dataset, catalog: Any, plane: str = "data") -> None:
    """Every epoch equals the emulator's pixels at the specified offset; padding is NaN."""
    canvas = cube.sizes["y"]
    for index, sid in enumerate(cube.diaSourceId.values.tolist()):
        side = int(cube.side[index])
        inner = _canvas_slice(side, canvas)
        for kind in KINDS:
            stamp = cube.cutout.isel(time=index).sel(kind=kind, plane=plane).values
            if plane == "data":
                expected = catalog.array(sid, kind)
            else:
                with fits.open(io.BytesIO(catalog.fits(sid, kind))) as hdul:
                    expected = hdul["UNCERT"].data.astype(np.float32)
            assert expected.shape == (side, side)
            np.testing.assert_array_equal(stamp[inner, inner], expected)
            outside = np.ones_like(stamp, dtype=bool)
            outside[inner, inner] = False
            assert np.isnan(stamp[outside]).all()


def test_cube_layout_and_values(client: FinkClient, emulator: Any) -> None:
    catalog = emulator.catalog
    oid = catalog.named("mixed_sizes")
    cube = build_cube(oid, client=client)
    records = catalog.records(oid)
    assert cube.cutout.dims == DIMS
    assert cube.cutout.dtype == np.float32
    assert cube.kind.values.tolist() == list(KINDS)
    assert cube.plane.values.tolist() == ["data"]
    assert cube.sizes["time"] == len(records)
    # Time ascending: the service's newest-first order is undone.
    times = cube.time.values
    assert (np.diff(times) > 0).all()
    assert times.tolist() == sorted(r["r:midpointMjdTai"] for r in records)
    # Ids exact (they exceed 2**53), and in the order of time.
    by_time = sorted(records, key=lambda r: r["r:midpointMjdTai"])
    assert cube.diaSourceId.dtype == np.int64
    assert cube.diaSourceId.values.tolist() == [r["r:diaSourceId"] for r in by_time]
    assert max(cube.diaSourceId.values.tolist()) > 2**53
    assert cube.band.values.tolist() == [r["r:band"] for r in by_time]
    np.testing.assert_array_equal(cube.psfFlux.values, [r["r:psfFlux"] for r in by_time])
    # Rubin's units travel with the columns, so plots label their axes.
    assert cube.psfFlux.attrs["units"] == cube.psfFluxErr.attrs["units"] == "nJy"
    assert cube.ra.attrs["units"] == "deg"
    # Sides span 30..102, odd and even; the canvas fits the largest.
    sides = set(cube.side.values.tolist())
    assert min(sides) == 30
    assert max(sides) == 102 == cube.sizes["y"] == cube.sizes["x"]
    assert {s % 2 for s in sides} == {0, 1}
    assert cube.attrs["diaObjectId"] == oid
    assert cube.attrs["api_url"] == client.url
    _assert_matches_catalog(cube, catalog)


def test_single_source_and_blank_edges(client: FinkClient, emulator: Any) -> None:
    catalog = emulator.catalog
    single = build_cube(catalog.named("single"), client=client)
    assert single.sizes["time"] == 1
    _assert_matches_catalog(single, catalog)
    edges = build_cube(catalog.named("nan_edges"), client=client)
    _assert_matches_catalog(edges, catalog)
    # Blank pixels of the alert stay NaN inside the stamp, not zeros.
    first = int(np.argmax(edges.side.values == edges.sizes["y"]))
    assert np.isnan(edges.cutout.isel(time=first).values).any()


def test_real_object(client: FinkClient, emulator: Any) -> None:
    catalog = emulator.catalog
    oid = catalog.named("real")
    cube = build_cube(oid, client=client)
    assert cube.sizes["time"] == len(catalog.records(oid)) >= 300
    _assert_matches_catalog(cube, catalog)


def test_fixed_size_crops_and_pads(client: FinkClient, emulator: Any) -> None:
    catalog = emulator.catalog
    cube = build_cube(catalog.named("mixed_sizes"), client=client, size=40)
    assert cube.sizes["y"] == cube.sizes["x"] == 40
    assert cube.cropped.values.tolist() == (cube.side.values > 40).tolist()
    index = int(np.argmax(cube.side.values == 102))
    sid = int(cube.diaSourceId[index])
    start = (102 - 40) // 2
    expected = catalog.array(sid, "Science")[start : start + 40, start : start + 40]
    np.testing.assert_array_equal(cube.cutout.isel(time=index, plane=0).sel(kind="Science"),
                                  expected)  # fmt: skip


def test_planes_all_holds_fits_planes(client: FinkClient, emulator: Any) -> None:
    catalog = emulator.catalog
    oid = catalog.named("small")
    cube = build_cube(oid, client=client, planes="all")
    assert cube.plane.values.tolist() == ["data", "variance"]
    _assert_matches_catalog(cube, catalog, "data")
    _assert_matches_catalog(cube, catalog, "variance")
    sid = int(cube.diaSourceId[0])
    with fits.open(io.BytesIO(catalog.fits(sid, "Template"))) as hdul:
        psf = hdul["PSFIMAGE"].data
        header = hdul[0].header
    side = psf.shape[0]
    offset = (cube.sizes["psf_y"] - side) // 2
    kept = cube.psf.isel(time=0).sel(kind="Template").values
    np.testing.assert_array_equal(kept[offset : offset + side, offset : offset + side], psf)
    text = str(cube.wcs_header.isel(time=0).sel(kind="Template").values)
    assert fits.Header.fromstring(text)["CRVAL1"] == header["CRVAL1"]


def test_mask_plane_when_files_have_one(client: FinkClient, emulator: Any) -> None:
    catalog = emulator.catalog
    cube = build_cube(catalog.named("with_mask"), client=client, planes="all")
    assert cube.plane.values.tolist() == ["data", "variance", "mask"]
    sid = int(cube.diaSourceId[0])
    with fits.open(io.BytesIO(catalog.fits(sid, "Science"))) as hdul:
        mask = hdul["MASK"].data
    inner = _canvas_slice(int(cube.side[0]), cube.sizes["y"])
    got = cube.cutout.isel(time=0).sel(kind="Science", plane="mask").values[inner, inner]
    np.testing.assert_array_equal(got, mask.astype(np.float32))


def test_missing_and_mismatched_sources_are_left_out(
    client: FinkClient, emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = emulator.catalog
    oid = catalog.named("missing_cutout")
    cube = build_cube(oid, client=client)
    all_ids = {r["r:diaSourceId"] for r in catalog.records(oid)}
    kept = set(cube.diaSourceId.values.tolist())
    assert len(all_ids - kept) == 1
    assert cube.attrs["missing_diaSourceIds"] == [str(s) for s in all_ids - kept]
    caplog.clear()
    mismatched = build_cube(catalog.named("mismatched"), client=client)
    assert mismatched.sizes["time"] == len(catalog.records(catalog.named("mismatched"))) - 1
    assert any("must be square 2-D arrays of one shape" in m for m in caplog.messages)


def test_unknown_object_and_bad_id(client: FinkClient, emulator: Any) -> None:
    before = emulator.requests[SOURCES_PATH]
    with pytest.raises(InvalidIdError):
        build_cube("12ab", client=client)
    assert emulator.requests[SOURCES_PATH] == before
    with pytest.raises(NotFoundError, match="no source"):
        build_cube(4242424242424242, client=client)


def test_store_round_trip_is_lazy_and_equal(
    client: FinkClient, emulator: Any, tmp_path: Path
) -> None:
    catalog = emulator.catalog
    ids = [catalog.named("small"), catalog.named("single"), catalog.named("nan_edges")]
    store = tmp_path / "cubes.zarr"
    report = build_store(ids, store, client=client)
    assert report.count("built") == 3
    for oid in ids:
        lazy = open_cube(store, oid)
        assert all(v.chunks is not None for v in lazy.data_vars.values())
        eager = build_cube(oid, client=client)
        xr.testing.assert_equal(lazy.drop_attrs().compute(), eager.drop_attrs())
        # Plain xarray reads the same group.
        plain = xr.open_zarr(f"{store}/{oid}")
        np.testing.assert_array_equal(plain.cutout.values, eager.cutout.values)
    # A re-run resumes: complete objects are skipped and no cutout is fetched again.
    before = emulator.requests[CUTOUTS_PATH]
    again = build_store(ids, store, client=client)
    assert again.count("skipped") == 3
    assert emulator.requests[CUTOUTS_PATH] == before


def test_build_store_refuses_a_foreign_folder(
    client: FinkClient, emulator: Any, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    before = emulator.requests[SOURCES_PATH]
    with pytest.raises(StoreError, match="not a finkcube store"):
        build_store([emulator.catalog.named("single")], tmp_path, client=client)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert emulator.requests[SOURCES_PATH] == before
