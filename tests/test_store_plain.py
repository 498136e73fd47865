"""Tests that finkcube's stores are plain Zarr: what xarray and zarr-python write and read.

The oracles are xarray and zarr-python themselves: the files of a cube equal those that
``Dataset.to_zarr`` and ``zarr.consolidate_metadata`` write for it, byte for byte, and
plain ``xr.open_zarr`` / ``xr.open_datatree`` / ``zarr.open_group`` read every store
finkcube writes, with warnings as errors, called as the README shows them.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import xarray as xr
import zarr

from finkcube.errors import InputError
from finkcube.store import (
    COMPLETE_ATTR,
    delete_cube,
    finalize_store,
    init_store,
    list_objects,
    open_cube,
    write_cube,
)
from finkcube.store.encoding import chunk_encoding
from finkcube.store.layout import SUMMARY_ATTR
from tests._cubes import synthetic_cube

#: Cubes of every shape finkcube makes, keyed by test id.
CUBES: dict[str, Callable[[], xr.Dataset]] = {
    "data": lambda: synthetic_cube((30, 31), object_id=11),
    "all-planes": lambda: synthetic_cube((32, 40), planes="all", mask_every=2, object_id=12),
    "700-epochs": lambda: synthetic_cube((30,) * 700, object_id=13),
    "cropped": lambda: synthetic_cube((102, 30, 64) * 4, planes="all", size=48, object_id=14),
}


@pytest.fixture(params=["local", "memory"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An initialised store on disk or in fsspec's memory filesystem."""
    if request.param == "local":
        name = str(tmp_path / "cubes.zarr")
    else:
        name = f"memory://plain-{uuid.uuid4().hex}.zarr"
    init_store(name)
    yield name
    if request.param == "memory":
        fsspec.filesystem("memory").rm(name.removeprefix("memory://"), recursive=True)


def _files(url: str, under: str = "") -> dict[str, bytes]:
    """Every file of a store (or of one of its groups), keyed from the store's root."""
    fs, root = fsspec.core.url_to_fs(url)
    top = f"{root}/{under}".rstrip("/")
    return {p[len(root) + 1 :]: fs.cat_file(p) for p in fs.find(top)}


def _zarr_store(url: str) -> Any:
    return zarr.storage.FsspecStore.from_url(url) if "://" in url else url


@pytest.mark.parametrize("kind", list(CUBES))
def test_a_cube_is_the_files_xarray_and_zarr_write_for_it(
    kind: str, url: str, tmp_path: Path
) -> None:
    cube = CUBES[kind]()
    oid = str(cube.attrs["diaObjectId"])
    write_cube(cube, url)
    theirs = str(tmp_path / "by-xarray.zarr")
    # The catalog row is checked against the cube in tests/test_catalog.py.
    row = zarr.open_group(_zarr_store(url), path=oid, mode="r").attrs[SUMMARY_ATTR]
    plain = cube.drop_encoding().assign_attrs({COMPLETE_ATTR: True, SUMMARY_ATTR: row})
    plain.to_zarr(
        theirs,
        group=oid,
        mode="w",
        zarr_format=3,
        consolidated=False,
        encoding=chunk_encoding(plain),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: consolidated metadata is not in the spec
        zarr.consolidate_metadata(theirs, path=oid)
    ours, expected = _files(url, oid), _files(theirs, oid)
    assert sorted(ours) == sorted(expected)
    for key, data in expected.items():
        assert ours[key] == data, key


@pytest.mark.parametrize("finalised", [False, True])
def test_plain_xarray_and_zarr_read_every_store_finkcube_writes(url: str, finalised: bool) -> None:
    cubes = {int(c.attrs["diaObjectId"]): c for c in (make() for make in CUBES.values())}
    for cube in cubes.values():
        write_cube(cube, url)
    rewritten = synthetic_cube((30, 31, 33), object_id=11)
    write_cube(rewritten, url)  # an update replaces a cube
    cubes[11] = rewritten
    write_cube(synthetic_cube(object_id=15), url)
    delete_cube(url, 15)
    if finalised:
        finalize_store(url)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for oid, cube in cubes.items():
            # The calls the README shows: the group's own consolidated metadata, or none.
            plain = xr.open_zarr(f"{url}/{oid}").load()
            xr.testing.assert_equal(plain, cube)
            assert plain.attrs[COMPLETE_ATTR] is True
            unconsolidated = xr.open_zarr(url, group=str(oid), consolidated=False).load()
            xr.testing.assert_identical(unconsolidated, plain)
            group = zarr.open_group(_zarr_store(url), path=str(oid), mode="r")
            np.testing.assert_array_equal(group["cutout"][...], cube.cutout.values)
        tree = xr.open_datatree(url, engine="zarr", consolidated=False)
        root = zarr.open_group(_zarr_store(url), mode="r")
        members = dict(root.members(max_depth=None))
        if finalised:
            catalog = xr.open_zarr(f"{url}/catalog").load()
            assert catalog.object.values.tolist() == sorted(cubes)
    objects = sorted(map(str, cubes))
    expected = sorted([*objects, "catalog"] if finalised else objects)
    assert sorted(tree.children) == expected
    assert sorted(name for name in members if "/" not in name) == expected
    for oid, cube in cubes.items():
        np.testing.assert_array_equal(members[f"{oid}/cutout"][...], cube.cutout.values)
        xr.testing.assert_equal(tree[str(oid)].to_dataset(), cube)


def test_the_root_is_not_consolidated_so_plain_xarray_warns_at_the_root(url: str) -> None:
    # Why the README shows xr.open_zarr(f"{store}/{ID}"): the root carries no consolidated
    # metadata (it would grow with the store), and xarray's default reads the root's.
    write_cube(synthetic_cube(object_id=11), url)
    finalize_store(url)
    assert zarr.open_group(_zarr_store(url), mode="r").metadata.consolidated_metadata is None
    with pytest.warns(RuntimeWarning, match="consolidated metadata"):
        xr.open_zarr(url, group="11")


@pytest.mark.parametrize(
    "change",
    [
        lambda ds: ds.assign_coords(seen=("time", np.arange(ds.sizes["time"]).astype("M8[s]"))),
        lambda ds: ds.assign_attrs(extra=np.arange(3)),
        lambda ds: ds.assign(total=((), 3.0)),
        lambda ds: ds.assign(scaled=ds["side"].assign_attrs(scale_factor=2.0)),
        lambda ds: ds.assign_coords(word=("time", np.array(["a", "bé"], dtype="U2"))),
    ],
    ids=["datetime", "array-attr", "0-d", "cf-attr", "fixed-width-strings"],
)
def test_unusual_cubes_round_trip_without_warnings(change: Any, tmp_path: Path) -> None:
    ds = change(synthetic_cube((30, 41)))
    store = tmp_path / "s.zarr"
    init_store(store)
    write_cube(ds, store)
    back = open_cube(store, ds.attrs["diaObjectId"]).load()
    np.testing.assert_array_equal(back["cutout"].values, ds["cutout"].values)
    assert set(back.variables) == set(ds.variables)
    if "word" in ds.coords:
        assert [str(w) for w in back["word"].values] == ["a", "bé"]
        word = zarr.open_array(str(store), path=f"{ds.attrs['diaObjectId']}/word", mode="r")
        assert word.metadata.to_dict()["data_type"] == "string"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda ds: ds.assign_attrs(zero_point=float("nan")), "'zero_point' of the cube"),
        (lambda ds: ds.assign_attrs(limits={"low": [0.0, -np.inf]}), "'limits' of the cube"),
        (lambda ds: ds.assign(side=ds["side"].assign_attrs(scale=np.float32("inf"))), "'side'"),
    ],
    ids=["nan", "nested-inf", "variable"],
)
def test_a_non_finite_attribute_is_refused_before_anything_is_written(
    change: Any, named: str, tmp_path: Path
) -> None:
    store = tmp_path / "s.zarr"
    init_store(store)
    write_cube(synthetic_cube((30, 41), object_id=2), store)
    finalize_store(store)
    before = _files(str(store))
    ds = change(synthetic_cube((30, 41), object_id=2))
    with pytest.raises(InputError, match="NaN or infinity") as info:
        write_cube(ds, store)
    assert named in str(info.value)
    assert _files(str(store)) == before  # not even the catalog was marked stale
    assert list_objects(store) == [2]
