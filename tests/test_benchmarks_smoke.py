"""The benchmark script runs end to end at tiny sizes, so that it cannot rot.

No timing is asserted here: the figures themselves are the benchmark's business
(``python benchmarks/run.py``); this only checks that every figure is produced and that the
counts behind them are the ones asked for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "run.py"
EXPECTED_ROWS = [
    "B1a",
    "B1b",
    "B1c",
    "B1d",
    "B1e",
    "B2a",
    "B2b",
    "B3a",
    "B3b",
    "B3c",
    "B3d",
    "B3e",
    "B4a",
    "B4b",
    "B5a",
    "B5b",
    "B5c",
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.slow
def test_quick_run_produces_every_figure(tmp_path: Path) -> None:
    saved = tmp_path / "figures.json"
    done = _run("--quick", "--objects", "6", "--json", str(saved))
    assert done.returncode == 0, done.stderr[-3000:]

    figures = json.loads(saved.read_text())
    rows = {row["id"]: row for row in figures["rows"]}
    assert list(rows) == EXPECTED_ROWS
    for row_id, row in rows.items():
        assert row["finkcube"] is not None, row_id
        assert row["finkcube"] > 0, row_id
        assert row_id in done.stdout
    assert "machine:" in done.stdout

    # The counts behind the figures are the sizes asked for.
    assert figures["figures"]["B1"]["sources"] == figures["params"]["object_sources"]
    assert figures["figures"]["B2"]["full"]["built"] == 6
    assert figures["figures"]["B2"]["tenth"]["built"] == 1
    assert figures["figures"]["B3"]["stamps"] == figures["figures"]["B4"]["stamps"]
    assert figures["figures"]["B3"]["bytes"] == figures["figures"]["B4"]["padded_bytes"]
    assert "chunks" in figures["figures"]["B4"]["layout"]
    b5 = figures["figures"]["B5"]
    assert len(b5["build_store_s"]) == len(b5["fresh_process_s"]) == 1
    assert b5["bound_s"] == pytest.approx(b5["sources"] * 0.025 / 16)


def test_only_rejects_an_unknown_benchmark() -> None:
    done = _run("--only", "B1,B9")
    assert done.returncode == 2
    assert "B9" in done.stderr


@pytest.mark.slow
def test_ingest_benchmark_produces_its_figures(tmp_path: Path) -> None:
    saved = tmp_path / "ingest.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ingest.py"), "--alerts", "12",
         "--repeats", "1", "--json", str(saved)],
        capture_output=True, text=True, timeout=240, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(saved.read_text())
    assert figures["alerts"] >= 12
    assert figures["alerts_10n"] >= 10 * 12
    assert figures["ingest_alerts_per_s"] > 0
    assert figures["floor_alerts_per_s"] > 0
    assert 0 < figures["bound_ratio"] < 1
    assert figures["plain_to_zarr_ms_per_cube"] > 0
    for row in ("I1", "I1n", "I1d", "I1x", "I2"):
        assert f"\n{row} | " in done.stdout


@pytest.mark.slow
def test_store_benchmark_produces_its_figures(tmp_path: Path) -> None:
    saved = tmp_path / "store.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "store.py"), "--objects", "30", "--small",
         "10", "--templates", "5", "--repeats", "1", "--json", str(saved)],
        capture_output=True, text=True, timeout=240, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(saved.read_text())
    rows = {row["id"]: row for row in figures["rows"]}
    assert list(rows) == ["S0", "S1a", "S1b", "S2a", "S2b", "S2c", "S3", "S4"]
    assert all(row["finkcube"] > 0 for row in rows.values())
    assert (figures["objects"], figures["small"]) == (30, 10)
    assert "S2a" in done.stdout


@pytest.mark.slow
def test_training_benchmark_produces_its_figures(tmp_path: Path) -> None:
    saved = tmp_path / "training.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "training.py"), "--quick", "--json",
         str(saved)],
        capture_output=True, text=True, timeout=240, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(saved.read_text())
    rows = {row["id"]: row for row in figures["rows"]}
    assert [k for k in rows if k != "T4"] == ["T1", "T2", "T3a", "T3b"]  # T4 with torch only
    assert all(row["value"] > 0 for row in rows.values())
    assert all(rows[k]["ratio"] > 0 for k in ("T1", "T2", "T3a", "T3b"))
    assert (figures["objects"], figures["samples"] > 0) == (6, True)
    assert "T3b" in done.stdout


@pytest.mark.slow
def test_update_benchmark_produces_its_figures(tmp_path: Path) -> None:
    saved = tmp_path / "update.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "update.py"), "--quick", "--json", str(saved)],
        capture_output=True, text=True, timeout=240, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(saved.read_text())
    rows = {row["id"]: row for row in figures["rows"]}
    assert list(rows) == ["U1", "U1b", "U1c"]
    assert figures["objects"] == 30
    assert rows["U1"]["finkcube"] > 0
    assert rows["U1"]["baseline"] > 0
    assert "U1b" in done.stdout
