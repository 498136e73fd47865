"""The command line end to end: build, info, demo, progress bars, no warnings."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pytest
import xarray as xr

from finkcube.cli import main
from finkcube.emulator.alertfiles import write_alerts
from finkcube.store import list_objects, open_cube

# -W error: a warning anywhere in a normal run makes the command fail.
PYTHON = [sys.executable, "-W", "error", "-m", "finkcube"]


def test_build_then_info(emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = emulator.catalog
    ids = [catalog.named("small"), catalog.named("single")]
    store = tmp_path / "cubes.zarr"
    argv = ["build", *map(str, ids), "--out", str(store), "--url", emulator.url]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 built" in out
    assert sorted(list_objects(store)) == sorted(ids)

    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "2 objects" in out
    for oid in ids:
        assert str(oid) in out

    assert main(["info", str(store), str(ids[0])]) == 0
    out = capsys.readouterr().out
    epochs = open_cube(store, ids[0]).sizes["time"]
    assert f"diaObjectId {ids[0]}: {epochs} epochs" in out


def test_info_of_missing_object_and_store(
    emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", str(tmp_path / "nothing.zarr")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("finkcube: error: ")


def test_build_and_demo_print_no_warning(emulator: Any, tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    oid = str(emulator.catalog.named("small"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINKCUBE_")}
    done = subprocess.run(
        [*PYTHON, "build", oid, "--out", str(store), "--url", emulator.url],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Not on a terminal: no progress bar, no log line, no warning.
    assert done.stderr == ""
    assert "1 built" in done.stdout

    demo = subprocess.run(
        [*PYTHON, "demo", "--out", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=300, check=False, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    assert demo.stderr == ""
    assert (tmp_path / "demo" / "preview.png").stat().st_size > 10_000
    [oid_line] = [line for line in demo.stdout.splitlines() if line.startswith("cube of")]
    demo_oid = int(oid_line.split()[3].rstrip(":"))
    plain = xr.open_zarr(tmp_path / "demo" / "cubes.zarr", group=str(demo_oid), consolidated=False)
    assert plain.cutout.dims == ("time", "kind", "y", "x", "plane")
    assert np.isfinite(plain.cutout.isel(time=-1).values).any()


def _stderr_on_a_terminal(argv: list[str]) -> str:
    """What the command prints on its standard error when that is a terminal."""
    leader, follower = pty.openpty()
    # A new pseudo-terminal is 0 columns wide; give it a real size, as a terminal has.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = subprocess.Popen(
            [*PYTHON, *argv], stdout=subprocess.DEVNULL, stderr=follower, close_fds=True
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # the terminal closes when the process exits
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=120) == 0
    finally:
        os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_on_a_terminal(emulator: Any, tmp_path: Path) -> None:
    oid = str(emulator.catalog.named("small"))
    shown = _stderr_on_a_terminal(
        ["build", oid, "--out", str(tmp_path / "s.zarr"), "--url", emulator.url]
    )
    assert "cutouts" in shown
    assert "src" in shown


def test_ingest_progress_bar_counts_alerts(tmp_path: Path) -> None:
    files = write_alerts(tmp_path / "in", objects=3, sources=(2, 3), null_every=0, seed=4)
    with files[0].open("rb") as stream:  # the bar counts the alerts of objects
        total = len([p for p in fastavro.reader(stream) if p["diaSource"]["diaObjectId"]])
    shown = _stderr_on_a_terminal(["ingest", str(files[0]), "--out", str(tmp_path / "s.zarr")])
    assert f"/{total} " in shown  # done/total, in alerts
    assert "alert/s" in shown or "s/alert" in shown


def test_a_warning_during_a_progress_bar_is_a_line_of_its_own(
    emulator: Any, tmp_path: Path
) -> None:
    oid = str(emulator.catalog.named("missing_cutout"))  # a source left out, warned about
    shown = _stderr_on_a_terminal(
        ["build", oid, "--out", str(tmp_path / "s.zarr"), "--url", emulator.url]
    )
    assert "src" in shown  # the bar was drawn
    starts = [i for i in range(len(shown)) if shown.startswith("finkcube: WARNING", i)]
    assert starts
    # Above the bar (which tqdm clears and redraws), not appended to the bar's line.
    assert all(i == 0 or shown[i - 1] in "\r\n" for i in starts), shown
