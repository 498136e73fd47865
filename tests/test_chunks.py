"""Tests of finkcube.store.chunks: reading simple Zarr v3 arrays straight from their chunk files.

Every read is checked against numpy indexing of the array that was written, and against
zarr-python where zarr supports the key; layouts the reader does not know are refused so
that the caller uses zarr.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import orjson
import pytest
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, BytesCodec, GzipCodec, TransposeCodec, ZstdCodec

from finkcube.store import finalize_store, init_store, open_cube, open_store, write_cube
from finkcube.store.chunks import ChunkReader, simple_layout
from finkcube.store.location import locate
from finkcube.store.nodes import LazyArray
from tests._cubes import synthetic_cube


@pytest.fixture(params=["local", "memory"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A Zarr location on disk or in fsspec's memory filesystem."""
    if request.param == "local":
        yield str(tmp_path / "arrays.zarr")
        return
    name = f"memory://chunks-{uuid.uuid4().hex}.zarr"
    yield name
    fsspec.filesystem("memory").rm(name.removeprefix("memory://"), recursive=True)


def _group(url: str) -> Any:
    store = zarr.storage.FsspecStore.from_url(url) if "://" in url else url
    return zarr.open_group(store, mode="w", zarr_format=3)


def _reader(url: str, path: str) -> ChunkReader:
    where = locate(url, None)
    meta = orjson.loads(where.fs.cat_file(where.path(path, "zarr.json")))
    layout = simple_layout(meta)
    assert layout is not None, meta
    return ChunkReader(where, path, layout)


def _random_keys(shape: tuple[int, ...], count: int, seed: int) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(seed)
    keys = []
    for _ in range(count):
        key: list[Any] = []
        for n in shape[: rng.integers(0, len(shape) + 1)]:
            if rng.random() < 0.3:
                key.append(int(rng.integers(-n, n)))
            else:
                a, b = rng.integers(-n - 1, n + 2, size=2)
                step = int(rng.choice([1, 1, 1, 2, 3]))
                key.append(slice(int(a), int(b), step))
        keys.append(tuple(key))
    return keys


COMPRESSORS = {
    "lz4": BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle"),
    "zstd-shuffle": BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"),
    "zarr-zstd": ZstdCodec(level=3, checksum=True),
    "none": None,
}


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
@pytest.mark.parametrize("chunks", [(5, 3, 4, 5, 1), (23, 3, 7, 5, 2), (2, 1, 3, 5, 2)])
def test_reads_match_numpy_and_zarr(url: str, codec: str, chunks: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=(23, 3, 7, 5, 2)).astype(np.float32)
    values[4:9] = np.nan  # whole chunks of fill value: zarr does not write them
    array = _group(url).create_array(
        "a",
        shape=values.shape,
        dtype="float32",
        chunks=chunks,
        compressors=COMPRESSORS[codec],
        fill_value=np.nan,
    )
    array[:] = values
    reader = _reader(url, "a")
    np.testing.assert_array_equal(reader.read(()), values)
    fixed = [(3,), (slice(2, 19, 3), 1), (-1, slice(None), slice(1, 6, 2), 4, 0), (slice(7, 3),)]
    for key in fixed + _random_keys(values.shape, 60, seed=len(chunks) + chunks[0]):
        got = reader.read(key)
        np.testing.assert_array_equal(got, values[key], err_msg=str(key))
        np.testing.assert_array_equal(got, array[key], err_msg=str(key))
        assert got.flags.writeable


def test_negative_steps_read_like_numpy(url: str) -> None:
    values = np.arange(7 * 6, dtype=np.int64).reshape(7, 6)
    _group(url).create_array("a", data=values, chunks=(3, 4), compressors=None)
    reader = _reader(url, "a")
    for key in [(slice(None, None, -1),), (slice(6, 0, -2), slice(None, None, -3)), (-2, -1)]:
        np.testing.assert_array_equal(reader.read(key), values[key], err_msg=str(key))


@pytest.mark.parametrize(
    ("dtype", "fill", "expected"),
    [
        ("int16", 7, 7),
        ("bool", True, True),
        ("float64", "0x7ff8000000000000", np.nan),  # the spec's hex form, written by hand
        ("float32", "-Infinity", -np.inf),
        ("uint8", 0, 0),
    ],
)
def test_missing_chunks_read_as_the_fill_value(
    url: str, dtype: str, fill: Any, expected: Any
) -> None:
    hexed = isinstance(fill, str) and fill.startswith("0x")
    _group(url).create_array(
        "a", shape=(4, 3), dtype=dtype, chunks=(2, 3), fill_value=0 if hexed else fill,
        compressors=None,
    )  # fmt: skip
    if hexed:  # zarr-python writes NaN as "NaN"; the spec also allows raw bits in hex
        where = locate(url, None)
        meta = orjson.loads(where.fs.cat_file(where.path("a", "zarr.json")))
        where.fs.pipe_file(where.path("a", "zarr.json"), orjson.dumps({**meta, "fill_value": fill}))
    got = _reader(url, "a").read(())
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, np.full((4, 3), expected, dtype))


def test_other_layouts_are_left_to_zarr(tmp_path: Path) -> None:
    root = _group(str(tmp_path / "x.zarr"))
    made = {
        "gzip": root.create_array("gzip", shape=(4,), dtype="f4", compressors=GzipCodec()),
        "sharded": root.create_array("sharded", shape=(8,), dtype="f4", chunks=(2,), shards=(4,)),
        "strings": root.create_array("strings", shape=(2,), dtype=np.dtypes.StringDType()),
        "big": root.create_array(
            "big", shape=(4,), dtype="f4", serializer=BytesCodec(endian="big"), compressors=None
        ),
        "transposed": root.create_array(
            "transposed", shape=(2, 3), dtype="f4", filters=[TransposeCodec(order=(1, 0))]
        ),
    }
    for name, array in made.items():
        assert simple_layout(array.metadata.to_dict()) is None, name
    assert simple_layout({"node_type": "group"}) is None


def test_lazy_arrays_fall_back_to_zarr_with_the_same_values(tmp_path: Path) -> None:
    url = str(tmp_path / "x.zarr")
    root = _group(url)
    values = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    root.create_array("gzip", data=values, compressors=GzipCodec())
    root.create_array("lz4", data=values, compressors=COMPRESSORS["lz4"])
    root.create_array("names", data=np.array(["g", "r", "i"], dtype=np.dtypes.StringDType()))
    where = locate(url, None)
    for name in ("gzip", "lz4"):
        meta = root[name].metadata.to_dict()
        lazy = xr.Variable(("y", "x"), xr.core.indexing.LazilyIndexedArray(
            LazyArray(where, name, meta)))  # fmt: skip
        np.testing.assert_array_equal(lazy[1:, ::2].values, values[1:, ::2])
    names = LazyArray(where, "names", root["names"].metadata.to_dict())
    got = xr.Variable("t", xr.core.indexing.LazilyIndexedArray(names)).values
    assert got.dtype == object
    assert got.tolist() == ["g", "r", "i"]


@pytest.mark.parametrize("planes", ["data", "all"])
def test_open_store_reads_what_open_cube_reads_before_and_after_finalize(
    url: str, planes: str
) -> None:
    init_store(url)
    cubes = {
        oid: synthetic_cube(sides, planes=planes, object_id=oid)
        for oid, sides in [(11, (30, 31, 64)), (12, (64,) * 100)]  # 12: 2+ time chunks
    }
    for cube in cubes.values():
        write_cube(cube, url)
    before = open_store(url)
    finalize_store(url)
    after = open_store(url)  # built from the root's consolidated metadata
    xr.testing.assert_identical(before, after)
    for oid, cube in cubes.items():
        node = after[str(oid)].to_dataset()
        xr.testing.assert_identical(node, open_cube(url, oid).compute())
        xr.testing.assert_identical(node, cube)
        assert node.kind.dtype == object
        assert node.band.values.dtype == object
        picked = node.cutout.isel(time=slice(1, None, 2), kind=-1, y=slice(3, 20))
        np.testing.assert_array_equal(
            picked.values, cube.cutout.isel(time=slice(1, None, 2), kind=-1, y=slice(3, 20))
        )


@pytest.mark.parametrize("finalised", [False, True])
def test_open_cubes_opens_chosen_cubes_like_open_store(url: str, finalised: bool) -> None:
    from finkcube.errors import IncompleteCubeError, NotFoundError
    from finkcube.store import COMPLETE_ATTR, open_cubes

    init_store(url)
    for oid in (3, 4, 5):
        write_cube(synthetic_cube((30, 32), object_id=oid, seed=oid), url)
    zstore = zarr.storage.FsspecStore.from_url(url) if "://" in url else url
    del zarr.open_group(zstore, path="5", mode="r+").attrs[COMPLETE_ATTR]  # 5: as if cut short
    if finalised:
        finalize_store(url)
    cubes = open_cubes(url, ["4", 3])
    assert list(cubes) == [4, 3]
    tree = open_store(url)
    for oid, cube in cubes.items():
        xr.testing.assert_identical(cube, tree[str(oid)].to_dataset())
        xr.testing.assert_identical(cube.compute(), open_cube(url, oid).compute())
    with pytest.raises(IncompleteCubeError, match="diaObjectId 5"):
        open_cubes(url, [3, 5])
    with pytest.raises(NotFoundError, match="no cube of diaObjectId 6"):
        open_cubes(url, [6])
