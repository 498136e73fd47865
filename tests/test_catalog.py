"""The store's catalog: one row per cube, kept current by every write, rebuilt when stale.

The oracle is plain xarray: each cube opened at its group (``xr.open_zarr(f"{store}/{ID}")``)
and summarised with numpy here, compared with the catalog plain xarray reads
(``xr.open_zarr(f"{store}/catalog")``) and with the one :func:`finkcube.open_store` gives.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr

import finkcube
from finkcube.emulator import Emulator
from finkcube.errors import NotFoundError
from finkcube.store import (
    StoreView,
    delete_cube,
    finalize_store,
    init_store,
    open_store,
    repair_store,
    write_cube,
)
from tests._cubes import synthetic_cube

HARNESS = Path(__file__).with_name("_crash.py")
SCRIPT = Path(sys.executable).with_name("finkcube")


def _oracle(store: str) -> dict[int, dict[str, Any]]:
    """Each complete cube's row, from plain xarray and numpy."""
    rows = {}
    for name in os.listdir(store):
        if not name.isdigit():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                cube = xr.open_zarr(f"{store}/{name}")
            except (FileNotFoundError, KeyError, ValueError):
                continue  # no group document: an interrupted write
        if cube.attrs.get("finkcube_complete") is not True:
            continue
        times = cube.time.values
        missing = len(cube.attrs.get("missing_diaSourceIds", []))
        ra = cube.ra.values if "ra" in cube.variables else np.array([np.nan])
        rows[int(name)] = {
            "epochs": cube.sizes["time"],
            "canvas": cube.sizes["y"],
            "planes": ",".join(str(p) for p in cube.plane.values),
            "bands": Counter(str(b) for b in cube.band.values),
            "first_time": times.min() if times.size else np.nan,
            "last_time": times.max() if times.size else np.nan,
            "ra": np.nanmean(ra) if np.isfinite(ra).any() else np.nan,
            "missing": missing,
            "complete": missing == 0,
            "completeness": cube.sizes["time"] / (cube.sizes["time"] + missing),
        }
    return rows


def _assert_matches(catalog: xr.Dataset, store: str) -> None:
    expected = _oracle(store)
    assert catalog.object.values.tolist() == sorted(expected)
    bands = [str(b) for b in catalog.band.values]
    for i, oid in enumerate(catalog.object.values.tolist()):
        want, row = expected[oid], catalog.isel(object=i)
        for name in ("epochs", "canvas", "missing", "complete"):
            assert row[name].item() == want[name], (oid, name)
        assert str(row.planes.item()) == want["planes"]
        for name in ("first_time", "last_time", "ra", "completeness"):
            np.testing.assert_allclose(row[name].item(), want[name], err_msg=f"{oid} {name}")
        got = {b: int(n) for b, n in zip(bands, row.band_epochs.values, strict=True) if n}
        assert got == dict(want["bands"])
        assert set(str(row.bands.item()).split(",")) == set(want["bands"])


def _plain_catalog(store: str) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return xr.open_zarr(f"{store}/catalog").load()


@pytest.fixture
def store(tmp_path: Path) -> str:
    path = str(tmp_path / "cubes.zarr")
    init_store(path)
    return path


def test_the_catalog_is_each_cubes_row(store: str) -> None:
    write_cube(synthetic_cube((30, 41, 64), object_id=3), store)
    write_cube(synthetic_cube((32,) * 7, planes="all", object_id=2**62 + 1), store)
    cube = synthetic_cube((30, 31), object_id=5)
    cube["ra"] = ("time", [10.0, 10.5])
    write_cube(cube.assign_attrs(missing_diaSourceIds=["1", "2"]), store)
    finalize_store(store)
    _assert_matches(_plain_catalog(store), store)
    view = open_store(store)
    assert view.current
    xr.testing.assert_identical(view.catalog, _plain_catalog(store).astype(view.catalog.dtypes))
    assert view.catalog.ra.sel(object=5).item() == 10.25
    assert view.catalog.completeness.sel(object=5).item() == 0.5


def test_writes_and_deletes_mark_it_stale_and_finalize_rebuilds_it(store: str) -> None:
    for oid in (1, 2, 3):
        write_cube(synthetic_cube((30,) * oid, object_id=oid), store)
    finalize_store(store)
    write_cube(synthetic_cube((30,) * 5, object_id=2), store)  # an update
    delete_cube(store, 3)
    write_cube(synthetic_cube(object_id=4), store)
    view = open_store(store)
    assert not view.current  # the store's catalog is stale: rebuilt in memory
    _assert_matches(view.catalog, store)
    assert _plain_catalog(store).object.values.tolist() == [1, 2, 3]  # stale on disk
    finalize_store(store)
    _assert_matches(_plain_catalog(store), store)
    assert open_store(store).current


def test_a_catalog_that_no_longer_lists_the_groups_is_stale(store: str) -> None:
    for oid in (1, 2):
        write_cube(synthetic_cube(object_id=oid), store)
    finalize_store(store)
    shutil.rmtree(Path(store) / "2")  # removed by hand, behind finkcube's back
    view = open_store(store)
    assert not view.current
    assert list(view) == [1]
    assert repair_store(store) == []
    assert open_store(store).current
    _assert_matches(_plain_catalog(store), store)


def test_a_store_of_an_older_finkcube_gets_a_catalog(store: str) -> None:
    # Older stores: no catalog, no rows in the groups, the root's metadata consolidated.
    cube = synthetic_cube((30, 40), object_id=8)
    cube.assign_attrs(finkcube_complete=True).to_zarr(
        store, group="8", mode="w", zarr_format=3, consolidated=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: consolidated metadata is not in the spec
        zarr.consolidate_metadata(store, path="8")
        zarr.consolidate_metadata(store)
    view = open_store(store)
    assert not view.current
    _assert_matches(view.catalog, store)
    finalize_store(store)
    root = json.loads((Path(store) / "zarr.json").read_bytes())
    assert "consolidated_metadata" not in root
    _assert_matches(_plain_catalog(store), store)


def test_the_view_selects_opens_and_gives_a_tree(store: str) -> None:
    cubes = {
        1: synthetic_cube((30,) * 3, object_id=1),
        2: synthetic_cube((30,) * 12, object_id=2),
        3: synthetic_cube((30, 31), planes="all", object_id=3),
    }
    for cube in cubes.values():
        write_cube(cube, store)
    finalize_store(store)
    view = finkcube.open_store(store)
    assert isinstance(view, StoreView)
    assert (len(view), list(view), 2 in view, "2" in view, 9 in view) == (
        3,
        [1, 2, 3],
        True,
        True,
        False,
    )
    xr.testing.assert_identical(view[2].load(), cubes[2])
    with pytest.raises(NotFoundError, match="diaObjectId 9"):
        view[9]

    # Oracles: each condition computed from the cubes themselves.
    def bands(c: xr.Dataset) -> Counter[str]:
        return Counter(str(b) for b in c.band.values)

    assert list(view.where(band="u")) == [o for o, c in cubes.items() if bands(c)["u"]]
    assert list(view.where(band="g", min_epochs=2)) == [
        o for o, c in cubes.items() if bands(c)["g"] >= 2
    ]
    assert list(view.where(min_epochs=3, max_epochs=5)) == [1]
    assert list(view.where(planes="variance")) == [3]
    assert list(view.where(view.catalog.epochs > 2, complete=True)) == [1, 2]
    late = float(cubes[2].time.values[-1])
    assert list(view.where(start=late)) == [
        o for o, c in cubes.items() if c.time.values.max() >= late
    ]
    with pytest.raises(finkcube.InputError, match="one boolean per object"):
        view.where([True])
    tree = view.where(band="y").to_datatree()
    assert sorted(tree.children) == ["2", "catalog"]
    np.testing.assert_array_equal(tree["2"].cutout.values, cubes[2].cutout.values)
    assert tree["catalog"].to_dataset().object.values.tolist() == [2]
    assert "3 objects" in repr(view)


def test_finkcube_info_repair_rewrites_the_catalog(store: str) -> None:
    write_cube(synthetic_cube(object_id=1), store)
    finalize_store(store)
    write_cube(synthetic_cube((30, 31), object_id=2), store)  # stale now
    (Path(store) / "catalog" / "zarr.json").unlink()  # and lost
    done = subprocess.run(
        [str(SCRIPT), "info", store, "--repair"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "catalog rewritten" in done.stdout
    assert "catalog current" in done.stdout
    assert done.stderr == ""
    _assert_matches(_plain_catalog(store), store)
    assert open_store(store).current


@pytest.mark.slow
def test_the_catalog_of_a_build_killed_and_rerun_is_the_groups(tmp_path: Path) -> None:
    with Emulator() as emu:
        ids = emu.catalog.bulk_objects(4, sources=(3, 5))
        argv = ["build", *map(str, ids), "--url", emu.url, "--workers", "2", "--out"]
        counted = str(tmp_path / "counted.zarr")
        spec: dict[str, Any] = {"jobs": [{"argv": [*argv, counted], "root": counted, "k": 0,
                                          "count": str(tmp_path / "count.json")}]}  # fmt: skip
        _harness(spec, tmp_path)
        ops = json.loads((tmp_path / "count.json").read_text())["ops"]
        stores = {k: str(tmp_path / f"k{k}.zarr") for k in sorted({ops // 3, ops // 2, ops - 1})}
        jobs = [{"argv": [*argv, s], "root": s, "k": k, "count": ""} for k, s in stores.items()]
        assert _harness({"jobs": jobs}, tmp_path) == [9] * len(jobs)
        for path in stores.values():
            view = open_store(path)
            _assert_matches(view.catalog, path)  # stale after the kill: rebuilt in memory
            again = subprocess.run(
                [str(SCRIPT), *argv, path], capture_output=True, text=True, timeout=300, env=_env()
            )
            assert again.returncode == 0, again.stderr
            _assert_matches(_plain_catalog(path), path)
            assert _plain_catalog(path).object.values.tolist() == sorted(ids)
            assert open_store(path).current


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINKCUBE_")}
    env.update({"FINKCUBE_RETRIES": "0", "FINKCUBE_TIMEOUT": "10"})
    return env


def _harness(spec: dict[str, Any], tmp: Path) -> list[int]:
    path = tmp / f"spec-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, str(HARNESS), str(path)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    statuses: list[int] = json.loads(done.stdout.strip().splitlines()[-1])
    return statuses
