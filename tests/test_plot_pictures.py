"""Pictures that compare: padding drawn as "no data", one scale per kind, colorbars, compass.

Every check reads what is drawn (the pixels of the rendered canvas, or the colours an image
gives its values) against an oracle made with astropy and numpy from the cube's finite
pixels alone.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from PIL import Image

import finkcube.accessor  # noqa: F401  (registers ds.fink)
from finkcube.cube.wcs import epoch_wcs
from finkcube.names import CUTOUT_VAR, KINDS
from finkcube.viz.figure import NO_DATA_COLOR, TimeRange, select_epochs
from tests._cubes import synthetic_cube
from tests.test_plot import oracle

GREY = matplotlib.colormaps["gray"]


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    plt.close("all")


def stamp_axes(fig: object) -> list:
    return [ax for ax in fig.axes if ax.images]  # type: ignore[attr-defined]


def canvas_pixel(fig: object, ax: object, x: float, y: float) -> np.ndarray:
    """The RGBA (0..255) that the rendered canvas shows at data pixel ``(x, y)`` of ``ax``."""
    canvas = FigureCanvasAgg(fig)  # type: ignore[arg-type]
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())
    dx, dy = ax.transData.transform((x, y))  # type: ignore[attr-defined]
    return pixels[pixels.shape[0] - 1 - int(dy), int(dx)].astype(int)


@pytest.mark.parametrize("stretch", ["sigmoid", "linear"])
def test_padding_is_no_data_and_out_of_the_stretch(stretch: str) -> None:
    # A 34 px stamp on a 102 px canvas: 89 % of its canvas is padding.
    cube = synthetic_cube((34, 102))
    fig = cube.fink.plot_stamps([0], kinds=["Science"], stretch=stretch)
    ax = stamp_axes(fig)[0]
    image = ax.images[0]
    stamp = cube[CUTOUT_VAR].isel(time=0, kind=0, plane=0).values.astype(np.float64)
    keep = np.isfinite(stamp)
    assert (~keep).mean() > 0.85
    expected = oracle(stamp[keep], stretch)
    # The finite pixels take the colour of a stretch fitted on them alone...
    rgba = image.to_rgba(image.get_array())
    np.testing.assert_allclose(rgba[keep], GREY(expected(stamp[keep])), atol=1.01 / 255)
    # ... which differs a lot from one that counts the padding as zeros (the Fink service's).
    zeros = np.where(keep, stamp, 0.0)
    stretched = oracle(zeros.ravel(), stretch)(stamp[keep])
    assert np.abs(stretched - expected(stamp[keep])).max() > 0.15
    # The padding is drawn, on the canvas, in the "no data" colour.
    no_data = np.round(np.array(to_rgba(NO_DATA_COLOR)) * 255)
    np.testing.assert_allclose(canvas_pixel(fig, ax, 5, 5), no_data, atol=2)
    np.testing.assert_allclose(canvas_pixel(fig, ax, 96, 96), no_data, atol=2)
    centre = canvas_pixel(fig, ax, 51, 51)
    colour = np.round(np.array(GREY(float(expected(stamp[51:52, 51])[0]))) * 255)
    np.testing.assert_allclose(centre, colour, atol=3)


def bright_and_faint() -> xr.Dataset:
    """A cube whose Difference is about 0 nJy in epoch 0 and about 20,000 nJy in epoch 1."""
    cube = synthetic_cube((40, 40)).copy(deep=True)
    rng = np.random.default_rng(1)
    diff = cube[CUTOUT_VAR].sel(kind="Difference", plane="data")
    finite = np.isfinite(diff.values)
    values = np.where(finite, rng.normal(0.0, 30.0, diff.shape), np.nan)
    values[1] += 20_000.0
    cube[CUTOUT_VAR].loc[{"kind": "Difference", "plane": "data"}] = values
    return cube


def test_shared_scale_gives_a_value_one_colour_in_every_epoch() -> None:
    cube = bright_and_faint()
    fig = cube.fink.plot_stamps([0, 1], kinds=["Difference"], stretch="linear")
    faint, bright = (ax.images[0] for ax in stamp_axes(fig))
    both = cube[CUTOUT_VAR].sel(kind="Difference", plane="data").values.astype(np.float64)
    finite = both[np.isfinite(both)]
    expected = oracle(finite, "linear")
    values = np.array([-50.0, 0.0, 10_000.0, 20_000.0])
    np.testing.assert_allclose(faint.to_rgba(values), bright.to_rgba(values))
    np.testing.assert_allclose(faint.to_rgba(values), GREY(expected(values)), atol=1.01 / 255)
    # The faint epoch is dark, the bright one light: 0 nJy is not drawn as 20,000 nJy.
    mean_level = [float(np.mean(im.norm(im.get_array().compressed()))) for im in (faint, bright)]
    assert mean_level[0] < 0.1
    assert mean_level[1] > 0.9
    # One colorbar below the column, in nJy.
    labels = [ax.get_xlabel() for ax in fig.axes if not ax.images]
    assert labels == ["Difference [nJy]"]


def test_per_stamp_scale_is_an_option() -> None:
    cube = bright_and_faint()
    fig = cube.fink.plot_stamps([0, 1], kinds=["Difference"], stretch="linear", scale="stamp")
    faint, bright = (ax.images[0] for ax in stamp_axes(fig))
    for image, epoch in ((faint, 0), (bright, 1)):
        stamp = cube[CUTOUT_VAR].isel(time=epoch).sel(kind="Difference", plane="data").values
        finite = stamp[np.isfinite(stamp)].astype(np.float64)
        np.testing.assert_allclose(image.norm(finite), oracle(finite, "linear")(finite), atol=1e-9)
    assert not np.allclose(faint.to_rgba([0.0]), bright.to_rgba([0.0]))
    assert [ax for ax in fig.axes if not ax.images] == []  # no colorbar: no common scale


def test_one_colorbar_per_kind_in_a_grid() -> None:
    fig = synthetic_cube((30, 41, 64)).fink.plot_stamps()
    labels = [ax.get_xlabel() for ax in fig.axes if not ax.images]
    assert labels == [f"{kind} [nJy]" for kind in KINDS]


def arrows(ax: object) -> dict[str, np.ndarray]:
    """The compass arrows drawn on ``ax``, as unit vectors, by the letter at their tip."""
    found = {}
    texts = {t.get_gid(): t for t in ax.texts}  # type: ignore[attr-defined]
    tips = [a for a in ax.texts if a.get_text() == ""]  # type: ignore[attr-defined]
    for name in ("N", "E"):
        label = texts.get(f"compass-{name}")
        if label is None:
            continue
        x, y = label.get_position()
        arrow = min(tips, key=lambda a: np.hypot(a.xy[0] - x, a.xy[1] - y))
        vector = np.subtract(arrow.xy, arrow.xyann)
        found[name] = vector / np.hypot(*vector)
    return found


def test_raw_stamps_show_north_and_east_from_their_wcs() -> None:
    cube = synthetic_cube((30, 41), planes="all")
    fig = cube.fink.plot_stamps()
    for i, ax in enumerate(stamp_axes(fig)):
        row, col = divmod(i, len(KINDS))
        wcs = epoch_wcs(cube, row, KINDS[col])
        # The oracle: the pixel directions of +Dec and +RA from the inverse of the CD
        # matrix, the local linear WCS that Rubin's cutout headers carry.
        inverse = np.linalg.inv(wcs.pixel_scale_matrix)
        north, east = inverse @ [0.0, 1.0], inverse @ [1.0, 0.0]
        found = arrows(ax)
        np.testing.assert_allclose(found["N"], north / np.hypot(*north), atol=1e-3)
        np.testing.assert_allclose(found["E"], east / np.hypot(*east), atol=1e-3)
    plain = synthetic_cube((30, 41)).fink.plot_stamps()
    assert all(not arrows(ax) for ax in stamp_axes(plain))


def test_aligned_stamps_are_north_up_east_left(tmp_path: Path) -> None:
    cube = synthetic_cube((30, 41, 64), planes="all")
    aligned = cube.fink.align().fink.aligned()
    fig = aligned.fink.plot_stamps()
    for ax in stamp_axes(fig):
        found = arrows(ax)
        np.testing.assert_allclose(found["N"], [0.0, 1.0], atol=1e-3)
        np.testing.assert_allclose(found["E"], [-1.0, 0.0], atol=1e-3)
    fig.savefig(tmp_path / "aligned.png", dpi=40)


def test_time_range_selects_by_mjd() -> None:
    cube = synthetic_cube((30, 41, 64, 35, 52))
    times = cube["time"].values
    fig = cube.fink.plot_stamps(TimeRange(times[1], times[3]))
    assert len(stamp_axes(fig)) == 3 * len(KINDS)
    assert f"MJD {times[1]:.3f}" in stamp_axes(fig)[0].get_title()
    fig = cube.fink.plot_stamps(TimeRange(start=times[3]))
    assert len(stamp_axes(fig)) == 2 * len(KINDS)
    with pytest.raises(Exception, match="cube_epochs"):
        select_epochs(5, TimeRange(0, 1))


def gif_frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB"), dtype=np.float64))
    return frames


def difference_panel(frame: np.ndarray) -> np.ndarray:
    """The middle of the third panel (Difference) of a frame: inside the stamp."""
    height, width = frame.shape[:2]
    x0 = int(width * (2 / 3 + 1 / 9))
    y0 = int(height * 0.35)
    return frame[y0 : y0 + 10, x0 : x0 + 10]


def test_gif_keeps_one_scale_over_its_frames(tmp_path: Path) -> None:
    cube = bright_and_faint()
    shared = gif_frames(cube.fink.animate(tmp_path / "shared.gif", stretch="linear", dpi=50))
    faint, bright = (difference_panel(f).mean() for f in shared)
    assert faint < 40
    assert bright > 215
    own = gif_frames(
        cube.fink.animate(tmp_path / "own.gif", stretch="linear", scale="stamp", dpi=50)
    )
    faint, bright = (difference_panel(f).mean() for f in own)
    assert abs(faint - bright) < 40  # each stamp on its own: both mid-grey


def test_gif_padding_is_no_data(tmp_path: Path) -> None:
    cube = synthetic_cube((34, 102))
    (frame, _) = gif_frames(cube.fink.animate(tmp_path / "pad.gif", kinds=["Science"], dpi=50))
    # Frame 0: a 34 px stamp centred on 102 px; near the panel's lower left is padding.
    height, width = frame.shape[:2]
    corner = frame[int(height * 0.55), int(width * 0.12)]
    np.testing.assert_allclose(corner, np.array(to_rgba(NO_DATA_COLOR)[:3]) * 255, atol=6)


def test_gif_progress_bar_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cube = synthetic_cube((30, 41, 35))
    cube.fink.animate(tmp_path / "quiet.gif", dpi=30)
    assert capsys.readouterr().err == ""
    cube.fink.animate(tmp_path / "loud.gif", dpi=30, progress=True)
    err = capsys.readouterr().err
    assert "frames:" in err
    assert "/3 " in err


def test_a_failed_gif_leaves_no_file(tmp_path: Path) -> None:
    # 70 epochs, read 64 at a time: the second block fails, after the first frames are written.
    cube = synthetic_cube([30] * 70).chunk({"time": 64})

    def fail_second_block(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        if block_info is not None and block_info[0]["chunk-location"][0] == 1:
            raise OSError("the disk went away")
        return block

    data = cube[CUTOUT_VAR].data.map_blocks(fail_second_block, dtype=np.float32)
    cube[CUTOUT_VAR] = cube[CUTOUT_VAR].copy(data=data)
    out = tmp_path / "broken.gif"
    with pytest.raises(OSError, match="went away"):
        cube.fink.animate(out, scale="stamp", dpi=20)
    assert not out.exists()


def test_a_wcs_without_sky_axes_draws_no_compass() -> None:
    cube = synthetic_cube((30, 41))
    from astropy.wcs import WCS

    cube[CUTOUT_VAR].attrs["aligned_wcs"] = WCS(naxis=2).to_header().tostring()  # pixels only
    assert all(not arrows(ax) for ax in stamp_axes(cube.fink.plot_stamps()))
