"""The command line's handling of bad input: one line on stderr, exit 2, nothing sent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from finkcube.cli import main


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("finkcube: error: ")
    return lines[0]


@pytest.mark.parametrize(
    "bad_id", ["abc", "-5", "0", "12345678901234567890", "", "1.5", "9223372036854775808"]
)
def test_build_rejects_bad_ids(
    bad_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "s.zarr"
    # A URL where nothing listens: a request would fail with exit 1, not 2.
    code = main(["build", bad_id, "--out", str(store), "--url", "http://127.0.0.1:9"])
    assert code == 2
    assert "diaObjectId" in _one_line_error(capsys)
    assert not store.exists()


def test_malformed_objects_file_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# objects\n313761043604045880\n\n31376104360404588x\n")
    code = main(
        [
            "build",
            "--objects-file",
            str(ids),
            "--out",
            str(tmp_path / "s.zarr"),
            "--url",
            "http://127.0.0.1:9",
        ]
    )
    assert code == 2
    assert "line 4" in _one_line_error(capsys)
    assert not (tmp_path / "s.zarr").exists()


def test_missing_objects_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", "--objects-file", str(tmp_path / "nope.txt"), "--out", "x.zarr"])
    assert code == 2
    assert "cannot read objects file" in _one_line_error(capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["build", "1"],  # --out missing
        ["build", "1", "--out", "s.zarr", "--planes", "some"],
        ["build", "1", "--out", "s.zarr", "--workers", "0"],
        ["emulator", "--faults", "2"],
        ["emulator", "--port", "65536"],
        ["emulator", "--latency-ms", "nan"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    _one_line_error(capsys)


def test_bad_url_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", "1", "--out", str(tmp_path / "s.zarr"), "--url", "ftp://example.org"])
    assert code == 2
    assert "invalid service URL" in _one_line_error(capsys)


def test_console_script_exit_status_and_no_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "finkcube", "build", "nope", "--out", "x.zarr"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("finkcube: error: invalid diaObjectId 'nope'")
