"""Icechunk stores: each build or update is one commit, readers keep their snapshot, two
writers never silently overwrite each other; on local disk and on a moto S3 server.

Oracles: icechunk's own repository API (ancestry, read-only sessions) and plain xarray
reading a session's zarr store.
"""

from __future__ import annotations

import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr

import finkcube
from finkcube.emulator import Emulator
from finkcube.errors import InputError, StoreError
from finkcube.store import locate, open_cube

icechunk = pytest.importorskip("icechunk")

#: The installed console script, beside this interpreter (as the CLI's own tests find it).
_BESIDE = Path(sys.executable).parent / "finkcube"
FINKCUBE = str(_BESIDE) if _BESIDE.exists() else shutil.which("finkcube")

# icechunk logs (Rust tracing, not a Python warning) that a local repository is not safe
# for commits from several machines at once; tests of local repositories expect it.


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(latency_ms=0.0, faults=0.0, seed=3) as server:
        yield server


def _local(path: Path) -> Any:
    return icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))


def _messages(repo: Any) -> list[str]:
    return [commit.message for commit in repo.ancestry(branch="main")]


def _plain(repo: Any, oid: int, **snapshot: Any) -> xr.Dataset:
    session = repo.readonly_session(**(snapshot or {"branch": "main"}))
    return xr.open_zarr(session.store, group=str(oid), consolidated=False).load()


def test_a_build_is_one_commit_that_plain_xarray_reads(emu: Emulator, tmp_path: Path) -> None:
    oids = [emu.catalog.named("small"), emu.catalog.named("single")]
    url = f"icechunk://{tmp_path / 'repo'}"
    finkcube.build_store(oids, url, url=emu.url)
    repo = _local(tmp_path / "repo")
    messages = _messages(repo)
    assert len(messages) == 2  # the repository's creation, then the one build
    for oid in oids:
        plain = _plain(repo, oid)
        cube = open_cube(url, oid).load()
        xr.testing.assert_identical(cube.drop_attrs(), plain.drop_attrs())
        assert plain.cutout.dims == ("time", "kind", "y", "x", "plane")
    assert sorted(int(o) for o in finkcube.open_store(url)) == sorted(oids)


def test_an_update_is_one_commit_and_a_reader_keeps_its_snapshot(
    emu: Emulator, tmp_path: Path
) -> None:
    oid = emu.catalog.named("small")
    url = f"icechunk://{tmp_path / 'repo'}"
    finkcube.build_store([oid], url, url=emu.url)
    before = open_cube(url, oid)  # lazy: reads the snapshot it was opened on
    epochs = before.sizes["time"]
    repo = _local(tmp_path / "repo")
    first = repo.lookup_branch("main")
    emu.catalog.add_sources(oid, 2)
    finkcube.update_store(url, url=emu.url)
    assert len(_messages(repo)) == 3
    after = open_cube(url, oid)
    assert after.sizes["time"] == epochs + 2
    # the lazy cube opened before the update still reads the old snapshot, whole
    old = _plain(repo, oid, snapshot_id=first)
    np.testing.assert_array_equal(before.cutout.values, old.cutout.values)
    np.testing.assert_array_equal(before.diaSourceId.values, old.diaSourceId.values)


def test_two_writers_of_one_cube_never_silently_overwrite_each_other(
    emu: Emulator, tmp_path: Path
) -> None:
    oid = emu.catalog.named("small")
    url = f"icechunk://{tmp_path / 'repo'}"
    finkcube.build_store([oid], url, url=emu.url)
    first, second = locate(url), locate(url)
    for writer in (first, second):  # two writers at work at once, as two processes would be
        writer.zarr(read_only=False)
    finkcube.build_store([oid], first, url=emu.url, overwrite=True, planes="all")
    with pytest.raises(StoreError, match="another writer changed the same cubes"):
        finkcube.build_store([oid], second, url=emu.url, overwrite=True)
    # the branch holds the first writer's cube, whole
    assert _plain(_local(tmp_path / "repo"), oid).sizes["plane"] == 2


def test_a_run_killed_midway_leaves_the_branch_as_it_was(emu: Emulator, tmp_path: Path) -> None:
    assert FINKCUBE is not None, "the finkcube console script is not installed"
    small, large = emu.catalog.named("small"), emu.catalog.named("large")
    url = f"icechunk://{tmp_path / 'repo'}"
    finkcube.build_store([emu.catalog.named("single")], url, url=emu.url)
    tip = _local(tmp_path / "repo").lookup_branch("main")
    command = [FINKCUBE, "build", str(small), str(large), "--out", url, "--url", emu.url,
               "--workers", "2"]  # fmt: skip
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = tmp_path / "repo" / "chunks"
    deadline = time.monotonic() + 60
    # the small cube's chunks reach the repository before the large object is fetched
    while not (chunks.is_dir() and any(chunks.iterdir())) and time.monotonic() < deadline:
        assert run.poll() is None, "the build ended before it could be killed"
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    run.wait()
    repo = _local(tmp_path / "repo")
    assert repo.lookup_branch("main") == tip
    snapshot = zarr.open_group(repo.readonly_session(branch="main").store, mode="r")
    cubes = [name for name in snapshot.group_keys() if name.isdigit()]
    assert cubes == [str(emu.catalog.named("single"))]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert len(_messages(_local(tmp_path / "repo"))) == 3
    assert _plain(_local(tmp_path / "repo"), large).sizes["time"] == 1200


def test_an_icechunk_store_is_written_from_one_process(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="one process"):
        pickle.dumps(locate(f"icechunk://{tmp_path / 'repo'}"))


def test_the_command_line_builds_into_an_icechunk_repository(emu: Emulator, tmp_path: Path) -> None:
    assert FINKCUBE is not None, "the finkcube console script is not installed"
    oid = emu.catalog.named("single")
    url = f"icechunk://{tmp_path / 'repo'}"
    done = subprocess.run(
        [FINKCUBE, "build", str(oid), "--out", url, "--url", emu.url],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _plain(_local(tmp_path / "repo"), oid).sizes["time"] == 1


def test_a_round_trip_on_s3(emu: Emulator, s3_options: dict[str, Any]) -> None:
    endpoint = s3_options["client_kwargs"]["endpoint_url"]
    options = {
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "allow_http": True,
        "force_path_style": True,
        "access_key_id": s3_options["key"],
        "secret_access_key": s3_options["secret"],
    }
    oid = emu.catalog.named("small")
    url = "icechunk+s3://cubes/icechunk-round-trip"
    finkcube.build_store([oid], url, url=emu.url, storage_options=options)
    storage = icechunk.s3_storage(bucket="cubes", prefix="icechunk-round-trip", **options)
    repo = icechunk.Repository.open(storage)
    assert len(_messages(repo)) == 2
    cube = open_cube(url, oid, storage_options=options).load()
    xr.testing.assert_identical(cube.drop_attrs(), _plain(repo, oid).drop_attrs())


def test_a_cluster_is_refused_for_an_icechunk_store(emu: Emulator, tmp_path: Path) -> None:
    url = f"icechunk://{tmp_path / 'repo'}"
    with pytest.raises(InputError, match="run without --scheduler"):
        finkcube.build_store([emu.catalog.named("single")], url, url=emu.url,
                             scheduler="tcp://127.0.0.1:1")  # fmt: skip
    assert not (tmp_path / "repo").exists()
