"""``finkcube ingest`` and ``finkcube emulator --write-alerts``: in-process, and the installed
script killed with SIGKILL in the middle of an ingest, then run again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr

from finkcube.cli import main
from finkcube.emulator.alertfiles import write_alerts
from finkcube.emulator.alerts import sample_alerts_path
from finkcube.store import list_objects

_BESIDE = Path(sys.executable).parent / "finkcube"
FINKCUBE = str(_BESIDE) if _BESIDE.exists() else shutil.which("finkcube")


def test_ingest_prints_its_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(sample_alerts_path()), "--out", str(tmp_path / "s.zarr")]) == 0
    line = capsys.readouterr().out.strip()
    assert ": 1 file, 5 alerts: 3 ingested" in line
    assert "2 solar-system skipped" in line
    assert "3 built" in line


def test_ingest_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(tmp_path / "*.avro"), "--out", str(tmp_path / "s.zarr")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 truncated")
    assert main(["ingest", str(tmp_path / "bad.parquet"), "--out", str(tmp_path / "s.zarr")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("finkcube: error: alert file ")
    assert "bad.parquet" in err
    assert err.count("\n") == 1


def test_emulator_writes_alert_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["emulator", "--write-alerts", str(tmp_path), "--objects", "2", "--format", "parquet"]
    assert main(argv) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "alerts-0000.parquet")]


def _complete(store: Path) -> int:
    try:
        return len(list_objects(store))
    except Exception:  # the store is being created
        return 0


@pytest.mark.slow
@pytest.mark.skipif(FINKCUBE is None, reason="the finkcube console script is missing")
def test_kill_9_then_the_same_command_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    assert FINKCUBE is not None
    files = write_alerts(tmp_path / "alerts", objects=16, sources=(2, 3), per_file=10, seed=9)
    folder = str(files[0].parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINKCUBE_")}
    killed, whole = tmp_path / "killed.zarr", tmp_path / "whole.zarr"
    command = [FINKCUBE, "ingest", folder, "--out", str(killed), "--batch", "2"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while process.poll() is None and _complete(killed) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    partial = _complete(killed)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    done = subprocess.run(
        [FINKCUBE, "ingest", folder, "--out", str(whole)], env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0
    assert 1 <= partial < len(list_objects(whole))  # killed in the middle
    assert list_objects(killed) == list_objects(whole)
    for oid in list_objects(whole):
        a = xr.open_zarr(killed, group=str(oid), consolidated=False).load()
        b = xr.open_zarr(whole, group=str(oid), consolidated=False).load()
        for ds in (a, b):
            ds.attrs.pop("created")
            ds.attrs.get("finkcube_summary", {}).pop("created", None)  # the catalog row's
        xr.testing.assert_identical(a, b)
