"""Aligned cubes: every epoch resampled onto one sky grid, north up, east left.

Oracles: astropy's WCS (where a sky position lands, which way north points), numpy sums
and moments, and the raw stamps themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

import finkcube
from finkcube.cli import main
from finkcube.cube import assemble_cube
from finkcube.emulator import Emulator
from finkcube.errors import CubeError, InputError
from finkcube.names import KINDS, SOURCES_PATH
from finkcube.service.client import FinkClient
from finkcube.service.decode import SourceCutouts, Stamp

RA0, DEC0 = 150.1, 2.2
SCALE = 0.2 / 3600.0
#: The point source, off the object's centre by (+1.5", +0.9"), at a known sky position.
SOURCE = SkyCoord(RA0 + 1.5 / 3600.0 / np.cos(np.radians(DEC0)), DEC0 + 0.9 / 3600.0, unit="deg")
ANGLES = (0.0, 31.6, 90.6, -55.7, 137.0, 200.0)


def _stamp_wcs(angle: float, side: int, seed: int) -> WCS:
    """A Rubin-like stamp WCS: rotated by ``angle``, its reference point near the centre."""
    rng = np.random.default_rng(seed)
    theta = np.radians(angle)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crpix = [side / 2 + rng.uniform(-1, 1), side / 2 + rng.uniform(-1, 1)]
    wcs.wcs.crval = [RA0 + rng.uniform(-1, 1) / 3600.0, DEC0 + rng.uniform(-1, 1) / 3600.0]
    c, s = np.cos(theta), np.sin(theta)
    wcs.wcs.pc = [[-c, s], [s, c]]
    wcs.wcs.cdelt = [SCALE, SCALE]
    return wcs


def _rubin_cards(wcs: WCS) -> str:
    """The WCS as Rubin writes it: no CTYPE, no CUNIT."""
    header = wcs.to_header()
    for key in ("CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2"):
        header.remove(key, ignore_missing=True)
    return header.tostring()


def _gaussian(side: int, x: float, y: float, sigma: float, flux: float = 1.0) -> np.ndarray:
    yy, xx = np.mgrid[:side, :side]
    g = np.exp(-0.5 * ((xx - x) ** 2 + (yy - y) ** 2) / sigma**2)
    return flux * g / (2 * np.pi * sigma**2)


def _psf(side: int, sx: float, sy: float) -> np.ndarray:
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
    image = np.exp(-0.5 * ((xx / sx) ** 2 + (yy / sy) ** 2))
    return image / image.sum()


def _object(
    angles: tuple[float, ...] = ANGLES, *, variance: float = 9.0, seed: int = 1
) -> tuple[xr.Dataset, list[WCS]]:
    """A cube of rotated epochs with a point source at SOURCE (stamps of 33 and 35 px)."""
    rng = np.random.default_rng(seed)
    records, cutouts, wcs_list = [], {}, []
    for i, angle in enumerate(angles):
        side = 33 if i % 2 else 35
        wcs = _stamp_wcs(angle, side, seed + i)
        x, y = wcs.world_to_pixel(SOURCE)
        stamps = []
        for kind in KINDS:
            data = _gaussian(side, float(x), float(y), 2.0, 5000.0).astype(np.float32)
            mask = rng.integers(0, 4, (side, side)).astype(np.int32) * 32
            planes = {
                "data": data,
                "variance": np.full((side, side), variance, np.float32),
                "mask": mask,
            }
            stamps.append(Stamp(kind, planes, _psf(41, 1.5, 4.0), _rubin_cards(wcs)))
        sid = 1000 + i
        cutouts[sid] = SourceCutouts(sid, tuple(stamps))
        records.append({"r:diaSourceId": sid, "r:midpointMjdTai": 61000.0 + i, "r:band": "r"})
        wcs_list.append(wcs)
    return assemble_cube(9, records, cutouts, planes="all"), wcs_list


def _centroid(image: np.ndarray) -> tuple[float, float]:
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    w = np.nan_to_num(image)
    return float((w * xx).sum() / w.sum()), float((w * yy).sum() / w.sum())


def test_source_lands_on_one_pixel_in_every_epoch_and_north_is_up() -> None:
    ds, _ = _object()
    raw = [_centroid(ds.cutout.values[i, 0, :, :, 0]) for i in range(len(ANGLES))]
    assert np.ptp([x for x, _ in raw]) > 2  # the raw stamps disagree: a test that can fail
    aligned = ds.fink.align(center=(RA0, DEC0))
    wcs = aligned.fink.aligned_wcs()
    assert wcs.has_celestial
    assert wcs.pixel_shape == (35, 35)
    tx, ty = (float(v) for v in wcs.world_to_pixel(SOURCE))
    assert abs(tx - 17) > 5
    assert abs(ty - 17) > 3
    for i in range(len(ANGLES)):
        for k in range(len(KINDS)):
            x, y = _centroid(aligned.aligned.values[i, k, :, :, 0])
            assert abs(x - tx) < 0.1, (i, k, x, tx)
            assert abs(y - ty) < 0.1, (i, k, y, ty)
    # North up, east left, at the native scale: one arcsecond north is 5 pixels up.
    cx, cy = wcs.world_to_pixel(SkyCoord(RA0, DEC0, unit="deg"))
    nx, ny = wcs.world_to_pixel(SkyCoord(RA0, DEC0 + 1 / 3600.0, unit="deg"))
    ex, ey = wcs.world_to_pixel(SkyCoord(RA0 + 1 / 3600.0, DEC0, unit="deg"))
    assert (float(cx), float(cy)) == pytest.approx((17.0, 17.0))
    assert (float(nx - cx), float(ny - cy)) == pytest.approx((0.0, 5.0), abs=1e-6)
    assert float(ex - cx) < 0
    assert abs(float(ey - cy)) < 1e-3
    # the raw cutout is untouched (lossless)
    np.testing.assert_array_equal(aligned.cutout.values, ds.cutout.values)


def test_aligned_wcs_is_astropy_ready_fits_cards() -> None:
    ds, _ = _object(ANGLES[:2])
    aligned = ds.fink.align(scale=0.3, size=24)
    header = fits.Header.fromstring(aligned.attrs["aligned_wcs"])
    wcs = WCS(header)
    assert header["CTYPE1"] == "RA---TAN"
    assert header["NAXIS1"] == 24
    assert wcs.proj_plane_pixel_scales()[0].to_value("arcsec") == pytest.approx(0.3)
    assert aligned.aligned.dims == ("time", "kind", "ay", "ax", "plane")
    assert aligned.sizes["ay"] == 24
    # the default centre: the mean of the epochs' reference points
    centre = wcs.pixel_to_world(11.5, 11.5)
    assert centre.separation(SkyCoord(RA0, DEC0, unit="deg")).arcsec < 1.0


def test_variance_rule_scales_with_the_pixel_area_and_keeps_aperture_sums() -> None:
    ds, _ = _object(ANGLES[:3], variance=9.0)
    native = ds.fink.align(center=(RA0, DEC0), size=30)
    coarse = ds.fink.align(center=(RA0, DEC0), scale=0.4, size=20)
    for cube, ratio in ((native, 1.0), (coarse, 4.0)):
        variance = cube.aligned.sel(plane="variance").values
        inside = np.isfinite(variance)
        assert inside.mean() > 0.5
        # bilinear interpolation of a constant is that constant, times the area ratio
        np.testing.assert_allclose(variance[inside], 9.0 * ratio, rtol=1e-5)
        # data scale the same way: the source's flux is kept whatever the scale
        flux = np.nansum(cube.aligned.sel(plane="data").values, axis=(2, 3))
        np.testing.assert_allclose(flux, 5000.0, rtol=0.01)


def test_mask_is_resampled_nearest_neighbour_bit_exact() -> None:
    ds, wcs_list = _object(ANGLES[:3])
    aligned = ds.fink.align(center=(RA0, DEC0), size=30)
    target = aligned.fink.aligned_wcs()
    raw_mask = ds.cutout.sel(plane="mask").values
    yy, xx = np.mgrid[:30, :30]
    world = target.pixel_to_world(xx, yy)
    for i, stamp_wcs in enumerate(wcs_list):
        side = int(ds.side[i])
        offset = (35 - side) // 2
        x, y = stamp_wcs.world_to_pixel(world)  # the oracle: astropy, rounded
        col, row = np.round(x).astype(int), np.round(y).astype(int)
        inside = (col >= 1) & (col < side - 1) & (row >= 1) & (row < side - 1)
        got = aligned.aligned.sel(plane="mask").values[i, 0]
        want = raw_mask[i, 0][row[inside] + offset, col[inside] + offset]
        np.testing.assert_array_equal(got[inside], want)
        assert set(np.unique(got[np.isfinite(got)])) <= {0.0, 32.0, 64.0, 96.0}


def test_psf_turns_with_the_stamp_and_keeps_unit_sum() -> None:
    ds, wcs_list = _object(ANGLES[:4])
    aligned = ds.fink.align(center=(RA0, DEC0))
    target = aligned.fink.aligned_wcs()
    for i, stamp_wcs in enumerate(wcs_list):
        psf = aligned.aligned_psf.values[i, 0]
        assert np.nansum(psf) == pytest.approx(1.0, abs=0.01)
        # the raw PSF is long along the stamp's +y: where does +y point on the sky grid?
        a = stamp_wcs.pixel_to_world(17, 17)
        b = stamp_wcs.pixel_to_world(17, 18)
        (ax, ay), (bx, by) = target.world_to_pixel(a), target.world_to_pixel(b)
        want = np.degrees(np.arctan2(float(by - ay), float(bx - ax))) % 180
        yy, xx = np.mgrid[:41, :41] - 20.0
        w = np.nan_to_num(psf)
        cxx, cyy, cxy = (w * xx * xx).sum(), (w * yy * yy).sum(), (w * xx * yy).sum()
        got = np.degrees(0.5 * np.arctan2(2 * cxy, cxx - cyy)) % 180
        assert min(abs(got - want), 180 - abs(got - want)) < 2.0, (i, got, want)


def test_aligned_real_alerts_keep_their_flux(emulator: Any) -> None:
    real = emulator.catalog.real_source_ids()
    assert real
    with FinkClient(emulator.url) as client:
        cutouts = {sid: client.cutout_fits(sid) for sid in real}
    records = [
        {"r:diaSourceId": sid, "r:midpointMjdTai": 61000.0 + i, "r:band": "r"}
        for i, sid in enumerate(real)
    ]
    ds = assemble_cube(7, records, cutouts, planes="all")
    assert not np.isnan(ds.cutout.values).any()
    for i in range(ds.sizes["time"]):  # the real alerts are of several objects: one by one
        # a canvas wide enough for the turned stamp: every raw pixel lands on it
        aligned = ds.isel(time=[i]).fink.align(size=int(ds.sizes["x"]) + 20)
        for k, kind in enumerate(KINDS):
            raw, new = ds.cutout.values[i, k], aligned.aligned.values[0, k]
            noise = np.sqrt(raw[..., 1].sum())
            difference = np.nansum(new[..., 0]) - raw[..., 0].sum()
            assert abs(difference) < 3 * noise, (i, kind, difference, noise)
            # the variance rule at the native scale: the sum of the variance is kept too
            assert np.nansum(new[..., 1]) == pytest.approx(raw[..., 1].sum(), rel=0.05)


def test_align_needs_the_wcs_and_checks_its_options(emulator: Any) -> None:
    oid = emulator.catalog.named("small")
    plain = finkcube.build_cube(oid, url=emulator.url)
    with pytest.raises(CubeError, match="WCS"):
        plain.fink.align()
    with pytest.raises(CubeError, match="not aligned"):
        plain.fink.aligned_wcs()
    ds, _ = _object(ANGLES[:1])
    with pytest.raises(InputError, match="scale"):
        ds.fink.align(scale=0)
    with pytest.raises(InputError, match="center"):
        ds.fink.align(center="north")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="align"):
        finkcube.build_cube(oid, url=emulator.url, align="pixels")  # type: ignore[arg-type]


def test_build_align_from_arrays_fetches_one_fits_file_per_source() -> None:
    with Emulator() as emu:
        oid = emu.catalog.named("small")
        sources = len(emu.catalog.source_ids(oid))
        data = finkcube.build_cube(oid, url=emu.url, align="sky")
        cutout_requests = sum(n for path, n in emu.requests.items() if path != SOURCES_PATH)
        full = finkcube.build_cube(oid, url=emu.url, planes="all", align="sky")
    assert cutout_requests == 2 * sources  # one array reply and one Science FITS file each
    assert "aligned" in data
    assert list(data.plane.values) == ["data"]
    np.testing.assert_allclose(
        data.aligned.sel(plane="data").values, full.aligned.sel(plane="data").values, atol=1e-3
    )
    assert np.isfinite(data.offset_x.values).all()
    assert data.attrs["aligned_wcs"] == full.attrs["aligned_wcs"]


def test_aligned_store_round_trip_and_cli(emulator: Any, tmp_path: Path) -> None:
    oid = emulator.catalog.named("small")
    store = tmp_path / "cubes.zarr"
    finkcube.build_store([oid], store, url=emulator.url, align="sky")
    cube = finkcube.open_cube(store, oid).load()
    plain = xr.open_zarr(store, group=str(oid), consolidated=False).load()
    for opened in (cube, plain):
        assert opened.aligned.dims == ("time", "kind", "ay", "ax", "plane")
        assert opened.fink.aligned_wcs().has_celestial
    built = finkcube.build_cube(oid, url=emulator.url, align="sky")
    np.testing.assert_array_equal(cube.aligned.values, built.aligned.values)
    out = tmp_path / "cli.zarr"
    argv = ["build", str(oid), "--out", str(out), "--url", emulator.url, "--align", "sky"]
    assert main(argv) == 0
    assert "aligned" in finkcube.open_cube(out, oid)
    # The aligned stamps are stored as the raw ones are: the same chunks and codecs.
    group = zarr.open_group(store, mode="r")[str(oid)]
    assert isinstance(group, zarr.Group)
    stored, raw = group["aligned"], group["cutout"]
    assert isinstance(stored, zarr.Array)
    assert isinstance(raw, zarr.Array)
    assert stored.shape == raw.shape
    assert (stored.chunks, stored.compressors) == (raw.chunks, raw.compressors)


def test_resume_refuses_to_mix_aligned_and_raw_cubes(emulator: Any, tmp_path: Path) -> None:
    oid = emulator.catalog.named("small")
    raw, aligned = tmp_path / "raw.zarr", tmp_path / "aligned.zarr"
    finkcube.build_store([oid], raw, url=emulator.url)
    finkcube.build_store([oid], aligned, url=emulator.url, align="sky")
    with pytest.raises(InputError, match="not aligned on the sky"):
        finkcube.build_store([oid], raw, url=emulator.url, align="sky")
    with pytest.raises(InputError, match="was built aligned on the sky"):
        finkcube.build_store([oid], aligned, url=emulator.url)
    report = finkcube.build_store([oid], aligned, url=emulator.url, align="sky")
    assert report.count("skipped") == 1


def test_aligned_view_is_a_cube_of_the_aligned_stamps() -> None:
    ds, _ = _object(ANGLES[:3])
    aligned = ds.fink.align(size=30)
    view = aligned.fink.aligned()
    assert view.cutout.dims == ("time", "kind", "y", "x", "plane")
    np.testing.assert_array_equal(view.cutout.values, aligned.aligned.values)
    np.testing.assert_array_equal(view.psf.values, aligned.aligned_psf.values)
    assert "wcs_header" not in view
    assert "side" not in view.coords
    assert view.cutout.attrs["aligned_wcs"] == aligned.attrs["aligned_wcs"]
    assert view.fink.crop(20).sizes["x"] == 20  # the cube's transforms work on it
    with pytest.raises(CubeError, match="not aligned"):
        ds.fink.aligned()


def test_update_aligns_the_new_sources_too(tmp_path: Path) -> None:
    with Emulator() as emu:
        oid = emu.catalog.named("small")
        store = tmp_path / "cubes.zarr"
        finkcube.build_store([oid], store, url=emu.url, align="sky")  # planes="data"
        before = finkcube.open_cube(store, oid).sizes["time"]
        new = emu.catalog.add_sources(oid, 2)
        finkcube.update_store(store, url=emu.url)
        cube = finkcube.open_cube(store, oid).load()
    assert cube.sizes["time"] == before + 2
    for sid in new:  # the new epochs learnt their WCS (one FITS file each) and are aligned
        epoch = cube.fink.source(sid)
        assert epoch.wcs_header.values[0, 0]
        assert np.isfinite(epoch.aligned.values).mean() > 0.5
