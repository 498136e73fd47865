"""Training sets in an Icechunk repository: one commit per export, named for good by a tag.

Oracles: icechunk's own API (ancestry, tags, read-only sessions), plain xarray reading a
tagged session, and the same export written to a plain Zarr path.
"""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import xarray as xr

import finkcube
from finkcube.emulator import Emulator
from finkcube.errors import InputError
from finkcube.ml import CubeDataset, export

icechunk = pytest.importorskip("icechunk")

_BESIDE = Path(sys.executable).parent / "finkcube"
FINKCUBE = str(_BESIDE) if _BESIDE.exists() else shutil.which("finkcube")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain store of two emulator objects."""
    path = tmp_path_factory.mktemp("export") / "cubes.zarr"
    with Emulator(latency_ms=0.0, faults=0.0, seed=5) as emu:
        ids = [emu.catalog.named("small"), emu.catalog.named("single")]
        finkcube.build_store(ids, path, url=emu.url)
    return path


def _repo(path: Path) -> Any:
    return icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))


def _tagged(path: Path, tag: str) -> xr.Dataset:
    store = _repo(path).readonly_session(tag=tag).store
    return xr.open_zarr(store, consolidated=False).load()


def test_each_export_is_one_commit_and_a_tag_keeps_it(store: Path, tmp_path: Path) -> None:
    url = f"icechunk://{tmp_path / 'sets'}"
    first = export(store, url, size=30, tag="v1")
    second = export(store, url, size=24, epochs="last", overwrite=True, tag="v2")
    repo = _repo(tmp_path / "sets")
    assert {"v1", "v2"} <= set(repo.list_tags())
    assert repo.lookup_tag("v1") == first.snapshot
    assert repo.lookup_tag("v2") == second.snapshot == repo.lookup_branch("main")
    assert len(list(repo.ancestry(branch="main"))) == 3  # creation, then one per export
    # v1 still reads as the set it was, equal to the same export written as plain Zarr
    plain = tmp_path / "plain.zarr"
    export(store, plain, size=30)
    xr.testing.assert_identical(
        _tagged(tmp_path / "sets", "v1").drop_attrs(), xr.open_zarr(plain).load().drop_attrs()
    )
    assert _tagged(tmp_path / "sets", "v2").stamps.shape[1:] == (3, 24, 24)
    assert "tagged 'v1'" in first.summary()
    assert first.snapshot in first.summary()


def test_a_tagged_set_feeds_cube_dataset_and_pickles(store: Path, tmp_path: Path) -> None:
    url = f"icechunk://{tmp_path / 'sets'}"
    report = export(store, url, size=30, tag="train")
    tagged = _repo(tmp_path / "sets").readonly_session(tag="train").store
    for source in (tagged, url):  # the tag's snapshot, and the branch's head by URL
        items = CubeDataset(source)
        assert len(items) == report.samples
        again = pickle.loads(pickle.dumps(items))  # what a spawned DataLoader worker gets
        x, target = again[len(items) - 1]
        assert x.shape == (3, 30, 30)
        assert target == items.targets[-1]


def test_an_export_from_an_icechunk_store_records_its_snapshot(store: Path, tmp_path: Path) -> None:
    with Emulator(latency_ms=0.0, faults=0.0, seed=5) as emu:
        source = f"icechunk://{tmp_path / 'cubes'}"
        finkcube.build_store([emu.catalog.named("single")], source, url=emu.url)
    out = tmp_path / "set.zarr"
    export(source, out, size=30)
    head = _repo(tmp_path / "cubes").lookup_branch("main")
    assert xr.open_zarr(out).attrs["source_snapshot"] == head


@pytest.mark.parametrize(
    ("out", "tag", "message"),
    [
        ("plain.zarr", "v1", "--tag names an Icechunk commit"),
        ("icechunk://{tmp}/sets", "a/b", "bad tag 'a/b'"),
        ("icechunk://{tmp}/sets", "v1", "already has a tag 'v1'"),
    ],
)
def test_bad_tags_are_refused_before_anything_is_written(
    store: Path, tmp_path: Path, out: str, tag: str, message: str
) -> None:
    sets = f"icechunk://{tmp_path / 'sets'}"
    export(store, sets, size=30, tag="v1")
    tip = _repo(tmp_path / "sets").lookup_branch("main")
    target = out.format(tmp=tmp_path) if "icechunk" in out else str(tmp_path / out)
    with pytest.raises(InputError, match=message):
        export(store, target, size=30, overwrite=True, tag=tag)
    assert _repo(tmp_path / "sets").lookup_branch("main") == tip
    assert not (tmp_path / "plain.zarr").exists()


def test_an_export_cut_short_commits_nothing(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finkcube.ml import training

    url = f"icechunk://{tmp_path / 'sets'}"
    export(store, url, size=30, tag="v1")
    tip = _repo(tmp_path / "sets").lookup_branch("main")
    monkeypatch.setattr(training, "CHUNK_BYTES", 4 * 3 * 30 * 30)  # a write per sample
    calls = []

    def failing(x: Any) -> Any:  # the second object's normalisation fails
        calls.append(len(x))
        if len(calls) == 2:
            raise RuntimeError("cut short")
        return x

    with pytest.raises(RuntimeError, match="cut short"):
        export(store, url, size=30, overwrite=True, normalise=failing, tag="v2")
    repo = _repo(tmp_path / "sets")
    assert repo.lookup_branch("main") == tip
    assert "v2" not in set(repo.list_tags())
    assert len(CubeDataset(url)) == len(CubeDataset(repo.readonly_session(tag="v1").store))


def test_the_command_line_tags_an_export(store: Path, tmp_path: Path) -> None:
    assert FINKCUBE is not None, "the finkcube console script is not installed"
    url = f"icechunk://{tmp_path / 'sets'}"
    done = subprocess.run(
        [FINKCUBE, "export", str(store), url, "--size", "30", "--tag", "v1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "tagged 'v1'" in done.stdout
    assert _tagged(tmp_path / "sets", "v1").stamps.shape[1:] == (3, 30, 30)
    refused = subprocess.run(
        [FINKCUBE, "export", str(store), str(tmp_path / "p.zarr"), "--size", "30", "--tag", "v1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "Traceback" not in refused.stderr
