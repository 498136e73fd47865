"""The ML dataset over a store: lazy opening, items equal to the cubes, labels, export."""

from __future__ import annotations

import csv
import importlib.util
import pickle
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr

import finkcube.accessor  # noqa: F401  (registers ds.fink)
from finkcube.errors import InputError
from finkcube.ml import CubeDataset
from finkcube.names import CUTOUT_VAR, KINDS
from finkcube.store import init_store, open_cube, write_cube
from tests._cubes import BASE_OBJECT_ID, synthetic_cube

#: Three objects with different canvases (64, 33 and 50 pixels).
OBJECTS = {
    BASE_OBJECT_ID + 1: (30, 41, 64, 35),
    BASE_OBJECT_ID + 2: (30, 30, 33),
    BASE_OBJECT_ID + 3: (50, 44),
}
SIZE = 48


def raise_if_computed(*args: object, **kwargs: object) -> None:
    """A dask scheduler that fails the test: nothing should have been computed."""
    raise AssertionError("dask computed something that should have stayed lazy")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ml") / "cubes.zarr"
    init_store(path)
    for seed, (oid, sides) in enumerate(OBJECTS.items()):
        write_cube(synthetic_cube(sides, object_id=oid, planes="all", seed=seed), path)
    return path


@pytest.fixture(scope="module")
def same_canvas_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ml") / "same.zarr"
    init_store(path)
    for oid, sides in OBJECTS.items():
        write_cube(synthetic_cube(sides, object_id=oid, size=40), path)
    return path


def expected_item(
    store: Path,
    oid: int,
    t: int,
    *,
    kinds: tuple[str, ...] = KINDS,
    planes: tuple[str, ...] = ("data",),
    normalize: str | None = None,
    fill: float | None = 0.0,
) -> np.ndarray:
    """The item as the accessor computes it on the cube itself."""
    cube = open_cube(store, oid).fink.resize(SIZE)
    if normalize is not None:
        cube = cube.fink.normalize(normalize, fill=fill)
    stamps = cube[CUTOUT_VAR].isel(time=t).sel(kind=list(kinds), plane=list(planes))
    x = stamps.transpose("kind", "plane", "y", "x").values
    if normalize is None and fill is not None:
        x = np.where(np.isnan(x), fill, x)
    return x.reshape(len(kinds) * len(planes), SIZE, SIZE)


def test_opening_reads_metadata_only(store: Path) -> None:
    with dask.config.set(scheduler=raise_if_computed):
        data = CubeDataset(store, size=SIZE, normalize="robust")
        assert len(data) == sum(len(s) for s in OBJECTS.values())
        assert data.shape == (len(KINDS), SIZE, SIZE)
        assert data.object_ids == tuple(sorted(OBJECTS))


def test_items_equal_the_cubes_after_the_same_resize(store: Path) -> None:
    data = CubeDataset(store, size=SIZE, fill=-1.0)
    i = 0
    for oid, sides in OBJECTS.items():
        for t in range(len(sides)):
            x, target = data[i]
            assert x.dtype == np.float32
            assert x.shape == data.shape
            np.testing.assert_array_equal(x, expected_item(store, oid, t, fill=-1.0))
            assert target == oid
            assert data.locate(i) == (oid, t)
            i += 1
    np.testing.assert_array_equal(data[-1][0], data[len(data) - 1][0])


def test_a_shuffled_batch_equals_its_items_read_one_by_one(store: Path) -> None:
    data = CubeDataset(store, size=SIZE, normalize="robust", meta=True)
    order = [int(i) for i in np.random.default_rng(7).permutation(len(data))]
    batch = data.__getitems__([*order, order[0]])  # every object, a repeat at the end
    assert len(batch) == len(order) + 1
    for i, (x, target, meta) in zip([*order, order[0]], batch, strict=True):
        oid, t = data.locate(i)
        np.testing.assert_array_equal(x, expected_item(store, oid, t, normalize="robust"))
        cube = xr.open_zarr(store, group=str(oid), consolidated=False)
        assert target == meta["diaObjectId"] == oid
        assert meta["diaSourceId"] == int(cube["diaSourceId"].values[t])
        np.testing.assert_array_equal(meta["psfFlux"], cube["psfFlux"].values[t])
        np.testing.assert_array_equal(meta["snr"], cube["snr"].values[t])


def test_in_memory_serves_the_same_items(store: Path) -> None:
    lazy = CubeDataset(store, size=SIZE, transform=np.negative)
    held = CubeDataset(store, size=SIZE, transform=np.negative, in_memory=True)
    order = [int(i) for i in np.random.default_rng(3).permutation(len(lazy))]
    for (a, ta), (b, tb) in zip(lazy.__getitems__(order), held.__getitems__(order), strict=True):
        np.testing.assert_array_equal(a, b)
        assert ta == tb
    np.testing.assert_array_equal(held[-1][0], lazy[len(lazy) - 1][0])
    clone = pickle.loads(pickle.dumps(held))  # its copy of the items does not travel
    assert len(pickle.dumps(held)) < lazy.shape[1] ** 2 * 4
    np.testing.assert_array_equal(clone[2][0], lazy[2][0])


def test_nan_kept_when_fill_is_none(store: Path) -> None:
    x, _ = CubeDataset(store, size=SIZE, fill=None)[0]
    assert np.isnan(x).any()
    np.testing.assert_array_equal(x, expected_item(store, BASE_OBJECT_ID + 1, 0, fill=None))


@pytest.mark.parametrize("method", ["robust", "minmax"])
def test_normalised_items_equal_the_accessor(store: Path, method: str) -> None:
    data = CubeDataset(store, size=SIZE, normalize=method)
    x, _ = data[5]
    oid, t = data.locate(5)
    assert not np.isnan(x).any()
    np.testing.assert_allclose(x, expected_item(store, oid, t, normalize=method), rtol=1e-6)


def test_chosen_kinds_and_planes_stack_channels_first(store: Path) -> None:
    kinds, planes = ("Difference", "Science"), ("variance", "data")
    data = CubeDataset(store, kinds=kinds, planes=planes, size=SIZE)
    assert data.channels == [
        ("Difference", "variance"),
        ("Difference", "data"),
        ("Science", "variance"),
        ("Science", "data"),
    ]
    x, _ = data[2]
    assert x.shape == (4, SIZE, SIZE)
    oid, t = data.locate(2)
    np.testing.assert_array_equal(x, expected_item(store, oid, t, kinds=kinds, planes=planes))


def test_normalising_a_variance_only_stack_reads_data_for_the_statistics(store: Path) -> None:
    data = CubeDataset(store, planes=["variance"], size=SIZE, normalize="robust")
    x, _ = data[1]
    assert x.shape == (len(KINDS), SIZE, SIZE)
    full = expected_item(store, *data.locate(1), planes=("variance", "data"), normalize="robust")
    np.testing.assert_allclose(x, full[0::2], rtol=1e-6)


def test_labels_become_targets(store: Path) -> None:
    labels = {oid: f"class-{k}" for k, oid in enumerate(OBJECTS)}
    data = CubeDataset(store, list(OBJECTS)[::-1], size=SIZE, labels=labels)
    assert data.object_ids == tuple(list(OBJECTS)[::-1])
    assert data[0][1] == labels[data.object_ids[0]]
    assert data.targets.tolist() == [labels[int(o)] for o in data.index["diaObjectId"]]
    with pytest.raises(InputError, match="no label"):
        CubeDataset(store, size=SIZE, labels={BASE_OBJECT_ID + 1: 0})


def test_index_table_matches_the_cube_coordinates(store: Path) -> None:
    data = CubeDataset(store, size=SIZE)
    table = data.index
    assert table.dtype.names == ("diaObjectId", "diaSourceId", "time", "band")
    for oid in OBJECTS:
        rows = table[table["diaObjectId"] == oid]
        cube = open_cube(store, oid)
        np.testing.assert_array_equal(rows["diaSourceId"], cube["diaSourceId"].values)
        np.testing.assert_array_equal(rows["time"], cube["time"].values)
        assert rows["band"].tolist() == [str(b) for b in cube["band"].values]


def test_canvases_must_agree_without_size(store: Path, same_canvas_store: Path) -> None:
    with pytest.raises(InputError, match="pass size="):
        CubeDataset(store)
    data = CubeDataset(same_canvas_store)
    assert data.size == 40
    cube = open_cube(same_canvas_store, BASE_OBJECT_ID + 2)
    expected = np.nan_to_num(cube[CUTOUT_VAR].isel(time=1, plane=0).values, nan=0.0)
    np.testing.assert_array_equal(data[len(OBJECTS[BASE_OBJECT_ID + 1]) + 1][0], expected)


def test_bad_options_are_input_errors(store: Path, same_canvas_store: Path) -> None:
    for options in (
        {"kinds": ["Sky"]},
        {"planes": ["data", "data"]},
        {"size": 0},
        {"normalize": "zscore"},
    ):
        with pytest.raises(InputError):
            CubeDataset(store, **{"size": SIZE, **options})  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no plane 'variance'"):
        CubeDataset(same_canvas_store, planes=["variance"])


def test_indexing_errors(store: Path) -> None:
    data = CubeDataset(store, size=SIZE)
    with pytest.raises(IndexError):
        data[len(data)]
    with pytest.raises(TypeError):
        data["0"]  # type: ignore[index]
    # The sequence protocol (iteration stops at IndexError) works.
    assert sum(1 for _ in data) == len(data)


def test_npz_round_trip(store: Path, tmp_path: Path) -> None:
    labels = {oid: k for k, oid in enumerate(OBJECTS)}
    data = CubeDataset(store, size=SIZE, normalize="robust", labels=labels)
    out = data.to_numpy(tmp_path / "stamps.npz")
    with np.load(out) as saved:
        assert sorted(saved.files) == sorted(
            ["x", "diaObjectId", "diaSourceId", "time", "band", "label"]
        )
        assert saved["x"].shape == (len(data), *data.shape)
        for i in range(len(data)):
            np.testing.assert_array_equal(saved["x"][i], data[i][0])
        for name in ("diaObjectId", "diaSourceId", "time", "band"):
            np.testing.assert_array_equal(saved[name], data.index[name])
        np.testing.assert_array_equal(saved["label"], data.targets)


def test_npy_with_csv_table(store: Path, tmp_path: Path) -> None:
    data = CubeDataset(store, kinds=["Difference"], size=SIZE)
    out = data.to_numpy(tmp_path / "stamps.npy")
    x = np.load(out)
    assert x.shape == (len(data), 1, SIZE, SIZE)
    np.testing.assert_array_equal(x[3], data[3][0])
    with out.with_suffix(".csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(data)
    assert [int(r["diaSourceId"]) for r in rows] == data.index["diaSourceId"].tolist()
    assert [float(r["time"]) for r in rows] == data.index["time"].tolist()
    assert [int(r["label"]) for r in rows] == data.index["diaObjectId"].tolist()
    with pytest.raises(InputError, match="npz"):
        data.to_numpy(tmp_path / "stamps.h5")


def test_mixed_labels_are_refused_on_export(store: Path, tmp_path: Path) -> None:
    labels = dict(zip(OBJECTS, [1, None, {"class": 3}], strict=True))
    data = CubeDataset(store, size=SIZE, labels=labels)
    with pytest.raises(InputError, match="labels"):
        data.to_numpy(tmp_path / "mixed.npz")


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_as_torch_without_torch_says_how_to_get_it(store: Path) -> None:
    with pytest.raises(InputError, match="pip install torch"):
        CubeDataset(store, size=SIZE).as_torch()


def test_as_torch_gives_a_torch_dataset(store: Path) -> None:
    torch = pytest.importorskip("torch")
    data = CubeDataset(store, size=SIZE)
    wrapped = data.as_torch()
    assert isinstance(wrapped, torch.utils.data.Dataset)
    assert len(wrapped) == len(data)
    x, target = wrapped[0]
    assert isinstance(x, torch.Tensor)
    np.testing.assert_array_equal(x.numpy(), data[0][0])
    assert target == data[0][1]


def test_accessor_works_on_a_lazy_store_cube(store: Path) -> None:
    cube = open_cube(store, BASE_OBJECT_ID + 1)
    assert cube[CUTOUT_VAR].chunks is not None
    with dask.config.set(scheduler=raise_if_computed):
        out = cube.fink.resize(SIZE).fink.normalize()
    assert isinstance(out, xr.Dataset)
    assert out[CUTOUT_VAR].shape[2:4] == (SIZE, SIZE)
