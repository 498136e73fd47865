"""The ``ds.fink`` accessor: registration, resize (crop/pad) and per-stamp normalisation."""

from __future__ import annotations

import subprocess
import sys

import dask
import numpy as np
import pytest
import xarray as xr

import finkcube.accessor
from finkcube.cube.canvas import MAD_TO_SIGMA, normalize_stamps, placement_offset, resize_stamps
from finkcube.errors import InputError
from finkcube.names import CUTOUT_VAR, KINDS
from tests._cubes import synthetic_cube

SIDES = (30, 41, 64, 35)


def raise_if_computed(*args: object, **kwargs: object) -> None:
    """A dask scheduler that fails the test: nothing should have been computed."""
    raise AssertionError("dask computed something that should have stayed lazy")


@pytest.fixture(scope="module")
def cube() -> xr.Dataset:
    return synthetic_cube(SIDES, planes="all", mask_every=1)


def test_importing_the_accessor_stays_light() -> None:
    code = (
        "import sys, finkcube.accessor, finkcube.ml, finkcube.viz.plot, finkcube.viz.animate\n"
        "heavy = [m for m in ('matplotlib', 'torch') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_accessor_is_registered_on_datasets(cube: xr.Dataset) -> None:
    assert isinstance(cube.fink, finkcube.accessor.FinkAccessor)


def test_methods_refuse_a_dataset_that_is_no_cube() -> None:
    ds = xr.Dataset({"other": (("a",), np.zeros(3))})
    with pytest.raises(InputError, match="not a finkcube cube"):
        ds.fink.normalize()
    with pytest.raises(InputError, match="not a finkcube cube"):
        ds.fink.resize(10)


@pytest.mark.parametrize("size", [20, 31, 50, 64, 65, 80, 81])
def test_resize_places_epochs_as_the_builder_does(cube: xr.Dataset, size: int) -> None:
    built = synthetic_cube(SIDES, planes="all", mask_every=1, size=size)
    resized = cube.fink.resize(size)
    assert resized.sizes["y"] == resized.sizes["x"] == size
    assert resized[CUTOUT_VAR].dtype == np.float32
    np.testing.assert_array_equal(resized[CUTOUT_VAR].values, built[CUTOUT_VAR].values)
    np.testing.assert_array_equal(resized["cropped"].values, built["cropped"].values)
    # What is not pixel data is kept as it was.
    xr.testing.assert_identical(resized["psf"].variable, cube["psf"].variable)
    assert resized["cropped"].attrs == cube["cropped"].attrs
    assert resized.attrs == cube.attrs


def test_resize_of_a_cropped_cube_leaves_lost_pixels_nan() -> None:
    small = synthetic_cube(SIDES, size=40)
    full = synthetic_cube(SIDES, size=70)
    grown = small.fink.pad(70)[CUTOUT_VAR].values
    known = ~np.isnan(grown)
    np.testing.assert_array_equal(grown[known], full[CUTOUT_VAR].values[known])
    # The 64-pixel epoch lost its border to the first crop: it stays NaN.
    assert np.isnan(grown[2]).sum() > np.isnan(full[CUTOUT_VAR].values[2]).sum()
    # Sides 41 and 64 were cropped to 40: padding does not bring their pixels back.
    assert small.fink.pad(70)["cropped"].values.tolist() == [False, True, True, False]


def test_crop_and_pad_check_their_direction(cube: xr.Dataset) -> None:
    assert cube.fink.crop(32).sizes["y"] == 32
    assert cube.fink.pad(70).sizes["x"] == 70
    with pytest.raises(InputError, match="use pad"):
        cube.fink.crop(70)
    with pytest.raises(InputError, match="use crop"):
        cube.fink.pad(32)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InputError, match="positive integer"):
            cube.fink.resize(bad)  # type: ignore[arg-type]


def test_canvas_without_side_is_resized_as_one_stamp() -> None:
    data = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6, 1).repeat(3, axis=1)
    ds = xr.Dataset(
        {CUTOUT_VAR: (("time", "kind", "y", "x", "plane"), data)},
        coords={"time": [60000.0], "kind": list(KINDS), "plane": ["data"]},
    )
    cropped = ds.fink.crop(3)[CUTOUT_VAR].values[0, 0, :, :, 0]
    offset = -int(placement_offset(6, 3))
    np.testing.assert_array_equal(cropped, data[0, 0, offset : offset + 3, offset : offset + 3, 0])
    padded = ds.fink.pad(9)[CUTOUT_VAR].values[0, 0, :, :, 0]
    assert np.isnan(padded).sum() == 81 - 36
    np.testing.assert_array_equal(padded[1:7, 1:7], data[0, 0, :, :, 0])


def test_robust_normalisation_gives_median_zero_and_unit_mad(cube: xr.Dataset) -> None:
    normed = cube.fink.normalize(fill=None)
    data = normed[CUTOUT_VAR].sel(plane="data").values
    flat = data.reshape(*data.shape[:2], -1)
    median = np.nanmedian(flat, axis=-1)
    mad = np.nanmedian(np.abs(flat - median[..., None]), axis=-1)
    np.testing.assert_allclose(median, 0.0, atol=1e-5)
    np.testing.assert_allclose(MAD_TO_SIGMA * mad, 1.0, rtol=1e-5)
    # NaN stay where they were; the attribute says what was done.
    np.testing.assert_array_equal(np.isnan(data), np.isnan(cube[CUTOUT_VAR].sel(plane="data")))
    assert normed[CUTOUT_VAR].attrs["normalization"] == "robust"


def test_normalisation_scales_variance_and_keeps_the_mask(cube: xr.Dataset) -> None:
    normed = cube.fink.normalize(fill=None)[CUTOUT_VAR]
    raw = cube[CUTOUT_VAR]
    d = raw.sel(plane="data").values.reshape(*raw.shape[:2], -1)
    scale = MAD_TO_SIGMA * np.nanmedian(
        np.abs(d - np.nanmedian(d, axis=-1, keepdims=True)), axis=-1
    )
    np.testing.assert_allclose(
        normed.sel(plane="variance").values,
        raw.sel(plane="variance").values / (scale**2)[:, :, None, None],
        rtol=1e-5,
    )
    np.testing.assert_array_equal(normed.sel(plane="mask").values, raw.sel(plane="mask").values)


def test_nan_are_filled(cube: xr.Dataset) -> None:
    raw = cube[CUTOUT_VAR].values
    filled = cube.fink.normalize(fill=-7.0)[CUTOUT_VAR].values
    assert not np.isnan(filled).any()
    assert (filled[np.isnan(raw)] == -7.0).all()


def test_minmax_normalisation_spans_zero_to_one(cube: xr.Dataset) -> None:
    data = cube.fink.normalize("minmax", fill=None)[CUTOUT_VAR].sel(plane="data").values
    assert np.nanmin(data, axis=(2, 3)) == pytest.approx(0.0)
    assert np.nanmax(data, axis=(2, 3)) == pytest.approx(1.0)


def test_blank_and_flat_stamps_normalise_without_warnings() -> None:
    stamps = np.full((2, 1, 5, 5), np.nan, dtype=np.float32)
    stamps[1] = 3.0
    out = normalize_stamps(stamps, ["data"], "robust", fill=0.5)  # warnings are errors here
    assert (out[0] == 0.5).all()
    assert (out[1] == 0.0).all()  # flat: centre 3, scale counted as 1


def test_normalisation_refuses_unknown_methods_and_missing_data(cube: xr.Dataset) -> None:
    with pytest.raises(InputError, match="unknown normalisation"):
        cube.fink.normalize("zscore")
    with pytest.raises(InputError, match="'data' plane"):
        cube.sel(plane=["variance"]).fink.normalize()
    with pytest.raises(InputError, match="'data' plane"):
        normalize_stamps(np.zeros((1, 3, 3)), ["variance"])


def test_transforms_stay_lazy_on_dask_cubes(cube: xr.Dataset) -> None:
    lazy = cube.chunk({"time": 1})
    with dask.config.set(scheduler=raise_if_computed):
        out = lazy.fink.resize(50).fink.normalize("robust", fill=0.0)
    assert out[CUTOUT_VAR].chunks is not None
    eager = cube.fink.resize(50).fink.normalize("robust", fill=0.0)
    xr.testing.assert_identical(out.compute(), eager)


def test_resize_stamps_refuses_non_square() -> None:
    with pytest.raises(InputError, match="square"):
        resize_stamps(np.zeros((3, 4)), size=2)
