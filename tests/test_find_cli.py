"""``finkcube find``, ``build --tag`` and ``update --reselect`` on the command line.

In-process through ``finkcube.cli.main`` and, for a few cases, as the installed console
script. Oracles: the emulator's catalog, the csv and json modules, plain xarray.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import xarray as xr

from finkcube.cli import main
from finkcube.emulator import Emulator
from finkcube.store import list_objects

TAG = "sn_near_galaxy_candidate"
_BESIDE = Path(sys.executable).parent / "finkcube"
FINKCUBE = str(_BESIDE) if _BESIDE.exists() else shutil.which("finkcube")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """An emulator of this module's own: its tests add objects and tags."""
    with Emulator() as emu:
        yield emu


def _tagged(emu: Emulator, count: int, sources: int = 3) -> list[int]:
    """``count`` new objects in TAG, newest first."""
    ids = [emu.catalog.add_object(ra=float(100 + i), dec=-20.0, sources=sources, tags=(TAG,))
           for i in range(count)]  # fmt: skip
    return ids[::-1]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("finkcube: error: "), err
    return lines[0]


def test_find_prints_each_format(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _tagged(emu, 3)
    base = ("find", "--tag", TAG, "--n", "3", "--url", emu.url)

    code, out, _ = _run(capsys, *base, "--format", "ids")
    assert code == 0
    assert out.splitlines() == [str(oid) for oid in ids]

    code, out, _ = _run(capsys, *base, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["diaObjectId"]) for r in rows] == ids
    assert [int(r["nDiaSources"]) for r in rows] == [3, 3, 3]

    code, out, _ = _run(capsys, *base, "--format", "json")
    assert code == 0
    records = json.loads(out)
    assert [r["diaObjectId"] for r in records] == ids  # exact ints
    assert all(r["nDiaSources"] == 3 for r in records)

    code, out, _ = _run(capsys, *base)  # a table
    assert code == 0
    assert out.splitlines()[0].split()[0] == "diaObjectId"
    assert all(str(oid) in out for oid in ids)


def test_find_by_cone_and_name(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    oid = emu.catalog.add_object(ra=300.0, dec=45.0, sources=2, name="SN 2098cli")
    code, out, _ = _run(capsys, "find", "--cone", "300", "45", "3", "--format", "ids",
                        "--url", emu.url)  # fmt: skip
    assert (code, out.split()) == (0, [str(oid)])
    code, out, _ = _run(capsys, "find", "--name", "SN 2098cli", "--format", "ids",
                        "--url", emu.url)  # fmt: skip
    assert (code, out.split()) == (0, [str(oid)])


def test_min_sources_filters_on_the_catalogs_counts(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    few, many = (emu.catalog.add_object(ra=120.0 + i, dec=3.0, sources=s, tags=(TAG,))
                 for i, s in enumerate((4, 22)))  # fmt: skip
    oracle = [oid for oid in (many, few) if len(emu.catalog.source_ids(oid)) >= 20]
    code, out, _ = _run(capsys, "find", "--tag", TAG, "--n", "2", "--min-sources", "20",
                        "--format", "ids", "--url", emu.url)  # fmt: skip
    assert code == 0
    assert [int(v) for v in out.split()] == oracle == [many]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("find",), "no selection given"),
        (("find", "--cone", "ten", "1", "2"), "expected a finite number"),
        (("find", "--cone", "10", "1"), "--cone"),
        (("find", "--cone", "10", "1", "20000"), "at most 18000 arcsec"),
        (("find", "--min-sources", "3"), "needs a search"),
        (("find", "--tag", "x", "--name", "y"), "give one search"),
        (("find", "--tag", TAG, "--since", "soon"), "invalid date"),
        (("find", "--tag", "early_sn_candidate"), "Livestream"),
        (("build", "--out", "x.zarr"), "no diaObjectId given"),
    ],
)
def test_a_bad_selection_is_one_line_and_exit_2(
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: tuple[str, ...],
    message: str,
) -> None:
    argv = tuple(str(tmp_path / a) if a.endswith(".zarr") else a for a in argv)
    code, _, err = _run(capsys, *argv, "--url", emu.url)
    assert code == 2
    assert message in _one_error(err)
    assert not (tmp_path / "x.zarr").exists()


def test_build_tag_equals_find_then_build_objects_file(
    emu: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ids = _tagged(emu, 3)
    a, b, listed = tmp_path / "a.zarr", tmp_path / "b.zarr", tmp_path / "ids.txt"
    code, out, _ = _run(capsys, "build", "--tag", TAG, "--n", "3", "--out", str(a),
                        "--url", emu.url)  # fmt: skip
    assert code == 0
    assert "3 built" in out
    code, out, _ = _run(capsys, "find", "--tag", TAG, "--n", "3", "--format", "ids",
                        "--url", emu.url)  # fmt: skip
    listed.write_text(out)
    code, _, _ = _run(capsys, "build", "--objects-file", str(listed), "--out", str(b),
                      "--url", emu.url)  # fmt: skip
    assert code == 0
    assert list_objects(a) == list_objects(b) == sorted(ids)
    for oid in ids:
        xr.testing.assert_equal(
            xr.open_zarr(a, group=str(oid), consolidated=False).load(),
            xr.open_zarr(b, group=str(oid), consolidated=False).load(),
        )


def test_update_reselect_on_the_command_line(
    emu: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ids = _tagged(emu, 2)
    store = tmp_path / "sn.zarr"
    assert _run(capsys, "build", "--tag", TAG, "--n", "2", "--out", str(store),
                "--url", emu.url, "--forced-photometry")[0] == 0  # fmt: skip
    new = emu.catalog.add_object(ra=140.0, dec=4.0, sources=3, tags=(TAG,))
    code, out, _ = _run(capsys, "update", str(store), "--reselect")
    assert code == 0
    assert "1 built" in out
    assert list_objects(store) == sorted([*ids, new])
    cube = xr.open_zarr(store, group=str(new), consolidated=False)
    assert cube.sizes["fp_time"] == len(emu.catalog.forced_photometry(new))

    plain = tmp_path / "plain.zarr"
    assert _run(capsys, "build", str(ids[0]), "--out", str(plain), "--url", emu.url)[0] == 0
    code, _, err = _run(capsys, "update", str(plain), "--reselect")
    assert code == 2
    assert "records no selection" in _one_error(err)


@pytest.mark.skipif(FINKCUBE is None, reason="the finkcube console script is missing")
def test_the_installed_script_finds_and_refuses(emu: Emulator, tmp_path: Path) -> None:
    ids = _tagged(emu, 2)
    assert FINKCUBE is not None

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([FINKCUBE, *args], capture_output=True, text=True, timeout=180,
                              check=False, env={"PATH": "/usr/bin:/bin"})  # fmt: skip

    done = run("find", "--tag", TAG, "--n", "2", "--format", "ids", "--url", emu.url)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.split() == [str(oid) for oid in ids]
    done = run("find", "--cone", "1", "2", "99999", "--url", emu.url)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("finkcube: error: invalid cone radius")
