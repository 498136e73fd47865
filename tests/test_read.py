"""Tests of finkcube.store's readers (open_cube, open_cubes, iter_cutouts) against plain tools.

The oracles are the cube that was written and plain xarray / zarr-python reading the same
group; the readers must agree with them on every layout zarr can write (chunks left out
because they hold only the fill value, other codecs, sharding), and a lazy cube read after
its group was rewritten must refuse instead of returning the new version's values.
"""

from __future__ import annotations

import pickle
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import xarray as xr
import zarr
from zarr.codecs import GzipCodec

from finkcube.errors import IncompleteCubeError, NotFoundError, StoreError
from finkcube.store import (
    COMPLETE_ATTR,
    init_store,
    iter_cutouts,
    open_cube,
    open_cubes,
    write_cube,
)
from tests._cubes import synthetic_cube


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An initialised store, on disk or in fsspec's memory filesystem."""
    if request.param == "local":
        url = str(tmp_path / "cubes.zarr")
    else:
        url = f"memory://read-{uuid.uuid4().hex}.zarr"
    init_store(url)
    yield url
    if request.param == "memory":
        fsspec.filesystem("memory").rm(url.removeprefix("memory://"), recursive=True)


def _zarr_store(url: str) -> Any:
    return zarr.storage.FsspecStore.from_url(url) if "://" in url else url


def _padded_cube(object_id: int, planes: str = "data") -> xr.Dataset:
    """A cube of 100 epochs (two chunks of ``cutout``) whose later half is all NaN, so that
    zarr leaves out its last chunk: it must read back as NaN, its fill value."""
    cube = synthetic_cube((64,) * 100, object_id=object_id, planes=planes)
    cube["cutout"][50:] = np.nan
    return cube


@pytest.mark.parametrize("planes", ["data", "all"])
def test_every_reader_equals_the_cube_and_plain_zarr(store: str, planes: str) -> None:
    cubes = {11: synthetic_cube((30, 31, 64), planes=planes, object_id=11)}
    cubes[12] = _padded_cube(12, planes)
    for cube in cubes.values():
        write_cube(cube, store)
    written = zarr.open_group(_zarr_store(store), path="12", mode="r")["cutout"]
    assert 0 < written.nchunks_initialized < written.nchunks  # a NaN chunk left out
    lazy = open_cubes(store, [12, 11])
    assert list(lazy) == [12, 11]
    streamed = dict(iter_cutouts(store))
    for oid, cube in cubes.items():
        opened = open_cube(store, oid)
        xr.testing.assert_identical(opened, cube)
        xr.testing.assert_identical(lazy[oid], cube)
        plain = zarr.open_group(_zarr_store(store), path=str(oid), mode="r")
        np.testing.assert_array_equal(streamed[oid], plain["cutout"][...])
        np.testing.assert_array_equal(streamed[oid], cube.cutout.values)
        assert opened.kind.dtype == object
        assert lazy[oid].band.values.dtype == object
        picked = lazy[oid].cutout.isel(time=slice(1, None, 2), kind=-1, y=slice(3, 20))
        np.testing.assert_array_equal(
            picked.values, cube.cutout.isel(time=slice(1, None, 2), kind=-1, y=slice(3, 20))
        )
    assert np.isnan(open_cube(store, 12).cutout[50:].values).all()


def test_groups_of_other_layouts_are_read_as_plain_xarray_reads_them(tmp_path: Path) -> None:
    # A group written by plain xarray with another codec, sharded, marked complete.
    url = str(tmp_path / "other.zarr")
    init_store(url)
    cube = _padded_cube(5).assign_attrs({COMPLETE_ATTR: True})
    encoding = {"cutout": {"compressors": GzipCodec(), "chunks": (10, 3, 32, 32, 1),
                           "shards": (50, 3, 64, 64, 1)}}  # fmt: skip
    with warnings.catch_warnings():  # zarr: consolidated metadata is not in the v3 spec
        warnings.filterwarnings("ignore", "Consolidated metadata is currently", UserWarning)
        cube.to_zarr(url, group="5", mode="w", encoding=encoding, consolidated=True)
    plain = xr.open_zarr(f"{url}/5", consolidated=False).compute()
    del plain.attrs[COMPLETE_ATTR]
    xr.testing.assert_identical(open_cube(url, 5).compute(), plain)
    xr.testing.assert_identical(open_cubes(url, [5])[5].compute(), plain)
    ((oid, values),) = iter_cutouts(url)
    assert oid == 5
    np.testing.assert_array_equal(values, plain.cutout.values)


def test_a_lazy_cube_read_after_a_rewrite_says_open_it_again(store: str) -> None:
    write_cube(synthetic_cube((30, 40), object_id=7, seed=1), store)
    cube = open_cube(store, 7)
    held = open_cubes(store, [7])[7]
    newer = synthetic_cube((30, 40, 35), object_id=7, seed=2)
    write_cube(newer, store)
    for stale in (cube, held):
        with pytest.raises(StoreError, match="cube 7 was rewritten while being read; open it"):
            stale.cutout.values  # noqa: B018
    again = open_cube(store, 7)
    xr.testing.assert_identical(again, newer)
    assert again.cutout.data.name != cube.cutout.data.name  # no dask key shared


def test_open_cubes_refuses_missing_and_incomplete_cubes(store: str) -> None:
    for oid in (3, 4, 5):
        write_cube(synthetic_cube((30, 32), object_id=oid, seed=oid), store)
    del zarr.open_group(_zarr_store(store), path="5", mode="r+").attrs[COMPLETE_ATTR]
    with pytest.raises(IncompleteCubeError, match="diaObjectId 5"):
        open_cubes(store, [3, 5])
    with pytest.raises(NotFoundError, match="no cube of diaObjectId 6"):
        open_cubes(store, [6])
    with pytest.raises(IncompleteCubeError, match="diaObjectId 5"):
        open_cube(store, 5)


def test_lazy_cubes_travel_by_pickle_and_dask_chunks_follow_the_store(tmp_path: Path) -> None:
    url = str(tmp_path / "cubes.zarr")
    init_store(url)
    cube = _padded_cube(9)
    write_cube(cube, url)
    stored = zarr.open_group(url, path="9", mode="r")["cutout"].chunks
    opened = open_cube(url, 9)
    assert opened.cutout.data.chunksize == stored
    assert open_cube(url, 9, chunks={"time": 7}).cutout.data.chunksize[0] == 7
    for lazy in (opened, open_cubes(url, [9])[9]):
        xr.testing.assert_identical(pickle.loads(pickle.dumps(lazy)).compute(), cube)


def test_readers_on_an_object_store(s3_options: dict[str, Any]) -> None:
    url = f"s3://cubes/read-{uuid.uuid4().hex}.zarr"
    init_store(url, storage_options=s3_options)
    cubes = {oid: synthetic_cube((30, 36), object_id=oid, seed=oid) for oid in (21, 22, 23)}
    for cube in cubes.values():
        write_cube(cube, url, storage_options=s3_options)
    for threads in (0, 2):
        streamed = dict(iter_cutouts(url, storage_options=s3_options, threads=threads))
        assert list(streamed) == sorted(cubes)
        for oid, cube in cubes.items():
            np.testing.assert_array_equal(streamed[oid], cube.cutout.values)
    lazy = open_cubes(url, [23, 21], storage_options=s3_options)
    xr.testing.assert_identical(lazy[23], cubes[23])
    xr.testing.assert_identical(open_cube(url, 21, storage_options=s3_options), cubes[21])
    first = next(iter(iter_cutouts(url, storage_options=s3_options)))  # stopped early
    assert first[0] == 21
