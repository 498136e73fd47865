"""PNG cutouts of the emulator, checked against oracles that do not share its code.

The expected images come from astropy (its stretches and kernels), matplotlib (colormaps)
and plain numpy formulas written here for what is the service's own (the sigmoid, the cut
levels): never from ``finkcube.stretch``, which the emulator renders with.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
import requests
from astropy.convolution import Box2DKernel, Gaussian2DKernel, convolve
from astropy.visualization import simple_norm
from PIL import Image

from finkcube.emulator import Emulator

CUTOUTS = "/api/v1/cutouts"
TIMEOUT = 30
ASTROPY_STRETCHES = ("linear", "sqrt", "power", "log")


def png(emu: Emulator, source_id: int, **options: object) -> requests.Response:
    fields = {"diaSourceId": str(source_id), "kind": "Science", **options}
    return requests.post(emu.url + CUTOUTS, json=fields, timeout=TIMEOUT)


def pixels(reply: requests.Response) -> np.ndarray:
    assert reply.status_code == 200, reply.text
    return np.asarray(Image.open(io.BytesIO(reply.content)))


def stamp(emu: Emulator, source_id: int, kind: str = "Science") -> np.ndarray:
    """The data plane as the service stretches it: float64, blank pixels set to 0."""
    return np.nan_to_num(emu.catalog.array(source_id, kind).astype(np.float64), nan=0.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x - x.mean()) / x.std()))


def cut_levels(x: np.ndarray) -> tuple[float, float]:
    """The service's cut levels: min + 0.2 x median absolute deviation, the central pixel."""
    mad = np.median(np.abs(x - np.median(x)))
    return float(x.min() + 0.2 * mad), float(x[x.shape[0] // 2, x.shape[1] // 2])


def astropy_stretch(x: np.ndarray, stretch: str) -> np.ndarray:
    """astropy's stretch between the service's cut levels, clipped, as the service calls it."""
    vmin, vmax = cut_levels(x)
    norm = simple_norm(x, stretch, vmin=vmin, vmax=vmax, power=2.0, log_a=1000.0, clip=True)
    return np.asarray(norm(x))


def grey(values: np.ndarray) -> np.ndarray:
    return np.uint8(np.clip(values, 0.0, 1.0) * 255)


def assert_close_grey(got: np.ndarray, expected: np.ndarray) -> None:
    """Equal but for one 8-bit level, where float rounding falls across a truncation."""
    assert got.shape == expected.shape
    assert got.dtype == np.uint8
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1
    assert (diff == 0).mean() > 0.99


@pytest.fixture(scope="module")
def source(emulator: Emulator) -> int:
    return emulator.catalog.source_ids(emulator.catalog.named("small"))[0]


@pytest.fixture(scope="module")
def blank_source(emulator: Emulator) -> int:
    """A source whose Science stamp has blank pixels and a centre above its lower level."""
    catalog = emulator.catalog
    for object_id in catalog.object_ids():
        for source_id in catalog.source_ids(object_id)[:30]:
            if catalog.fits(source_id, "Science") is None:
                continue
            try:
                data = catalog.array(source_id, "Science")
            except LookupError:
                continue
            low, high = cut_levels(np.nan_to_num(data.astype(np.float64)))
            if np.isnan(data).any() and low < high:
                return source_id
    pytest.fail("no served Science stamp has blank pixels")


def test_default_png_is_the_sigmoid_of_the_data_row_0_on_top(
    emulator: Emulator, source: int
) -> None:
    got = pixels(png(emulator, source))
    assert_close_grey(got, grey(sigmoid(stamp(emulator, source))))
    # Row 0 of the PNG is row 0 of the array, not the bottom row of a FITS display.
    assert not np.array_equal(got, got[::-1])


def test_blank_pixels_count_as_zero(emulator: Emulator, blank_source: int) -> None:
    data = stamp(emulator, blank_source)
    assert_close_grey(pixels(png(emulator, blank_source)), grey(sigmoid(data)))
    got = pixels(png(emulator, blank_source, stretch="sqrt"))
    assert_close_grey(got, grey(astropy_stretch(data, "sqrt")))


@pytest.mark.parametrize("stretch", ASTROPY_STRETCHES)
def test_stretches_equal_astropy_between_the_service_cut_levels(
    emulator: Emulator, source: int, stretch: str
) -> None:
    data = stamp(emulator, source)
    got = pixels(png(emulator, source, stretch=stretch))
    assert_close_grey(got, grey(astropy_stretch(data, stretch)))


def test_stretches_change_the_image(emulator: Emulator, source: int) -> None:
    images = {s: pixels(png(emulator, source, stretch=s)) for s in ("sigmoid", "linear", "sqrt")}
    assert not np.array_equal(images["sigmoid"], images["linear"])
    assert not np.array_equal(images["linear"], images["sqrt"])
    # sqrt lifts every grey level of linear (or keeps it at 0 and 255).
    assert (images["sqrt"].astype(int) >= images["linear"].astype(int) - 1).all()


def test_colormap_is_matplotlibs(emulator: Emulator, source: int) -> None:
    image = Image.open(io.BytesIO(png(emulator, source, colormap="viridis").content))
    assert image.mode == "RGBA"
    colours = matplotlib.colormaps["viridis"](sigmoid(stamp(emulator, source)))
    assert_close_grey(np.asarray(image), np.uint8(colours * 255))


@pytest.mark.parametrize(
    ("kernel", "weights"),
    [
        ("gauss", Gaussian2DKernel(1, x_size=5, y_size=5)),
        ("box", Box2DKernel(1, x_size=5, y_size=5)),
    ],
)
def test_convolution_is_astropys_after_the_stretch(
    emulator: Emulator, source: int, kernel: str, weights: object
) -> None:
    stretched = astropy_stretch(stamp(emulator, source), "linear")
    expected = grey(convolve(stretched, weights, boundary="extend"))
    got = pixels(png(emulator, source, stretch="linear", convolution_kernel=kernel))
    assert_close_grey(got, expected)
    plain = pixels(png(emulator, source, stretch="linear")).astype(float)
    assert np.diff(got.astype(float), axis=1).std() < np.diff(plain, axis=1).std()


def test_percentiles_change_nothing_like_the_service(emulator: Emulator, source: int) -> None:
    default = pixels(png(emulator, source, stretch="linear"))
    narrow = pixels(png(emulator, source, stretch="linear", pmin=10, pmax=90))
    np.testing.assert_array_equal(default, narrow)


@pytest.mark.parametrize(
    "options",
    [
        {"stretch": "asinhh"},
        {"convolution_kernel": "tophat"},
        {"colormap": "not_a_colormap"},
        {"stretch": "linear", "pmin": "low"},
    ],
)
def test_bad_png_options_are_500(emulator: Emulator, source: int, options: dict) -> None:
    reply = png(emulator, source, **options)
    assert reply.status_code == 500
    assert reply.json() == {"message": "Internal Server Error"}


def test_sigmoid_ignores_bad_percentiles_like_the_service(emulator: Emulator, source: int) -> None:
    assert png(emulator, source, pmin="low").status_code == 200


def test_negative_difference_fails_non_sigmoid_stretches(emulator: Emulator) -> None:
    catalog = emulator.catalog
    statuses = {}
    for object_id in catalog.object_ids()[:8]:
        for source_id in catalog.source_ids(object_id)[:30]:
            if catalog.fits(source_id, "Difference") is None:
                continue
            vmin, vmax = cut_levels(stamp(emulator, source_id, "Difference"))
            statuses.setdefault(vmin > vmax, source_id)
    assert set(statuses) == {True, False}
    for fails, source_id in statuses.items():
        reply = png(emulator, source_id, kind="Difference", stretch="linear")
        assert reply.status_code == (500 if fails else 200)
