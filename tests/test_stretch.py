"""finkcube.stretch against independent oracles: astropy for its stretches and kernels, plain
numpy formulas written here for the service's own sigmoid and cut levels.

The stamps are the real Rubin cutouts of the packaged alert sample, read with fastavro and
astropy, with blank (NaN) pixels added where the real ones have none.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import fastavro
import numpy as np
import pytest
from astropy.convolution import Box2DKernel, Gaussian2DKernel, convolve
from astropy.io import fits
from astropy.visualization import simple_norm

from finkcube.emulator.alerts import sample_alerts_path
from finkcube.errors import InputError
from finkcube.stretch import convolve_image, fink_cut_levels, stretch_image

ASTROPY_STRETCHES = ("linear", "sqrt", "power", "log")
#: How the service sets up astropy's stretches: PowerStretch(2), LogStretch(1000).
SERVICE_NORM = {"power": 2.0, "log_a": 1000.0, "clip": True}


def _with_blanks(data: np.ndarray, index: int) -> np.ndarray:
    """A copy with a blank edge column and a few blank pixels, as on a chip edge."""
    image = np.array(data, dtype=np.float64)
    image[:, index % 3] = np.nan
    image[index % image.shape[0], -4:] = np.nan
    return image


def _read_stamps() -> list[np.ndarray]:
    with sample_alerts_path().open("rb") as stream:
        records = list(fastavro.reader(stream))
    stamps = []
    for index, record in enumerate(records):
        for kind in ("Science", "Template", "Difference"):
            raw = record.get("cutout" + kind)
            if raw is None:
                continue
            with fits.open(io.BytesIO(raw), ignore_missing_simple=True) as hdus:
                stamps.append(_with_blanks(hdus[0].data, index))
    return stamps


STAMPS = _read_stamps()


def as_service_sees(image: np.ndarray) -> np.ndarray:
    """What the service stretches: blank pixels set to 0."""
    return np.nan_to_num(image, nan=0.0)


def independent_sigmoid(image: np.ndarray) -> np.ndarray:
    x = as_service_sees(image)
    return 1.0 / (1.0 + np.exp(-(x - x.mean()) / x.std()))


def independent_cut_levels(image: np.ndarray) -> tuple[float, float]:
    """The service's rule: min + 0.2 x MAD, and the central pixel."""
    x = as_service_sees(image)
    mad = np.median(np.abs(x - np.median(x)))
    return float(x.min() + 0.2 * mad), float(x[x.shape[0] // 2, x.shape[1] // 2])


def astropy_oracle(image: np.ndarray, stretch: str, **limits: float) -> np.ndarray:
    x = as_service_sees(image)
    norm = simple_norm(x, stretch, **limits, **SERVICE_NORM)
    return np.asarray(norm(x))


def test_the_stamps_are_real_and_have_blanks() -> None:
    assert len(STAMPS) >= 12
    for stamp in STAMPS:
        assert stamp.ndim == 2
        assert np.isnan(stamp).any()
        assert np.isfinite(stamp).sum() > 0.9 * stamp.size
        assert np.nanstd(stamp) > 0


@pytest.mark.parametrize("stretch", ASTROPY_STRETCHES)
def test_percentile_stretches_equal_astropy(stretch: str) -> None:
    for stamp in STAMPS:
        for pmin, pmax in ((0.5, 99.5), (10.0, 90.0), (0.0, 100.0)):
            expected = astropy_oracle(stamp, stretch, min_percent=pmin, max_percent=pmax)
            got = stretch_image(stamp, stretch, pmin, pmax)
            assert got.dtype == np.float64
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("stretch", ASTROPY_STRETCHES)
def test_service_cut_levels_stretches_equal_astropy(stretch: str) -> None:
    checked = 0
    for stamp in STAMPS:
        vmin, vmax = independent_cut_levels(stamp)
        if vmin >= vmax:
            continue  # the service fails on those (see the emulator's PNG tests)
        expected = astropy_oracle(stamp, stretch, vmin=vmin, vmax=vmax)
        got = stretch_image(stamp, stretch, vmin=vmin, vmax=vmax)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        checked += 1
    assert checked >= 6


def test_one_explicit_level_keeps_the_other_percentile() -> None:
    stamp = STAMPS[0]
    x = as_service_sees(stamp)
    vmin = float(np.median(x))
    vmax = float(np.percentile(x, 99.5))
    expected = astropy_oracle(stamp, "sqrt", vmin=vmin, vmax=vmax)
    np.testing.assert_allclose(
        stretch_image(stamp, "sqrt", vmin=vmin), expected, rtol=0, atol=1e-12
    )


def test_sigmoid_equals_the_service_formula() -> None:
    for stamp in STAMPS:
        got = stretch_image(stamp, "sigmoid", pmin=10, pmax=20)
        np.testing.assert_allclose(got, independent_sigmoid(stamp), rtol=1e-12, atol=0)
    flat = stretch_image(np.full((5, 5), 3.0))
    np.testing.assert_array_equal(flat, np.full((5, 5), 0.5))


@pytest.mark.parametrize("stretch", ["sigmoid", *ASTROPY_STRETCHES])
def test_every_stretch_maps_to_unit_interval_blanks_as_zero(stretch: str) -> None:
    stamp = STAMPS[1]
    out = stretch_image(stamp, stretch)
    assert out.shape == stamp.shape
    assert 0.0 <= out.min() < out.max() <= 1.0
    np.testing.assert_array_equal(out, stretch_image(as_service_sees(stamp), stretch))


def test_equal_cut_levels_give_black() -> None:
    np.testing.assert_array_equal(stretch_image(STAMPS[0], "log", vmin=1.0, vmax=1.0), 0.0)


def test_cut_levels_equal_the_service_rule() -> None:
    for stamp in STAMPS:
        assert fink_cut_levels(stamp) == pytest.approx(independent_cut_levels(stamp), abs=1e-9)
    # A stamp that is not square: the centre is taken along each axis.
    tall = STAMPS[0][:, :-6]
    assert tall.shape[0] != tall.shape[1]
    assert fink_cut_levels(tall) == pytest.approx(independent_cut_levels(tall), abs=1e-9)
    with pytest.raises(InputError, match="2-D"):
        fink_cut_levels(np.ones(4))


@pytest.mark.parametrize(
    ("kernel", "weights"),
    [
        ("gauss", Gaussian2DKernel(1, x_size=5, y_size=5)),
        ("box", Box2DKernel(1, x_size=5, y_size=5)),
    ],
)
def test_kernels_equal_astropy_and_keep_flux(kernel: str, weights: object) -> None:
    image = stretch_image(STAMPS[2], "linear")
    expected = convolve(image, weights, boundary="extend")
    np.testing.assert_allclose(convolve_image(image, kernel), expected, rtol=0, atol=1e-12)
    spike = np.zeros((11, 11))
    spike[5, 5] = 1.0
    smooth = convolve_image(spike, kernel)
    assert smooth[5, 5] < 1.0
    assert smooth.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: stretch_image(np.ones((3, 3)), "asinhh"), "unknown stretch"),
        (lambda: stretch_image(np.ones((3, 3)), pmin=-1.0), "percentiles"),
        (lambda: stretch_image(np.ones((3, 3)), pmax=100.5), "percentiles"),
        (lambda: stretch_image(np.ones((3, 3)), pmin=50.0, pmax=50.0), "percentiles"),
        (lambda: stretch_image(np.ones((3, 3)), pmin="low"), "percentiles"),
        (lambda: stretch_image(np.ones((3, 3)), "linear", vmin=2.0, vmax=1.0), "vmin"),
        (lambda: convolve_image(np.ones((3, 3)), "tophat"), "unknown convolution kernel"),
    ],
    ids=["stretch", "pmin", "pmax", "equal", "text", "levels", "kernel"],
)
def test_bad_arguments_are_input_errors(call: Callable[[], object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        call()
