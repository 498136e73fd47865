"""Tests of finkcube.store under failures: interrupted writes, lost files, full disks, bad paths.

Faults are injected through fsspec's own extension point: :class:`FaultyFileSystem` is an
in-memory filesystem registered under ``faulty://`` whose faults are chosen by its storage
options, so the store code runs unchanged against it (no patching of finkcube).
"""

from __future__ import annotations

import errno
import json
import os
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import numpy as np
import pytest
import xarray as xr
from fsspec.implementations.memory import MemoryFileSystem

from finkcube import FinkClient, build_store
from finkcube.errors import IncompleteCubeError, InputError, StoreError, StoreRefusedError
from finkcube.store import (
    check_store,
    cube_summary,
    delete_cube,
    finalize_store,
    init_store,
    is_complete,
    iter_cutouts,
    list_objects,
    locate,
    open_cube,
    open_store,
    store_summary,
    write_cube,
)
from finkcube.store import stream as _stream
from tests._cubes import synthetic_cube


class FaultyFileSystem(MemoryFileSystem):
    """fsspec's memory filesystem with faults chosen by storage options.

    ``fail``: writing a path containing it raises ``OSError`` (a connection lost mid-write),
    as does every write after the first ``fail_after`` ones;
    ``drop``: writing a path containing it silently does nothing (a store losing writes);
    ``full``: every write fails with ENOSPC; ``slow``: reading a path containing it takes
    that many seconds, except paths containing ``fast``. Reads are counted per path in
    :attr:`reads`.
    """

    protocol = ("faulty",)
    reads: ClassVar[Counter[str]] = Counter()

    def __init__(
        self,
        fail: str | None = None,
        fail_after: int | None = None,
        drop: str | None = None,
        full: bool = False,
        slow: str | None = None,
        delay: float = 0.0,
        fast: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fail, self.drop, self.full = fail, drop, full
        self.fail_after, self.writes = fail_after, 0
        self.slow, self.delay, self.fast = slow, delay, fast

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, str) and path.startswith("faulty://"):
            path = path[len("faulty://") :]
        return super()._strip_protocol(path)

    def pipe_file(self, path: str, value: bytes, *args: Any, **kwargs: Any) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        self.writes += 1
        if (self.fail and self.fail in path) or (
            self.fail_after is not None and self.writes > self.fail_after
        ):
            raise OSError("connection lost")
        if self.drop and self.drop in path:
            return
        super().pipe_file(path, value, *args, **kwargs)

    def cat_file(self, path: str, *args: Any, **kwargs: Any) -> Any:
        path = self._strip_protocol(path)
        FaultyFileSystem.reads[path] += 1
        if self.slow and self.slow in path and not (self.fast and self.fast in path):
            time.sleep(self.delay)
        return super().cat_file(path, *args, **kwargs)


fsspec.register_implementation("faulty", FaultyFileSystem, clobber=True)


@pytest.fixture
def name() -> Iterator[str]:
    """A fresh store path in the faulty filesystem, removed afterwards."""
    path = f"faulty-{uuid.uuid4().hex}.zarr"
    yield path
    fs = FaultyFileSystem()
    if fs.exists(f"/{path}"):
        fs.rm(f"/{path}", recursive=True)


def _url(name: str) -> str:
    return f"faulty://{name}"


def test_an_interrupted_write_never_reads_as_complete(name: str) -> None:
    url = _url(name)
    init_store(url)
    write_cube(synthetic_cube(object_id=21), url)
    with pytest.raises(StoreError, match=r"writing cube 22 failed: connection lost"):
        write_cube(synthetic_cube((30, 31, 32, 33), object_id=22), url, storage_options={
            "fail_after": 5})  # fmt: skip
    fs, root = fsspec.core.url_to_fs(url)
    assert len(fs.find(f"{root}/22")) == 5  # some of it landed
    assert not is_complete(url, 22)
    with pytest.raises(IncompleteCubeError, match=r"not completely written.*finkcube build"):
        open_cube(url, 22)
    assert list_objects(url) == [21]
    assert list_objects(url, complete_only=False) == [21, 22]
    assert list(open_store(url)) == [21]
    finalize_store(url)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(open_store(url)) == [21]
        catalog = xr.open_zarr(f"{url}/catalog")
        assert catalog.object.values.tolist() == [21]
        assert catalog.attrs["incomplete"] == ["22"]
    summary = store_summary(url)
    assert summary.incomplete == (22,)
    assert [c.object_id for c in summary.cubes] == [21]
    delete_cube(url, 22)
    assert list_objects(url, complete_only=False) == [21]


def test_an_interrupted_rewrite_of_a_lazy_cube_is_redone_by_writing_again(name: str) -> None:
    url = _url(name)
    init_store(url)
    cube = synthetic_cube((30, 40), object_id=5)
    write_cube(cube, url)
    with pytest.raises(StoreError, match="connection lost"):
        write_cube(open_cube(url, 5), url, storage_options={"fail": "/time/"})
    assert is_complete(url, 5)  # the failure hit the staged copy: the old version stands
    xr.testing.assert_identical(open_cube(url, 5), cube)
    write_cube(cube, url)
    xr.testing.assert_identical(open_cube(url, 5), cube)


def test_arrays_lost_on_the_way_are_caught_before_the_cube_reads_complete(name: str) -> None:
    url = _url(name)
    init_store(url)
    cube = synthetic_cube((30, 31), object_id=7)
    with pytest.raises(StoreError, match=r"cube 7 lost arrays.*write it again"):
        write_cube(cube, url, storage_options={"drop": "/psfFlux/zarr.json"})
    assert not is_complete(url, 7)
    assert list_objects(url) == []
    write_cube(cube, url)
    xr.testing.assert_identical(open_cube(url, 7), cube)


def test_a_full_disk_is_one_store_error_line(name: str) -> None:
    url = _url(name)
    init_store(url)
    with pytest.raises(StoreError, match=r"writing cube 8 failed: No space left.*disk is full"):
        write_cube(synthetic_cube(object_id=8), url, storage_options={"full": True})
    with pytest.raises(StoreError, match="creating the store failed: No space left") as info:
        init_store(f"faulty://{name}-new", storage_options={"full": True})
    assert "\n" not in str(info.value)


def test_corrupt_documents_and_chunks_are_store_errors(tmp_path: Path) -> None:
    store = tmp_path / "cubes.zarr"
    init_store(store)
    cube = synthetic_cube((30, 31, 32), object_id=9)
    write_cube(cube, store)
    write_cube(synthetic_cube(object_id=10), store)
    for chunk in (store / "9" / "cutout" / "c").rglob("*"):
        if chunk.is_file():
            chunk.write_bytes(b"not blosc at all")
    lazy = open_cube(store, 9)
    with pytest.raises(StoreError, match=r"reading (cube 9|9/cutout) failed"):
        lazy.cutout.values  # noqa: B018
    with pytest.raises(StoreError, match=r"reading (cube 9|9/cutout) failed"):
        list(iter_cutouts(store, [9]))
    (store / "10" / "zarr.json").write_bytes(b"{not json")
    with pytest.raises(StoreError, match="is not JSON"):
        open_cube(store, 10)
    assert list_objects(store) == [9]  # a group document cut short: an interrupted write
    (store / "zarr.json").write_bytes(b"\x00garbage")
    for call in (lambda: list_objects(store), lambda: check_store(store)):
        with pytest.raises(StoreError, match=r"zarr\.json is not JSON"):
            call()


def test_paths_that_can_never_be_a_store_are_refused_by_check_store(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("hello")
    dangling = tmp_path / "link"
    dangling.symlink_to(tmp_path / "nothing")
    for path, why in [
        (afile / "c.zarr", "afile is a file, not a folder"),
        (afile / "deep" / "c.zarr", "afile is a file, not a folder"),
        (dangling / "c.zarr", "link is a symbolic link to nothing"),
        (dangling, "is a symbolic link to nothing"),
    ]:
        for overwrite in (False, True):
            with pytest.raises(StoreRefusedError, match=why):
                check_store(path, overwrite=overwrite)
        with pytest.raises(StoreRefusedError, match=why):
            init_store(path, overwrite=True)
    assert afile.read_text() == "hello"


def test_a_build_into_an_impossible_path_fails_before_any_request(
    tmp_path: Path, emulator: Any
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("hello")
    oid = emulator.catalog.object_ids()[0]
    before = sum(emulator.requests.values())
    with pytest.raises(StoreRefusedError, match="is a file, not a folder"):
        build_store([oid], afile / "c.zarr", client=FinkClient(emulator.url))
    assert sum(emulator.requests.values()) == before


def test_stopping_early_cancels_the_queued_reads(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _url(name)
    init_store(url)
    for oid in range(1, 21):
        write_cube(synthetic_cube((30,), object_id=oid, seed=oid), url)
    monkeypatch.setattr(_stream, "BATCH_BYTES", 1)  # one object per batch: many queued
    options = {"slow": "/cutout/c/", "delay": 0.3, "fast": f"{name}/1/"}
    FaultyFileSystem.reads.clear()
    stream = iter_cutouts(url, threads=2, storage_options=options)
    first, _ = next(stream)  # object 1 is fast: the others are still queued or running
    stream.close()  # type: ignore[attr-defined]
    assert first == 1
    read = {p.split("/")[2] for p in FaultyFileSystem.reads if "/cutout/c/" in p}
    # 1, and at most the 2 x threads batches read ahead; the others were never read.
    assert read <= {str(oid) for oid in range(1, 2 + 2 * 2)}, sorted(read, key=int)


def test_a_located_store_is_passed_down_and_kept(tmp_path: Path) -> None:
    store = locate(tmp_path / "cubes.zarr")
    assert locate(store) is store
    init_store(store)
    cube = synthetic_cube((30, 31), object_id=3)
    write_cube(cube, store)
    assert check_store(store)
    assert list_objects(store) == [3]
    assert is_complete(store, 3)
    xr.testing.assert_identical(open_cube(store, 3), cube)
    assert list(open_store(store)) == [3]
    ((oid, pixels),) = iter_cutouts(store)
    assert oid == 3
    np.testing.assert_array_equal(pixels, cube.cutout.values)
    assert store_summary(store).objects == 1
    assert cube_summary(store, 3).epochs == 2
    finalize_store(store)
    delete_cube(store, 3)
    assert list_objects(tmp_path / "cubes.zarr") == []
    with pytest.raises(InputError, match="other storage options"):
        list_objects(store, storage_options={"anon": True})


def test_an_unknown_protocol_is_an_input_error() -> None:
    with pytest.raises(InputError, match="invalid store 'nosuchproto://x'"):
        check_store("nosuchproto://x")


def test_storage_options_the_sdk_refuses_are_a_store_error() -> None:
    pytest.importorskip("s3fs")
    with pytest.raises(StoreError, match=r"storage options were refused: .*'no_such_option'"):
        list_objects("s3://cubes/s.zarr", storage_options={"no_such_option": 1})


def test_a_plain_xarray_group_in_a_store_is_summarised(tmp_path: Path) -> None:
    store = tmp_path / "cubes.zarr"
    init_store(store)
    cube = synthetic_cube((30, 31, 32), object_id=11)
    # Written by plain xarray with its default encoding: a compressed time array.
    cube.assign_attrs(finkcube_complete=True).to_zarr(
        store, group="11", mode="w", zarr_format=3, consolidated=False
    )
    meta = json.loads((store / "11" / "time" / "zarr.json").read_bytes())
    assert any(c["name"] == "zstd" for c in meta["codecs"])
    summary = store_summary(store)
    (one,) = summary.cubes
    assert (one.object_id, one.epochs, one.canvas) == (11, 3, 32)
    assert one.first_mjd == pytest.approx(float(cube.time.min()))
    assert one.last_mjd == pytest.approx(float(cube.time.max()))
    detail = cube_summary(store, 11)
    assert detail.first_mjd == one.first_mjd
    assert sum((detail.bands or {}).values()) == 3
