"""A real ``finkcube build`` and ``finkcube update`` killed at every file operation in turn.

``tests/_crash.py`` runs the command in a forked child and ends it with ``os._exit(9)``
just before its k-th file operation under the store (a write is torn: half of it lands),
for every k on local disk and for a sample of k on moto's S3 server. After each kill the
store must read as its previous or its new state, through finkcube and through plain
xarray (which may refuse the cube, never return part of it); the same command run again
must exit 0 and leave exactly what an uninterrupted run leaves.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from finkcube.cli import main
from finkcube.emulator import Emulator
from finkcube.errors import FinkcubeError
from finkcube.store import open_cube
from finkcube.store.put import STREAM_BYTES

HARNESS = Path(__file__).with_name("_crash.py")
STAGING = ".finkcube-staging"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINKCUBE_")}
    env.update({"FINKCUBE_RETRIES": "0", "FINKCUBE_TIMEOUT": "10", **extra})
    return env


def _harness(spec: dict[str, Any], tmp: Path, env: dict[str, str]) -> list[int]:
    """Run a spec in the harness; the exit status of each job."""
    path = tmp / f"spec-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, str(HARNESS), str(path)],
        capture_output=True,
        text=True,
        env=_env(**env),
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    statuses: list[int] = json.loads(done.stdout.strip().splitlines()[-1])
    return statuses


class Killer:
    """Runs one command to the end (counting its file operations), then killed at each."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.tmp, self.env, self.warm = tmp, env or {}, []

    def count(self, argv: list[str], root: str) -> int:
        """Run ``argv`` on ``root`` to the end; its number of file operations under root."""
        out = self.tmp / f"count-{uuid.uuid4().hex}.json"
        job = {"argv": argv, "root": root, "k": 0, "count": str(out)}
        assert _harness({"jobs": [job]}, self.tmp, self.env) == [0]
        found = json.loads(out.read_text())
        self.warm = found["modules"]
        return int(found["ops"])

    def kill(self, runs: list[tuple[list[str], str, int]]) -> None:
        """Run each ``(argv, root, k)``, killed just before its k-th file operation."""
        jobs = [{"argv": argv, "root": root, "k": k, "count": ""} for argv, root, k in runs]
        statuses = _harness({"jobs": jobs, "warm": self.warm}, self.tmp, self.env)
        assert statuses == [9] * len(runs), statuses


def _state(store: str, oid: int, options: dict[str, Any] | None = None) -> Any:
    """What finkcube reads for the object: (time, diaSourceId, cutout), or None for no cube."""
    try:
        cube = open_cube(store, oid, storage_options=options).load()
    except FinkcubeError:
        return None
    return cube


def _same(a: xr.Dataset, b: xr.Dataset) -> bool:
    return (
        a.sizes == b.sizes
        and np.array_equal(a.time.values, b.time.values)
        and np.array_equal(a.diaSourceId.values, b.diaSourceId.values)
        and np.array_equal(a.cutout.values, b.cutout.values, equal_nan=True)
    )


def _plain(store: str, oid: int, options: dict[str, Any] | None = None) -> xr.Dataset | None:
    """What plain xarray reads for the object's group, or None when it refuses it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return xr.open_zarr(f"{store}/{oid}", storage_options=options).load()
        except Exception:
            return None


def _check_after_kill(
    store: str, oid: int, before: xr.Dataset | None, after: xr.Dataset, k: int, **kw: Any
) -> None:
    states = [s for s in (before, after) if s is not None]
    ours = _state(store, oid, kw.get("options"))
    if ours is None:
        assert before is None, f"k={k}: the previous version of the cube was lost"
    else:
        assert any(_same(ours, s) for s in states), f"k={k}: finkcube reads a mix"
    plain = _plain(store, oid, kw.get("options"))
    assert plain is None or any(_same(plain, s) for s in states), f"k={k}: plain xarray reads part"


def _check_final(store: str, oid: int, expected: xr.Dataset, k: int, **kw: Any) -> None:
    options = kw.get("options")
    got = _state(store, oid, options)
    assert got is not None, f"k={k}: the rerun did not complete it"
    assert _same(got, expected), f"k={k}: the rerun did not complete it"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = xr.open_zarr(f"{store}/{oid}", storage_options=options).load()
        tree = xr.open_datatree(store, engine="zarr", consolidated=False, storage_options=options)
    assert _same(plain, expected), f"k={k}"
    assert str(oid) in tree.children, f"k={k}"
    assert not [name for name in tree.children if name.isdigit() and name != str(oid)], f"k={k}"


def _copy_tree(src: Path, dst: Path) -> None:
    if src.exists():
        shutil.copytree(src, dst)


@pytest.mark.slow
def test_build_and_update_killed_at_every_file_operation_on_disk(
    emu: Emulator, tmp_path: Path
) -> None:
    oid, url = emu.catalog.named("small"), emu.url
    killer = Killer(tmp_path)
    build = ["build", str(oid), "--url", url, "--out"]
    n_build = killer.count([*build, str(tmp_path / "counted.zarr")], str(tmp_path / "counted.zarr"))
    first = _state(str(tmp_path / "counted.zarr"), oid)
    assert first is not None
    stores = [str(tmp_path / f"b{k}.zarr") for k in range(n_build + 1)]
    killer.kill([([*build, stores[k]], stores[k], k) for k in range(1, n_build + 1)])
    for k in range(1, n_build + 1):
        if os.path.exists(stores[k]):
            _check_after_kill(stores[k], oid, None, first, k)
        assert main([*build, stores[k]]) == 0, f"k={k}"
        _check_final(stores[k], oid, first, k)

    emu.catalog.add_sources(oid, 2)
    base = tmp_path / "counted.zarr"
    update = ["update", "--url", url]
    stores = [str(tmp_path / f"u{k}.zarr") for k in range(200)]
    shutil.copytree(base, stores[0])
    n_update = killer.count([*update, stores[0]], stores[0])
    second = _state(stores[0], oid)
    assert second is not None
    assert second.sizes["time"] == first.sizes["time"] + 2
    for k in range(1, n_update + 1):
        shutil.copytree(base, stores[k])
    killer.kill([([*update, stores[k]], stores[k], k) for k in range(1, n_update + 1)])
    assert n_build > 10  # the counting saw the store's writes
    assert n_update > 20
    for k in range(1, n_update + 1):
        _check_after_kill(stores[k], oid, first, second, k)
        assert main([*update, stores[k]]) == 0, f"k={k}"
        _check_final(stores[k], oid, second, k)
        assert not os.path.exists(os.path.join(stores[k], STAGING)), f"k={k}"


def _sample(n: int, count: int) -> list[int]:
    """``count`` operations spread over ``1..n``, the first and the last included."""
    return sorted({1 + round(i * (n - 1) / (count - 1)) for i in range(count)})


@pytest.mark.slow
def test_a_large_cube_streamed_is_killed_at_a_sample_of_operations_on_disk(
    emu: Emulator, tmp_path: Path
) -> None:
    # Over STREAM_BYTES: zarr writes the cube a chunk at a time into a staged copy in the
    # store, which is then linked into place; the update rewrites it the same way.
    (oid,) = emu.catalog.bulk_objects(1, sources=(60, 60))
    killer, url = Killer(tmp_path), emu.url
    build = ["build", str(oid), "--url", url, "--planes", "all", "--size", "102", "--out"]
    base = tmp_path / "counted.zarr"
    n_build = killer.count([*build, str(base)], str(base))
    first = _state(str(base), oid)
    assert first is not None
    assert first.nbytes > STREAM_BYTES
    points = _sample(n_build, 16)
    stores = {k: str(tmp_path / f"b{k}.zarr") for k in points}
    killer.kill([([*build, stores[k]], stores[k], k) for k in points])
    for k in points:
        if os.path.exists(stores[k]):
            _check_after_kill(stores[k], oid, None, first, k)
        assert main([*build, stores[k]]) == 0, f"k={k}"
        _check_final(stores[k], oid, first, k)

    emu.catalog.add_sources(oid, 2)
    update = ["update", "--url", url]
    counted = str(tmp_path / "u0.zarr")
    shutil.copytree(base, counted)
    n_update = killer.count([*update, counted], counted)
    second = _state(counted, oid)
    assert second is not None
    assert second.sizes["time"] == first.sizes["time"] + 2
    points = _sample(n_update, 16)
    stores = {k: str(tmp_path / f"u{k}.zarr") for k in points}
    for store in stores.values():
        shutil.copytree(base, store)
    killer.kill([([*update, stores[k]], stores[k], k) for k in points])
    for k in points:
        _check_after_kill(stores[k], oid, first, second, k)
        assert main([*update, stores[k]]) == 0, f"k={k}"
        _check_final(stores[k], oid, second, k)
        assert not os.path.exists(os.path.join(stores[k], STAGING)), f"k={k}"


@pytest.mark.slow
def test_build_and_update_killed_at_a_sample_of_operations_on_s3(
    emu: Emulator, tmp_path: Path, s3_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import fsspec

    # The command line takes S3 settings from fsspec's configuration, as a user's would.
    monkeypatch.setitem(fsspec.config.conf, "s3", s3_options)
    fs = fsspec.filesystem("s3", **s3_options)
    killer = Killer(tmp_path, {"FSSPEC_S3": json.dumps(s3_options)})
    oid, url, run = emu.catalog.named("single"), emu.url, uuid.uuid4().hex
    build = ["build", str(oid), "--url", url, "--out"]
    base = f"s3://cubes/{run}/base.zarr"
    n_build = killer.count([*build, base], base)
    first = _state(base, oid, s3_options)
    assert first is not None
    points = _sample(n_build, 3)
    stores = {k: f"s3://cubes/{run}/b{k}.zarr" for k in points}
    killer.kill([([*build, stores[k]], stores[k], k) for k in points])
    for k in points:
        _check_after_kill(stores[k], oid, None, first, k, options=s3_options)
        assert main([*build, stores[k]]) == 0, f"k={k}"
        _check_final(stores[k], oid, first, k, options=s3_options)

    emu.catalog.add_sources(oid, 1)
    update = ["update", "--url", url]
    counted = f"s3://cubes/{run}/u0.zarr"
    fs.copy(base, counted, recursive=True)
    n_update = killer.count([*update, counted], counted)
    second = _state(counted, oid, s3_options)
    assert second is not None
    assert second.sizes["time"] == first.sizes["time"] + 1
    points = _sample(n_update, 6)
    stores = {k: f"s3://cubes/{run}/u{k}.zarr" for k in points}
    for store in stores.values():
        fs.copy(base, store, recursive=True)
    killer.kill([([*update, stores[k]], stores[k], k) for k in points])
    for k in points:
        _check_after_kill(stores[k], oid, first, second, k, options=s3_options)
        assert main([*update, stores[k]]) == 0, f"k={k}"
        _check_final(stores[k], oid, second, k, options=s3_options)
        assert not fs.exists(f"{stores[k]}/{STAGING}"), f"k={k}"


def test_a_store_creation_killed_midway_is_resumed(emu: Emulator, tmp_path: Path) -> None:
    # A kill while the root zarr.json was being written leaves it written aside, torn.
    store = tmp_path / "cubes.zarr"
    store.mkdir()
    (store / "zarr.json.0a1b2c.partial").write_bytes(b'{"attributes": {"finkcube_st')
    oid = emu.catalog.named("single")
    assert main(["build", str(oid), "--out", str(store), "--url", emu.url]) == 0
    assert sorted(os.listdir(store)) == sorted([str(oid), "catalog", "zarr.json"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = xr.open_datatree(str(store), engine="zarr", consolidated=False)
    assert sorted(tree.children) == sorted([str(oid), "catalog"])


FINKCUBE = Path(sys.executable).with_name("finkcube")


@pytest.mark.slow
@pytest.mark.skipif(not FINKCUBE.exists(), reason="the finkcube console script is missing")
def test_two_builds_into_one_store_at_once_both_finish(emu: Emulator, tmp_path: Path) -> None:
    ids = emu.catalog.bulk_objects(8, sources=(2, 5))
    reference = tmp_path / "alone.zarr"
    assert main(["build", *map(str, ids), "--out", str(reference), "--url", emu.url]) == 0
    for trial in range(3):
        store = tmp_path / f"shared-{trial}.zarr"
        argv = [str(FINKCUBE), "build", *map(str, ids), "--out", str(store), "--url", emu.url]
        runs = [subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
        outs = [run.communicate(timeout=120) for run in runs]
        for run, (_, err) in zip(runs, outs, strict=True):
            assert run.returncode == 0, err
            assert "Traceback" not in err
        for oid in ids:
            got, want = _state(str(store), oid), _state(str(reference), oid)
            assert got is not None, (trial, oid)
            assert want is not None
            assert _same(got, want), (trial, oid)
            plain = _plain(str(store), oid)
            assert plain is not None, (trial, oid)
            assert _same(plain, want), (trial, oid)
        assert not (store / STAGING).exists()


_ASIDE_WRITER = """
import os, sys
from finkcube.store.localfiles import write_aside
root, me = sys.argv[1], sys.argv[2]
for i in range(int(sys.argv[3])):
    write_aside(os.path.join(root, "group", me), os.path.join(root, "staging"),
                lambda partial: open(partial, "wb").write(b"%d" % i))
"""


@pytest.mark.slow
def test_writers_removing_their_emptied_staging_folder_never_fail_each_other(
    tmp_path: Path,
) -> None:
    # Every write aside removes the staging folder once empty, so another process's mkdir
    # can find it there and gone again the next instant: os.makedirs then raises
    # FileExistsError for a folder that no longer exists. Two builds into one store hit
    # this when they finalized together; here four writers hit it thousands of times.
    rounds = 2500
    writers = [subprocess.Popen([sys.executable, "-c", _ASIDE_WRITER, str(tmp_path), str(k),
                                 str(rounds)], env=_env(), stderr=subprocess.PIPE, text=True)
               for k in range(4)]  # fmt: skip
    errs = [writer.communicate(timeout=120)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0] * 4, errs
    assert sorted(os.listdir(tmp_path / "group")) == ["0", "1", "2", "3"]
    assert {(tmp_path / "group" / str(k)).read_bytes() for k in range(4)} == {b"%d" % (rounds - 1)}
    assert not (tmp_path / "staging").exists()


def _one_cube(emu: Emulator, tmp_path: Path) -> tuple[Path, int]:
    """A store holding one object's cube, and that object."""
    store = tmp_path / "cubes.zarr"
    oid = emu.catalog.named("single")
    assert main(["build", str(oid), "--out", str(store), "--url", emu.url]) == 0
    return store, oid


@contextlib.contextmanager
def _a_live_writer(oid: int) -> Iterator[str]:
    """The name of a staged copy of ``oid`` whose writer is a live process of this machine."""
    from finkcube.store.versions import stage_name

    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield f"{stage_name(str(oid)).rsplit('-', 1)[0]}-{writer.pid}"  # its pid for ours
    finally:
        writer.kill()
        writer.wait()


def test_a_staged_copy_is_left_to_its_writer_while_that_process_lives(
    emu: Emulator, tmp_path: Path
) -> None:
    from finkcube.store import repair_store

    store, oid = _one_cube(emu, tmp_path)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    assert ended.wait() == 0
    with _a_live_writer(oid) as alive:
        dead = f"{alive.rsplit('-', 1)[0]}-{ended.pid}"
        for name in (alive, dead):  # incomplete copies: their group zarr.json is not written
            (store / STAGING / name / "cutout").mkdir(parents=True)
        repair_store(store)
        assert sorted(os.listdir(store / STAGING)) == [alive]
    repair_store(store)
    assert not (store / STAGING).exists()
    assert _state(str(store), oid) is not None


def test_a_copy_its_live_writer_is_promoting_is_not_promoted_again(
    emu: Emulator, tmp_path: Path
) -> None:
    # A writer promoting its staged copy has deleted the live zarr.json; a repair by another
    # process at that instant (the end of a second build) promoted the copy too, and could
    # delete the zarr.json the writer had just put back, leaving the cube with no version.
    from finkcube.store import repair_store

    store, oid = _one_cube(emu, tmp_path)
    want = _state(str(store), oid)
    with _a_live_writer(oid) as name:
        shutil.copytree(store / str(oid), store / STAGING / name)  # complete, as staged
        (store / str(oid) / "zarr.json").unlink()  # the writer's promotion under way
        assert repair_store(store) == []
        assert not (store / str(oid) / "zarr.json").exists()  # left to its writer
        assert os.listdir(store / STAGING) == [name]
        got = _state(str(store), oid)  # meanwhile, readers read the staged copy
        assert got is not None
        assert _same(got, want)
    assert repair_store(store) == [oid]  # its writer died: the copy is promoted
    assert not (store / STAGING).exists()
    plain = _plain(str(store), oid)
    assert plain is not None
    assert _same(plain, want)
