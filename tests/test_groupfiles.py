"""Tests of finkcube.store.groupfiles: a cube's Zarr group encoded without zarr-python.

Every cube finkcube makes must give the files xarray's ``to_zarr`` and zarr-python give:
the same keys (chunks equal to the fill value left out), equal ``zarr.json`` documents and
byte-identical chunks. What lies outside the plain layout gets None (xarray writes it), and
``write_cube`` still stores it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import xarray as xr

from finkcube.errors import InputError
from finkcube.store import init_store, list_objects, open_cube, write_cube
from finkcube.store.groupfiles import group_files
from finkcube.store.location import _staged
from finkcube.store.write import _encoding
from tests._cubes import synthetic_cube


def assert_same_files(ds: xr.Dataset) -> dict[str, bytes]:
    """Check group_files against xarray + zarr on ``ds``; return finkcube's files."""
    encoding = _encoding(ds)
    ours = group_files(ds, encoding)
    assert ours is not None, "the cube should be in the plain layout"
    theirs = _staged("g", ds, encoding)
    assert sorted(ours) == sorted(theirs)
    for key, data in theirs.items():
        if key.endswith("zarr.json"):
            assert orjson.loads(ours[key]) == orjson.loads(data), key
        else:
            assert ours[key] == data, key
    assert next(iter(ours)) == "zarr.json"  # the group's document comes first
    return ours


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"planes": "all", "mask_every": 2},
        {"sides": (30,) * 700},  # several time chunks, the last one partial
        {"sides": (102, 30, 64) * 40, "planes": "all", "size": 48},  # cropped stamps
    ],
    ids=["data", "all-planes", "700-epochs", "cropped"],
)
def test_cubes_encode_as_xarray_and_zarr_do(options: dict[str, Any]) -> None:
    ds = synthetic_cube(**options).drop_encoding()
    files = assert_same_files(ds)
    assert any("/c/" in key for key in files)


def test_chunks_of_fill_values_are_left_out_as_zarr_does() -> None:
    ds = synthetic_cube((30,) * 700).drop_encoding()
    steps = _encoding(ds)["cutout"]["chunks"][0]
    assert steps < 700
    ds["cutout"][:steps] = np.nan  # the first time chunk holds only the fill value
    ds.coords["zeros"] = ("time", np.zeros(700, np.int64))
    ds.coords["blank"] = ("time", np.array([""] * 700, dtype=object))
    ds.coords["flag"] = ("time", np.zeros(700, bool))
    files = assert_same_files(ds)
    assert "cutout/c/0/0/0/0/0" not in files
    assert "cutout/c/1/0/0/0/0" in files
    assert not any(key.startswith(("zeros/c", "blank/c", "flag/c")) for key in files)


def test_big_endian_and_small_types_are_written_little_endian() -> None:
    ds = synthetic_cube((30, 31)).drop_encoding()
    ds.coords["big"] = ("time", np.array([1.5, np.nan], dtype=">f8"))
    ds.coords["small"] = ("time", np.array([3, 250], dtype=np.uint8))
    ds.coords["word"] = ("time", np.array(["a", "bé"], dtype=np.dtypes.StringDType()))
    assert_same_files(ds)


@pytest.mark.parametrize(
    "change",
    [
        lambda ds: ds.assign_coords(seen=("time", np.arange(ds.sizes["time"]).astype("M8[s]"))),
        lambda ds: ds.assign_attrs(extra=np.arange(3)),
        lambda ds: ds.assign(total=((), 3.0)),
        lambda ds: ds.assign(scaled=ds["side"].assign_attrs(scale_factor=2.0)),
        lambda ds: ds.assign_coords(mixed=("time", [None] + ["a"] * (ds.sizes["time"] - 1))),
    ],
    ids=["datetime", "array-attr", "0-d", "cf-attr", "none-string"],
)
def test_what_lies_outside_the_plain_layout_goes_to_xarray(change: Any, tmp_path: Path) -> None:
    ds = change(synthetic_cube((30, 41)).drop_encoding())
    assert group_files(ds, _encoding(ds)) is None
    store = tmp_path / "s.zarr"
    init_store(store)
    write_cube(ds, store)
    back = open_cube(store, ds.attrs["diaObjectId"]).load()
    np.testing.assert_array_equal(back["cutout"].values, ds["cutout"].values)
    assert set(back.variables) == set(ds.variables)


def test_a_written_cube_reads_back_identical(tmp_path: Path) -> None:
    ds = synthetic_cube((30, 41, 102), planes="all", mask_every=2)
    store = tmp_path / "s.zarr"
    init_store(store)
    write_cube(ds, store)
    back = open_cube(store, ds.attrs["diaObjectId"]).load()
    xr.testing.assert_identical(back.drop_attrs(), ds.drop_attrs())


def test_fixed_width_strings_are_stored_as_variable_length(tmp_path: Path) -> None:
    ds = synthetic_cube((30, 41)).drop_encoding()
    ds.coords["word"] = ("time", np.array(["a", "bé"], dtype="U2"))
    files = group_files(ds, _encoding(ds))
    assert files is not None
    assert orjson.loads(files["word/zarr.json"])["data_type"] == "string"
    store = tmp_path / "s.zarr"
    init_store(store)
    write_cube(ds, store)
    back = open_cube(store, ds.attrs["diaObjectId"]).load()
    assert [str(w) for w in back["word"].values] == ["a", "bé"]


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
    ds = change(synthetic_cube((30, 41)))
    with pytest.raises(InputError, match="NaN or infinity") as info:
        write_cube(ds, store)
    assert named in str(info.value)
    assert list_objects(store) == []
    assert sorted(p.name for p in store.iterdir()) == ["zarr.json"]
