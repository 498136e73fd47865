"""PNG cutouts of the emulator and the stretches they share with finkcube's plots."""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from PIL import Image

from finkcube.emulator import Emulator
from finkcube.errors import InputError
from finkcube.stretch import convolve_image, fink_cut_levels, stretch_image

CUTOUTS = "/api/v1/cutouts"
TIMEOUT = 30


def png(emu: Emulator, source_id: int, **options: object) -> requests.Response:
    fields = {"diaSourceId": str(source_id), "kind": "Science", **options}
    return requests.post(emu.url + CUTOUTS, json=fields, timeout=TIMEOUT)


def pixels(reply: requests.Response) -> np.ndarray:
    assert reply.status_code == 200, reply.text
    return np.asarray(Image.open(io.BytesIO(reply.content)))


@pytest.fixture(scope="module")
def source(emulator: Emulator) -> int:
    return emulator.catalog.source_ids(emulator.catalog.named("small"))[0]


def test_default_png_is_the_sigmoid_of_the_data_row_0_on_top(
    emulator: Emulator, source: int
) -> None:
    data = np.nan_to_num(emulator.catalog.array(source, "Science").astype(np.float64))
    expected = np.uint8(255 / (1 + np.exp(-(data - data.mean()) / data.std())))
    got = pixels(png(emulator, source))
    assert got.dtype == np.uint8
    # Row 0 of the PNG is row 0 of the array: allow one grey level for float rounding.
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert not np.array_equal(got, got[::-1])


def test_stretches_change_the_image(emulator: Emulator, source: int) -> None:
    images = {s: pixels(png(emulator, source, stretch=s)) for s in ("sigmoid", "linear", "sqrt")}
    assert not np.array_equal(images["sigmoid"], images["linear"])
    assert not np.array_equal(images["linear"], images["sqrt"])
    # sqrt lifts every grey level of linear (or keeps it at 0 and 255).
    assert (images["sqrt"].astype(int) >= images["linear"].astype(int) - 1).all()


def test_colormap_gives_rgba(emulator: Emulator, source: int) -> None:
    image = Image.open(io.BytesIO(png(emulator, source, colormap="viridis").content))
    assert image.mode == "RGBA"
    grey = pixels(png(emulator, source))
    assert np.asarray(image).shape == (*grey.shape, 4)


def test_convolution_smooths(emulator: Emulator, source: int) -> None:
    plain = pixels(png(emulator, source, stretch="linear")).astype(float)
    smooth = pixels(png(emulator, source, stretch="linear", convolution_kernel="gauss"))
    box = pixels(png(emulator, source, stretch="linear", convolution_kernel="box"))
    assert np.diff(smooth.astype(float), axis=1).std() < np.diff(plain, axis=1).std()
    assert not np.array_equal(smooth, box)


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
            vmin, vmax = fink_cut_levels(catalog.array(source_id, "Difference"))
            statuses.setdefault(vmin > vmax, source_id)
    assert set(statuses) == {True, False}
    for fails, source_id in statuses.items():
        reply = png(emulator, source_id, kind="Difference", stretch="linear")
        assert reply.status_code == (500 if fails else 200)


# -- finkcube.stretch ------------------------------------------------------------------


def test_stretch_maps_to_unit_interval_nan_as_zero() -> None:
    rng = np.random.default_rng(1)
    image = rng.normal(0.0, 5.0, (31, 31))
    image[0, :4] = np.nan
    for name in ("sigmoid", "linear", "sqrt", "power", "log"):
        out = stretch_image(image, name)
        assert out.dtype == np.float64
        assert out.shape == image.shape
        assert out.min() >= 0.0
        assert out.max() <= 1.0
        np.testing.assert_array_equal(out, stretch_image(np.nan_to_num(image), name))


def test_stretch_formulas() -> None:
    image = np.linspace(0.0, 10.0, 11).reshape(1, 11)
    linear = stretch_image(image, "linear", vmin=0.0, vmax=10.0)
    np.testing.assert_allclose(linear, image / 10.0)
    np.testing.assert_allclose(stretch_image(image, "sqrt", vmin=0.0, vmax=10.0), linear**0.5)
    np.testing.assert_allclose(stretch_image(image, "power", vmin=0.0, vmax=10.0), linear**2)
    log = np.log(1000 * linear + 1) / np.log(1001)
    np.testing.assert_allclose(stretch_image(image, "log", vmin=0.0, vmax=10.0), log)
    np.testing.assert_allclose(stretch_image(image, "linear", 0.0, 100.0), linear)
    clipped = stretch_image(image, "linear", 10.0, 90.0)
    assert clipped[0, 0] == 0.0
    assert clipped[0, -1] == 1.0
    sigmoid = stretch_image(image)
    np.testing.assert_allclose(sigmoid, 1 / (1 + np.exp(-(image - 5.0) / image.std())))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stretch": "asinh"}, "unknown stretch"),
        ({"pmin": -1.0}, "percentiles"),
        ({"pmax": 100.5}, "percentiles"),
        ({"pmin": 50.0, "pmax": 50.0}, "percentiles"),
        ({"stretch": "linear", "vmin": 2.0, "vmax": 1.0}, "vmin"),
    ],
)
def test_stretch_refuses_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        stretch_image(np.ones((3, 3)), **kwargs)


def test_convolution_kernels_keep_flux() -> None:
    image = np.zeros((11, 11))
    image[5, 5] = 1.0
    for kernel in ("gauss", "box"):
        out = convolve_image(image, kernel)
        assert out[5, 5] < 1.0
        assert out.sum() == pytest.approx(1.0)
    with pytest.raises(InputError, match="unknown convolution kernel"):
        convolve_image(image, "tophat")


def test_fink_cut_levels_are_centre_and_min_plus_mad() -> None:
    image = np.arange(25.0).reshape(5, 5)
    image[2, 2] = 100.0
    vmin, vmax = fink_cut_levels(image)
    assert vmax == 100.0
    median = np.median(image)
    assert vmin == pytest.approx(0.0 + 0.2 * np.median(np.abs(image - median)))
    with pytest.raises(InputError, match="2-D"):
        fink_cut_levels(np.ones(4))
