"""``finkcube plot STORE ID -o FILE [--gif]`` end to end, on a store built from the emulator.

Runs the command through :func:`finkcube.cli.main` (the console script's body) and reads
the files back with Pillow.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from finkcube.cli import main
from finkcube.pipeline.build import build_store
from finkcube.store import open_cube

if TYPE_CHECKING:
    from finkcube.emulator import Emulator

#: An emulated object with a handful of epochs: a small grid and a short animation.
OBJECT = "small"


@pytest.fixture(scope="module")
def built(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A store holding the cube of one emulated object, and that object's id."""
    store = tmp_path_factory.mktemp("cli-plot") / "cubes.zarr"
    object_id = emulator.catalog.named(OBJECT)
    report = build_store([object_id], store, url=emulator.url)
    assert report.count("built") == 1
    return store, object_id


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("finkcube: error: ")
    for needle in needles:
        assert needle in err


def test_plot_writes_a_png_that_is_not_blank(
    built: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, object_id = built
    out_file = tmp_path / "stamps.png"
    code, out, err = run(["plot", str(store), str(object_id), "-o", str(out_file)], capsys)
    assert (code, err) == (0, "")
    assert out.strip() == f"wrote {out_file}"
    with Image.open(out_file) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.std() > 0
    # More than a flat background with a frame: a good share of the pixels differ from it.
    values, counts = np.unique(pixels, return_counts=True)
    assert (pixels != values[counts.argmax()]).mean() > 0.1


def test_plot_gif_has_one_frame_per_epoch(
    built: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, object_id = built
    out_file = tmp_path / "stamps.gif"
    code, out, err = run(["plot", str(store), str(object_id), "-o", str(out_file), "--gif"], capsys)
    assert (code, err) == (0, "")
    assert out.strip() == f"wrote {out_file}"
    epochs = open_cube(store, object_id).sizes["time"]
    assert epochs > 1
    with Image.open(out_file) as image:
        assert image.format == "GIF"
        assert image.n_frames == epochs
        frames = []
        for frame in range(image.n_frames):
            image.seek(frame)
            frames.append(np.asarray(image.convert("L"), dtype=np.float64))
    assert all(frame.std() > 0 for frame in frames)
    assert any(not np.array_equal(frames[0], frame) for frame in frames[1:])


def test_plot_gif_suffix_is_added(
    built: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, object_id = built
    asked = tmp_path / "anim.png"
    code, out, _ = run(["plot", str(store), str(object_id), "-o", str(asked), "--gif"], capsys)
    assert code == 0
    assert out.strip() == f"wrote {asked.with_suffix('.gif')}"
    assert asked.with_suffix(".gif").is_file()
    assert not asked.exists()


def test_plot_unknown_object_is_a_one_line_usage_error(
    built: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, object_id = built
    absent = object_id + 1
    out_file = tmp_path / "x.png"
    code, out, err = run(["plot", str(store), str(absent), "-o", str(out_file)], capsys)
    assert_one_line_error(code, out, err, str(absent))
    assert not out_file.exists()


def test_plot_missing_store_is_a_one_line_usage_error(
    built: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, object_id = built
    missing = tmp_path / "no-such.zarr"
    out_file = tmp_path / "x.png"
    code, out, err = run(["plot", str(missing), str(object_id), "-o", str(out_file)], capsys)
    assert_one_line_error(code, out, err, str(missing))
    assert not missing.exists()
    assert not out_file.exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--stretch", "bogus"], "bogus"),
        (["--cmap", "not-a-colormap"], "not-a-colormap"),
    ],
)
def test_plot_bad_option_is_a_one_line_usage_error(
    built: tuple[Path, int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    needle: str,
) -> None:
    store, object_id = built
    out_file = tmp_path / "x.png"
    code, out, err = run(["plot", str(store), str(object_id), "-o", str(out_file), *extra], capsys)
    assert_one_line_error(code, out, err, needle)
    assert not out_file.exists()


def test_plot_invalid_id_and_missing_output_directory(
    built: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, object_id = built
    code, out, err = run(["plot", str(store), "abc", "-o", str(tmp_path / "x.png")], capsys)
    assert_one_line_error(code, out, err, "'abc'")
    nowhere = tmp_path / "no-dir" / "x.png"
    code, out, err = run(["plot", str(store), str(object_id), "-o", str(nowhere)], capsys)
    assert_one_line_error(code, out, err, str(nowhere.parent))
    code, out, err = run(["plot", str(store), str(object_id), "-o", "s3://b/x.png"], capsys)
    assert_one_line_error(code, out, err, "cannot write to s3://b/x.png")


def gif_info(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.n_frames, image.info["duration"]


def test_plot_epochs_pick_the_frames_and_fps_their_rate(
    built: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, object_id = built
    times = open_cube(store, object_id)["time"].values
    assert len(times) >= 4
    cases = {
        "2": 2,  # a count, evenly spread
        "0,-1,1": 3,  # positions
        f"{times[1]}:{times[3]}": 3,  # an MJD range, both ends included
        f"{times[2]}:": len(times) - 2,
    }
    for i, (selection, frames) in enumerate(cases.items()):
        out_file = tmp_path / f"sel{i}.gif"
        argv = ["plot", str(store), str(object_id), "-o", str(out_file), "--gif", "--fps", "10"]
        code, _, err = run([*argv, f"--epochs={selection}", "--dpi", "30"], capsys)
        assert (code, err) == (0, "")
        assert gif_info(out_file) == (frames, 100)


def test_plot_png_options(
    built: tuple[Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, object_id = built
    sizes = []
    for extra in (["--epochs", "2"], ["--epochs", "3", "--scale", "stamp", "--no-lightcurve"]):
        out_file = tmp_path / "grid.png"
        code, _, err = run(
            ["plot", str(store), str(object_id), "-o", str(out_file), "--dpi", "40", *extra],
            capsys,
        )
        assert (code, err) == (0, "")
        with Image.open(out_file) as image:
            sizes.append(image.size)
    # The grid alone, 3 rows without colorbars: narrower than grid + curve, and taller.
    assert sizes[1][0] < sizes[0][0]
    assert sizes[1][1] > sizes[0][1]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--epochs", "zero"], "'zero'"),
        (["--epochs", "0"], "'0'"),
        (["--epochs=60010:60000"], "60010:60000"),
        (["--epochs", "1,99"], "out of range"),
        (["--epochs", "1:2"], "no epoch between"),
        (["--fps", "0"], "'0'"),
        (["--scale", "global"], "global"),
        (["--align", "sky"], "planes='all'"),
    ],
)
def test_plot_bad_selection_is_a_one_line_usage_error(
    built: tuple[Path, int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    needle: str,
) -> None:
    store, object_id = built
    out_file = tmp_path / "x.gif"
    argv = ["plot", str(store), str(object_id), "-o", str(out_file), "--gif", *extra]
    code, out, err = run(argv, capsys)
    assert_one_line_error(code, out, err, needle)
    assert not out_file.exists()


def test_plot_align_sky_draws_north_up(
    emulator: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "all.zarr"
    object_id = emulator.catalog.named(OBJECT)
    report = build_store([object_id], store, url=emulator.url, planes="all")
    assert report.count("built") == 1
    for extra in ([], ["--gif", "--epochs", "2"]):
        out_file = tmp_path / ("aligned.gif" if extra else "aligned.png")
        argv = ["plot", str(store), str(object_id), "-o", str(out_file), "--align", "sky"]
        code, out, err = run([*argv, "--dpi", "40", *extra], capsys)
        assert (code, err) == (0, "")
        assert out.strip() == f"wrote {out_file}"
        with Image.open(out_file) as image:
            assert np.asarray(image.convert("L")).std() > 0
