"""Tests of finkcube.store: Zarr v3 groups written completely or not at all, opened lazily."""

from __future__ import annotations

import json
import pickle
import shutil
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import fsspec
import numpy as np
import orjson
import pytest
import xarray as xr
import zarr

from finkcube.cube import merge_cubes
from finkcube.errors import IncompleteCubeError, InvalidIdError, NotFoundError, StoreError
from finkcube.store import (
    COMPLETE_ATTR,
    STORE_ATTR,
    cube_summary,
    delete_cube,
    finalize_store,
    init_store,
    is_complete,
    list_objects,
    open_cube,
    open_store,
    store_summary,
    write_cube,
)
from tests._cubes import synthetic_cube, synthetic_cutouts, synthetic_records

BIG_ID = 2**62 + 7  # above 2**53: a float detour would change it


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An initialised store: a local directory or an fsspec memory:// URL."""
    if request.param == "local":
        url = str(tmp_path / "cubes.zarr")
    else:
        url = f"memory://test-{uuid.uuid4().hex}.zarr"
    init_store(url)
    yield url
    if request.param == "memory":
        fsspec.filesystem("memory").rm(url.removeprefix("memory://"), recursive=True)


def _fs(url: str) -> tuple[Any, str]:
    return fsspec.core.url_to_fs(url)


def _read_json(url: str, *parts: str) -> dict[str, Any]:
    fs, root = _fs(url)
    return json.loads(fs.cat_file("/".join((root, *parts))))


def _no_compute(*args: object, **kwargs: object) -> None:
    raise AssertionError("something was computed")


@pytest.mark.parametrize("planes", ["data", "all"])
def test_write_open_round_trip_is_identical(store: str, planes: str) -> None:
    cube = synthetic_cube((30, 31, 64, 45), planes=planes, mask_every=2, object_id=BIG_ID)
    write_cube(cube, store)
    assert is_complete(store, BIG_ID)
    got = open_cube(store, BIG_ID)
    xr.testing.assert_identical(got, cube)
    assert got.diaSourceId.dtype == np.int64
    assert got.diaSourceId.values.tolist() == cube.diaSourceId.values.tolist()
    assert got.attrs["diaObjectId"] == BIG_ID
    assert all(isinstance(b, str) for b in got.band.values)
    assert COMPLETE_ATTR not in got.attrs
    view = open_store(store)
    xr.testing.assert_identical(view[BIG_ID], cube)
    tree = view.to_datatree()
    xr.testing.assert_identical(tree[str(BIG_ID)].to_dataset(), cube)
    assert tree.attrs[STORE_ATTR] == 1


def test_open_computes_nothing(store: str) -> None:
    write_cube(synthetic_cube(object_id=5), store)
    with dask.config.set(scheduler=_no_compute):
        cube = open_cube(store, 5)
        assert isinstance(cube.cutout.data, da.Array)
        # Per-epoch coordinates are read into memory straight from Zarr, not through dask.
        assert isinstance(cube.band.data, np.ndarray)
        written = synthetic_cube(object_id=5)
        assert cube.band.values.astype(str).tolist() == written.band.values.tolist()
        view = open_store(store)
        lazy = view[5]
        tree = view.to_datatree()
    copy = pickle.loads(pickle.dumps(lazy))  # lazy arrays travel (dask)
    xr.testing.assert_identical(copy, open_cube(store, 5))
    fs, root = _fs(store)
    fs.rm(f"{root}/5/cutout/c", recursive=True)  # the pixels go after opening...
    assert np.isnan(tree["5"].cutout.values).all()  # ...so they were not read by it
    assert np.isnan(lazy.cutout.values).all()


def test_layout_chunks_and_codecs(store: str) -> None:
    cube = synthetic_cube((30, 40, 50), planes="all", object_id=9)
    write_cube(cube, store)
    group = zarr.open_group(zarr.storage.FsspecStore.from_url(store) if "://" in store else store)
    cutout = group["9"]["cutout"]
    assert cutout.metadata.zarr_format == 3
    assert cutout.chunks[1:] == cutout.shape[1:]  # chunked along time only
    assert any(type(c).__name__ == "BloscCodec" for c in cutout.compressors)
    assert group["9"]["psf"].chunks[1:] == group["9"]["psf"].shape[1:]
    assert group["9"]["time"].compressors == ()
    # Numeric per-epoch arrays are stored raw, text ones with zarr's default codec.
    assert group["9"]["diaSourceId"].compressors == ()
    assert group["9"]["band"].compressors != ()
    assert group.attrs[STORE_ATTR] == 1


def test_plain_xarray_reads_a_finalised_store_without_warnings(store: str) -> None:
    write_cube(synthetic_cube(object_id=11), store)
    write_cube(synthetic_cube((32, 40), planes="all", object_id=BIG_ID), store)
    finalize_store(store)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(f"{store}/{BIG_ID}")
        tree = xr.open_datatree(store, engine="zarr", consolidated=False)
    assert ds.diaSourceId.dtype == np.int64
    assert sorted(tree.children) == sorted(["11", str(BIG_ID), "catalog"])
    assert tree[str(BIG_ID)].attrs[COMPLETE_ATTR] is True


def test_consolidated_metadata_is_zarrs_own_format(tmp_path: Path) -> None:
    store = str(tmp_path / "mine.zarr")
    init_store(store)
    write_cube(synthetic_cube((30, 33), planes="all", object_id=3), store)
    write_cube(synthetic_cube(object_id=4), store)
    finalize_store(store)
    copy = tmp_path / "theirs.zarr"
    shutil.copytree(store, copy)
    with warnings.catch_warnings():
        # zarr notes that consolidated metadata is not in the v3 spec: that is the point
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(str(copy), path="3")
        zarr.consolidate_metadata(str(copy), path="catalog")
    for group in ("3", "catalog"):
        assert _read_json(store, group, "zarr.json") == _read_json(str(copy), group, "zarr.json")
    assert "consolidated_metadata" not in _read_json(store, "zarr.json")


def test_a_failing_lazy_cube_leaves_the_old_one_in_place(store: str) -> None:
    cube = synthetic_cube((30, 31), object_id=25)
    write_cube(cube, store)

    def fail(block: np.ndarray) -> np.ndarray:
        raise OSError("connection lost")

    lazy = cube.copy()
    pixels = da.from_array(cube.cutout.values, chunks=(1, 3, 31, 31, 1))
    lazy["cutout"] = cube.cutout.copy(data=pixels.map_blocks(fail, dtype=np.float32))
    with pytest.raises(OSError, match="connection lost"):
        write_cube(lazy, store)
    xr.testing.assert_identical(open_cube(store, 25), cube)


def test_marker_removed_means_incomplete(store: str) -> None:
    write_cube(synthetic_cube(object_id=31), store)
    meta = _read_json(store, "31", "zarr.json")
    del meta["attributes"][COMPLETE_ATTR]
    fs, root = _fs(store)
    fs.pipe_file(f"{root}/31/zarr.json", json.dumps(meta).encode())
    with pytest.raises(IncompleteCubeError):
        open_cube(store, 31)
    assert list_objects(store) == []


def test_writes_after_finalize_mark_the_catalog_stale(store: str) -> None:
    write_cube(synthetic_cube((30, 31), object_id=41), store)
    finalize_store(store)
    assert _read_json(store, "zarr.json")["attributes"]["finkcube_catalog"] == "current"
    bigger = synthetic_cube((30, 31, 50), object_id=41)
    write_cube(bigger, store)  # what an update does
    assert _read_json(store, "zarr.json")["attributes"]["finkcube_catalog"] == "stale"
    assert "consolidated_metadata" not in _read_json(store, "zarr.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = xr.open_zarr(f"{store}/41")  # the group's own metadata: never stale
    assert plain.sizes["time"] == 3
    view = open_store(store)
    assert not view.current
    assert view.catalog.epochs.values.tolist() == [3]  # rebuilt in memory
    finalize_store(store)
    assert open_store(store).current
    xr.testing.assert_identical(open_cube(store, 41), bigger)


def test_init_store_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(StoreError, match="is not a finkcube store; pass --overwrite"):
        init_store(folder)
    assert (folder / "cat.jpg").exists()
    file = tmp_path / "notes.txt"
    file.write_text("hello")
    with pytest.raises(StoreError, match="not a finkcube store"):
        init_store(file)
    other = tmp_path / "other.zarr"
    zarr.create_group(str(other), zarr_format=3)
    with pytest.raises(StoreError, match="not a finkcube store"):
        init_store(other)
    for target in (folder, file, other):
        init_store(target, overwrite=True)
        write_cube(synthetic_cube(object_id=1), target)
        assert list_objects(target) == [1]
    assert not (folder / "cat.jpg").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    init_store(empty)
    assert list_objects(empty) == []


def test_init_store_writes_the_root_as_zarr_does(store: str, tmp_path: Path) -> None:
    theirs = tmp_path / "by-zarr.zarr"
    zarr.create_group(str(theirs), zarr_format=3, attributes={STORE_ATTR: 1})
    assert _read_json(store, "zarr.json") == orjson.loads((theirs / "zarr.json").read_bytes())
    group = zarr.open_group(zarr.storage.FsspecStore.from_url(store) if "://" in store else store)
    assert dict(group.attrs) == {STORE_ATTR: 1}


def test_init_store_resumes_an_existing_store(store: str) -> None:
    write_cube(synthetic_cube(object_id=51), store)
    finalize_store(store)
    init_store(store)
    assert list_objects(store) == [51]
    assert _read_json(store, "zarr.json")["attributes"]["finkcube_catalog"] == "stale"
    init_store(store, overwrite=True)
    assert list_objects(store) == []


@pytest.mark.parametrize("bad", ["../etc", "1/../2", "", "-3", "12a", 0, 2**63])
def test_bad_object_ids_never_become_paths(tmp_path: Path, bad: object) -> None:
    store = tmp_path / "cubes.zarr"
    init_store(store)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for call in (
        lambda: open_cube(store, bad),  # type: ignore[arg-type]
        lambda: is_complete(store, bad),  # type: ignore[arg-type]
        lambda: delete_cube(store, bad),  # type: ignore[arg-type]
        lambda: write_cube(synthetic_cube().assign_attrs(diaObjectId=bad), store),
    ):
        with pytest.raises(InvalidIdError):
            call()
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_missing_object_and_missing_store(store: str, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"diaObjectId 77.*finkcube info"):
        open_cube(store, 77)
    nowhere = tmp_path / "nowhere.zarr"
    for call in (
        lambda: open_cube(nowhere, 77),
        lambda: list_objects(nowhere),
        lambda: open_store(nowhere),
        lambda: write_cube(synthetic_cube(), nowhere),
    ):
        with pytest.raises(StoreError, match="is not a finkcube store"):
            call()


def test_concurrent_writes_of_different_objects(store: str) -> None:
    cubes = {oid: synthetic_cube((30, 30 + oid), object_id=oid) for oid in range(1, 7)}
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda c: write_cube(c, store), cubes.values()))
    assert list_objects(store) == sorted(cubes)
    for oid, cube in cubes.items():
        xr.testing.assert_identical(open_cube(store, oid), cube)


def test_update_cycle_rewrites_a_lazy_cube(store: str) -> None:
    cube = synthetic_cube((30, 40), planes="all", object_id=61)
    write_cube(cube, store)
    old = open_cube(store, 61).chunk({"time": 1})  # dask chunks unlike the store's
    sid = 2**60 + 999
    late = {**synthetic_records(61, [sid])[0], "r:midpointMjdTai": 60000.0}
    merged = merge_cubes(old, [late], {sid: synthetic_cutouts(sid, 55, planes="all")})
    write_cube(merged, store)
    got = open_cube(store, 61)
    assert got.diaSourceId.values[0] == sid
    write_cube(got.chunk({"time": 1}), store)  # a lazy cube read from the group it replaces
    got = open_cube(store, 61)
    assert got.sizes["x"] == 55
    xr.testing.assert_identical(got, merged)


def test_summaries(store: str) -> None:
    write_cube(synthetic_cube((30, 40, 41), object_id=71), store)
    write_cube(synthetic_cube((30,), planes="all", mask_every=1, object_id=72), store)
    summary = store_summary(store)
    assert summary.objects == 2
    assert summary.epochs == 4
    assert summary.nbytes >= sum(c.nbytes for c in summary.cubes) > 0
    first, second = summary.cubes
    assert (first.object_id, first.epochs, first.canvas, first.planes) == (71, 3, 41, ("data",))
    assert second.planes == ("data", "variance", "mask")
    assert first.first_mjd is not None
    assert first.last_mjd is not None
    assert first.first_mjd < first.last_mjd
    one = cube_summary(store, 71)
    assert one.bands is not None
    assert sum(one.bands.values()) == 3
    assert one.first_mjd == first.first_mjd


def test_s3_store_round_trip(s3_options: dict[str, Any]) -> None:
    url = "s3://cubes/store.zarr"
    init_store(url, storage_options=s3_options)
    cube = synthetic_cube((30, 41), planes="all", object_id=BIG_ID)
    write_cube(cube, url, storage_options=s3_options)
    write_cube(synthetic_cube(object_id=5), url, storage_options=s3_options)
    assert list_objects(url, storage_options=s3_options) == [5, BIG_ID]
    xr.testing.assert_identical(open_cube(url, BIG_ID, storage_options=s3_options), cube)
    view = open_store(url, storage_options=s3_options)
    xr.testing.assert_identical(view[BIG_ID], cube)
    finalize_store(url, storage_options=s3_options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = xr.open_zarr(f"{url}/{BIG_ID}", storage_options=s3_options)
        catalog = xr.open_zarr(f"{url}/catalog", storage_options=s3_options)
        plain_tree = xr.open_datatree(
            url, engine="zarr", consolidated=False, storage_options=s3_options
        )
    assert plain.diaSourceId.values.tolist() == cube.diaSourceId.values.tolist()
    assert catalog.object.values.tolist() == [5, BIG_ID]
    assert sorted(plain_tree.children) == sorted(["5", str(BIG_ID), "catalog"])
    delete_cube(url, 5, storage_options=s3_options)
    assert list_objects(url, storage_options=s3_options) == [BIG_ID]


def test_a_store_of_a_newer_layout_is_refused_not_replaced(tmp_path: Path) -> None:
    store = tmp_path / "future.zarr"
    zarr.create_group(str(store), zarr_format=3, attributes={STORE_ATTR: 99})
    for call in (lambda: init_store(store), lambda: list_objects(store)):
        with pytest.raises(StoreError, match="newer than this finkcube"):
            call()
    assert _read_json(str(store), "zarr.json")["attributes"][STORE_ATTR] == 99


def test_open_store_reads_the_catalog_alone(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Opening a store with a current catalog reads no cube's group document.
    cube = synthetic_cube(object_id=7)
    cube["psfFlux"] = cube["psfFlux"].assign_attrs(units="nJy")
    write_cube(cube, store)
    finalize_store(store)
    fs, root = _fs(store)
    fs.rm_file(f"{root}/7/psfFlux/zarr.json")  # would break any open of cube 7
    view = open_store(store)
    assert view.current
    assert list(view) == [7]
    assert view.catalog.epochs.values.tolist() == [cube.sizes["time"]]
