"""Pictures of a cube: stamp grids, light curves, overviews, animations and ``render``.

Figures are drawn with the Agg backend, written to files and read back with Pillow.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from PIL import Image

import finkcube.accessor  # noqa: F401  (registers ds.fink)
from finkcube.errors import InputError, NotFoundError
from finkcube.names import CUTOUT_VAR, KINDS, STRETCHES
from finkcube.store import init_store, write_cube
from finkcube.viz.animate import animate
from finkcube.viz.figure import COLORBAR_HEIGHT, NO_DATA_COLOR, TimeRange
from finkcube.viz.plot import CELL, LIGHTCURVE_WIDTH, render, select_epochs
from tests._cubes import BASE_OBJECT_ID, synthetic_cube

SIDES = (30, 41, 64, 35, 52, 33, 47, 30)
DPI = 50


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def cube() -> xr.Dataset:
    ds = synthetic_cube(SIDES)
    flux = ds["psfFlux"].values.copy()
    flux[[1, 5]] = np.nan  # two epochs without a flux
    return ds.assign_coords(psfFlux=("time", flux, ds["psfFlux"].attrs))


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def assert_not_blank(pixels: np.ndarray) -> None:
    """More than a background: pixels vary, and many differ from the most common colour."""
    assert pixels.std() > 0
    flat = pixels.reshape(-1, pixels.shape[-1])
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    assert (np.abs(flat - background).sum(axis=1) > 0).mean() > 0.1


def stamp_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.images]


def test_select_epochs() -> None:
    assert select_epochs(4) == [0, 1, 2, 3]
    assert select_epochs(100, max_rows=3) == [0, 50, 99]
    assert select_epochs(5, [-1, 0]) == [4, 0]
    for bad in (5, [0, -6], slice(3, 3)):
        with pytest.raises(InputError):
            select_epochs(5, bad)
    with pytest.raises(InputError, match="no epochs"):
        select_epochs(0)


def assert_size(pixels: np.ndarray, height: float, width: float) -> None:
    """The PNG is ``height`` x ``width`` inches at DPI, give or take the pixel that
    matplotlib releases round differently (8.2 in at 50 dpi is 409 px in 3.10, 410 later)."""
    expected = np.array([height * DPI, width * DPI])
    assert np.all(np.abs(np.array(pixels.shape[:2]) - expected) <= 1), (pixels.shape, expected)


def test_stamp_grid_titles_orientation_and_file(cube: xr.Dataset, tmp_path: Path) -> None:
    positions = [0, 3, 7]
    fig = cube.fink.plot_stamps(positions)
    axes = stamp_axes(fig)
    assert len(axes) == len(positions) * len(KINDS)
    times = cube["time"].values[positions]
    bands = cube["band"].values[positions]
    for i, ax in enumerate(axes):
        row, col = divmod(i, len(KINDS))
        title = ax.get_title()
        assert title.startswith(KINDS[col])
        assert f"MJD {times[row]:.3f} {bands[row]}" in title
        image = ax.images[0]
        assert image.origin == "lower"
        shown = image.get_array()
        assert shown.shape == (cube.sizes["y"], cube.sizes["x"])
        # The cube's values are shown, NaN pixels masked; the norm maps them into [0, 1].
        stamp = cube[CUTOUT_VAR].isel(time=positions[row], kind=col, plane=0).values
        np.testing.assert_array_equal(np.ma.getmaskarray(shown), np.isnan(stamp))
        np.testing.assert_array_equal(shown.compressed(), stamp[np.isfinite(stamp)])
        mapped = image.norm(shown.compressed())
        assert mapped.min() >= 0.0
        assert mapped.max() <= 1.0

    out = tmp_path / "grid.png"
    fig.savefig(out, dpi=DPI)
    pixels = read_png(out)
    height = 3 * CELL[1] + COLORBAR_HEIGHT
    assert_size(pixels, height, 3 * CELL[0])
    assert_not_blank(pixels)


def test_default_grid_caps_its_rows(cube: xr.Dataset) -> None:
    fig = cube.fink.plot_stamps(max_rows=4, kinds=["Difference"])
    assert len(stamp_axes(fig)) == 4
    assert all(ax.get_title().startswith("Difference") for ax in stamp_axes(fig))


def oracle(finite: np.ndarray, stretch: str, pmin: float = 0.5, pmax: float = 99.5) -> Any:
    """The Fink stretch fitted on ``finite`` (every finite pixel that shares one scale), as a
    function of pixel values into [0, 1]: astropy's stretches between its percentile levels,
    or the sigmoid over the mean and standard deviation of ``finite``."""
    from astropy.visualization import (
        AsymmetricPercentileInterval,
        LinearStretch,
        LogStretch,
        ManualInterval,
        PowerStretch,
        SqrtStretch,
    )

    if stretch == "sigmoid":
        mean, std = finite.mean(), finite.std()
        return lambda v: 1.0 / (1.0 + np.exp(-(np.asarray(v, dtype=float) - mean) / std))
    low, high = AsymmetricPercentileInterval(pmin, pmax).get_limits(finite)
    base = {"linear": LinearStretch(), "sqrt": SqrtStretch(), "power": PowerStretch(2.0),
            "log": LogStretch(1000.0)}[stretch]  # fmt: skip
    transform = base + ManualInterval(low, high)
    return lambda v: transform(np.asarray(v, dtype=float), clip=True)


@pytest.mark.parametrize("stretch", STRETCHES)
def test_every_stretch_of_the_service(cube: xr.Dataset, stretch: str) -> None:
    fig = cube.fink.plot_stamps(0, stretch=stretch, cmap="viridis", pmin=1, pmax=99)
    image = stamp_axes(fig)[0].images[0]
    assert image.get_cmap().name.startswith("viridis")
    stamp = cube[CUTOUT_VAR].isel(time=0, kind=0, plane=0).values.astype(np.float64)
    keep = np.isfinite(stamp)
    expected = oracle(stamp[keep], stretch, 1, 99)
    np.testing.assert_allclose(image.norm(stamp[keep]), expected(stamp[keep]), atol=1e-9)
    # What is drawn: the colormap of that stretch, and the "no data" colour for NaN pixels.
    rgba = image.to_rgba(image.get_array())
    colours = matplotlib.colormaps["viridis"](expected(stamp[keep]))
    np.testing.assert_allclose(rgba[keep], colours, atol=1.01 / 255)
    np.testing.assert_allclose(rgba[~keep], np.tile(to_rgba(NO_DATA_COLOR), ((~keep).sum(), 1)))


def test_nan_only_stamps_draw_without_warnings(cube: xr.Dataset, tmp_path: Path) -> None:
    blank = cube.copy(deep=True)
    blank[CUTOUT_VAR][0] = np.nan
    for scale in ("shared", "stamp"):
        fig = blank.fink.plot_stamps(0, stretch="linear", scale=scale)
        for ax in stamp_axes(fig):
            shown = ax.images[0].get_array()
            assert np.ma.getmaskarray(shown).all()
            rgba = ax.images[0].to_rgba(shown)
            np.testing.assert_allclose(rgba, np.broadcast_to(to_rgba(NO_DATA_COLOR), rgba.shape))
        fig.savefig(tmp_path / "blank.png", dpi=DPI)


def test_bad_options_are_input_errors(cube: xr.Dataset) -> None:
    with pytest.raises(InputError, match="stretch"):
        cube.fink.plot_stamps(stretch="cubic")
    with pytest.raises(InputError, match="colormap"):
        cube.fink.plot_stamps(cmap="no-such-map")
    with pytest.raises(InputError, match="kinds"):
        cube.fink.plot_stamps(kinds=["Science", "Sky"])
    with pytest.raises(InputError, match="plane"):
        cube.fink.plot_stamps(plane="variance")
    with pytest.raises(InputError, match="scale"):
        cube.fink.plot_stamps(scale="global")
    with pytest.raises(InputError, match="no epoch between"):
        cube.fink.plot_stamps(TimeRange(0.0, 1.0))


def test_light_curve_plots_every_finite_flux_by_band(cube: xr.Dataset) -> None:
    ax = cube.fink.plot_lightcurve()
    flux = cube["psfFlux"].values
    points = sum(len(c.lines[0].get_xdata()) for c in ax.containers)
    assert points == np.isfinite(flux).sum()
    labels = [c.get_label() for c in ax.containers]
    bands = set(cube["band"].values[np.isfinite(flux)].astype(str))
    assert sorted(labels) == sorted(bands)
    colours = {c.get_label(): c.lines[0].get_color() for c in ax.containers}
    assert len(set(colours.values())) == len(colours)
    assert str(cube.attrs["diaObjectId"]) in ax.get_title()


def test_light_curve_needs_its_flux(cube: xr.Dataset) -> None:
    with pytest.raises(InputError, match="no 'totFlux'"):
        cube.fink.plot_lightcurve(flux="totFlux")


def test_overview_puts_the_light_curve_beside_the_stamps(cube: xr.Dataset, tmp_path: Path) -> None:
    fig = cube.fink.plot_overview([0, 4])
    stamps, curve = fig.subfigs
    assert len(stamp_axes(stamps)) == 2 * len(KINDS)
    (ax,) = curve.axes
    assert sum(len(c.lines[0].get_xdata()) for c in ax.containers) == 6
    # The epochs shown as stamps are marked on the curve.
    marked = sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":")
    np.testing.assert_allclose(marked, cube["time"].values[[0, 4]])
    out = tmp_path / "overview.png"
    fig.savefig(out, dpi=DPI)
    pixels = read_png(out)
    assert pixels.shape[1] > pixels.shape[0]
    assert_not_blank(pixels)


def test_gif_has_one_frame_per_epoch(cube: xr.Dataset, tmp_path: Path) -> None:
    out = cube.fink.animate(tmp_path / "stamps.gif", fps=5, stretch="sqrt", dpi=DPI)
    with Image.open(out) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == cube.sizes["time"]
        size = (round(len(KINDS) * CELL[0] * DPI), round((CELL[1] + COLORBAR_HEIGHT) * DPI))
        assert gif.size == size
        assert gif.info["duration"] == pytest.approx(200, abs=10)
        assert gif.info["loop"] == 0
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB"), dtype=np.int16))
    for frame in frames:
        assert_not_blank(frame)
    assert any(np.any(a != b) for a, b in itertools.pairwise(frames))


def test_animation_of_selected_epochs(cube: xr.Dataset, tmp_path: Path) -> None:
    out = animate(cube, tmp_path / "two.gif", epochs=[2, 6], kinds=["Science"], dpi=DPI)
    with Image.open(out) as gif:
        assert gif.n_frames == 2
        assert gif.size == (round(CELL[0] * DPI), round((CELL[1] + COLORBAR_HEIGHT) * DPI))


def test_animation_formats(cube: xr.Dataset, tmp_path: Path) -> None:
    from matplotlib.animation import writers

    with pytest.raises(InputError, match="gif"):
        cube.fink.animate(tmp_path / "stamps.avi")
    if writers.is_available("ffmpeg"):
        out = cube.fink.animate(tmp_path / "stamps.mp4", epochs=[0, 1], dpi=DPI)
        assert out.stat().st_size > 0
    else:
        with pytest.raises(InputError, match="ffmpeg"):
            cube.fink.animate(tmp_path / "stamps.mp4")


def test_render_titles_match_the_mjd_pattern(cube: xr.Dataset) -> None:
    fig = cube.fink.plot_stamps(1)
    assert re.search(r"^Science\nMJD \d{5}\.\d{3} [ugrizy]$", stamp_axes(fig)[0].get_title())


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, cube: xr.Dataset) -> Path:
    path = tmp_path_factory.mktemp("plot") / "cubes.zarr"
    init_store(path)
    write_cube(cube, path)
    return path


def test_render_writes_the_overview_of_a_stored_cube(store: Path, tmp_path: Path) -> None:
    out = render(store, BASE_OBJECT_ID, tmp_path / "stamps.png", epochs=[0, -1], dpi=DPI)
    assert out == tmp_path / "stamps.png"
    pixels = read_png(out)
    width = len(KINDS) * CELL[0] + LIGHTCURVE_WIDTH
    height = max(2 * CELL[1] + COLORBAR_HEIGHT, 4.5)
    assert_size(pixels, height, width)
    assert_not_blank(pixels)
    assert not plt.get_fignums()  # render leaves no pyplot figure behind


def test_render_grid_alone(store: Path, tmp_path: Path) -> None:
    out = render(store, str(BASE_OBJECT_ID), tmp_path / "g.png", lightcurve=False, dpi=DPI)
    height = 6 * CELL[1] + COLORBAR_HEIGHT
    assert read_png(out).shape[:2] == (round(height * DPI), round(3 * CELL[0] * DPI))


def test_render_gif(store: Path, tmp_path: Path) -> None:
    out = render(store, BASE_OBJECT_ID, tmp_path / "stamps.png", gif=True, dpi=DPI)
    assert out == tmp_path / "stamps.gif"
    with Image.open(out) as gif:
        assert gif.n_frames == len(SIDES)


def test_render_errors(store: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        render(store, BASE_OBJECT_ID, tmp_path / "no" / "such.png")
    with pytest.raises(InputError, match="local file path"):
        render(store, BASE_OBJECT_ID, "s3://bucket/stamps.png")
    with pytest.raises(InputError, match="cannot write"):
        render(store, BASE_OBJECT_ID, tmp_path / "stamps.xyz")
    with pytest.raises(NotFoundError):
        render(store, BASE_OBJECT_ID + 99, tmp_path / "stamps.png")
