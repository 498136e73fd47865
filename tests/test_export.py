"""Training sets: ``finkcube.ml.export`` and ``finkcube export`` against the cubes themselves.

The oracle reads each cube with plain xarray, takes every stamp back out of its canvas at
the cube's documented offset ``(S - s) // 2`` and crops or pads it to the training set's
side with plain numpy.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from finkcube import build_store, list_objects
from finkcube.cli import main
from finkcube.emulator import Emulator
from finkcube.errors import InputError
from finkcube.ml import CubeDataset, export

SIZE = 40


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("export") / "cubes.zarr"
    with Emulator() as emu:
        names = ("small", "mixed_sizes", "nan_edges")
        report = build_store([emu.catalog.named(n) for n in names], path, url=emu.url)
        assert not report.failed
    return path


def plain_cube(store: Path, oid: int) -> xr.Dataset:
    return xr.open_zarr(store, group=str(oid), consolidated=False).load()


def expected_stamp(canvas: np.ndarray, side: int, size: int) -> np.ndarray:
    """The stamp of ``side`` taken out of its canvas, centre-cropped or NaN-padded to ``size``."""
    s_canvas = canvas.shape[-1]
    start = (s_canvas - side) // 2
    stamp = canvas[start : start + side, start : start + side]
    out = np.full((size, size), np.nan, dtype=np.float32)
    if side <= size:
        at = (size - side) // 2
        out[at : at + side, at : at + side] = stamp
    else:
        at = (side - size) // 2
        out[:] = stamp[at : at + size, at : at + size]
    return out


def test_export_equals_its_cubes(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.zarr"
    channels = ["Difference/data", "Science/data"]
    report = export(store, out, channels=channels, size=SIZE, fill=None)
    ds = xr.open_zarr(out)
    assert ds.attrs["finkcube_training_set"] == 1
    assert ds.stamps.dims == ("sample", "channel", "y", "x")
    assert ds.stamps.dtype == np.float32
    assert ds.channel.values.tolist() == channels
    ids = list_objects(store)
    row = 0
    for oid in ids:
        cube = plain_cube(store, oid)
        n = cube.sizes["time"]
        rows = slice(row, row + n)
        assert (ds.diaObjectId.values[rows] == oid).all()
        np.testing.assert_array_equal(ds.diaSourceId.values[rows], cube.diaSourceId.values)
        np.testing.assert_array_equal(ds.time.values[rows], cube.time.values)
        np.testing.assert_array_equal(ds.side.values[rows], cube.side.values)
        np.testing.assert_array_equal(ds.psfFlux.values[rows], cube.psfFlux.values)
        assert [str(b) for b in ds.band.values[rows]] == [str(b) for b in cube.band.values]
        for t in range(n):
            for c, kind in enumerate(["Difference", "Science"]):
                canvas = cube.cutout.sel(kind=kind, plane="data").values[t]
                np.testing.assert_array_equal(
                    ds.stamps.values[row + t, c],
                    expected_stamp(canvas, int(cube.side.values[t]), SIZE),
                )
        row += n
    assert report.samples == row == ds.sizes["sample"]
    assert report.objects == len(ids)
    group = zarr.open_group(out, mode="r")  # plain zarr-python opens it too, quietly
    assert group["stamps"].shape == (row, 2, SIZE, SIZE)


@pytest.mark.parametrize(("epochs", "picked"), [("first", [0]), ("last", [-1]), (2, [-2, -1])])
def test_epochs_per_object(
    store: Path, tmp_path: Path, epochs: str | int, picked: list[int]
) -> None:
    out = tmp_path / "some.zarr"
    export(store, out, size=SIZE, epochs=epochs)
    ds = xr.open_zarr(out)
    expected = []
    for oid in list_objects(store):
        sources = plain_cube(store, oid).diaSourceId.values
        expected.extend(sources[picked].tolist())
    assert ds.diaSourceId.values.tolist() == expected


def test_mask_channels_mark_the_nan_pixels(store: Path, tmp_path: Path) -> None:
    raw, masked = tmp_path / "raw.zarr", tmp_path / "masked.zarr"
    export(store, raw, size=SIZE, fill=None)
    export(store, masked, size=SIZE, fill=-5.0, mask=True)
    a, b = xr.open_zarr(raw), xr.open_zarr(masked)
    assert b.channel.values.tolist()[3:] == [
        f"{k}/data:mask" for k in ("Science", "Template", "Difference")
    ]
    nan = np.isnan(a.stamps.values)
    assert nan.any()
    np.testing.assert_array_equal(b.stamps.values[:, 3:], nan.astype(np.float32))
    np.testing.assert_array_equal(b.stamps.values[:, :3], np.where(nan, -5.0, a.stamps.values))


def labels_of(store: Path) -> dict[int, str]:
    return {oid: f"class-{k}" for k, oid in enumerate(list_objects(store))}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_labels_from_a_file(store: Path, tmp_path: Path, suffix: str) -> None:
    labels = labels_of(store)
    table = pd.DataFrame({"diaObjectId": list(labels), "label": list(labels.values())})
    path = tmp_path / f"labels{suffix}"
    table.to_csv(path, index=False) if suffix == ".csv" else table.to_parquet(path)
    out = tmp_path / "labelled.zarr"
    export(store, out, size=SIZE, labels=path)
    ds = xr.open_zarr(out)
    assert [str(v) for v in ds.label.values] == [labels[int(o)] for o in ds.diaObjectId.values]


def test_labels_that_do_not_match_are_refused(store: Path, tmp_path: Path) -> None:
    labels = labels_of(store)
    first = next(iter(labels))
    with pytest.raises(InputError, match="no label for 1 object"):
        export(
            store,
            tmp_path / "a.zarr",
            size=SIZE,
            labels={k: v for k, v in labels.items() if k != first},
        )
    with pytest.raises(InputError, match="not exported"):
        export(store, tmp_path / "b.zarr", size=SIZE, labels={**labels, 12345: "x"})
    assert not (tmp_path / "a.zarr").exists()


def test_cli_writes_what_export_writes(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export(store, tmp_path / "api.zarr", preset="alerce")
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"diaObjectId": [1], "label": [0]}).to_csv(labels, index=False)
    assert main(["export", str(store), str(tmp_path / "cli.zarr"), "--preset", "alerce"]) == 0
    assert "samples of 6x31x31" in capsys.readouterr().out
    a, b = xr.open_zarr(tmp_path / "api.zarr"), xr.open_zarr(tmp_path / "cli.zarr")
    xr.testing.assert_equal(a.reset_coords().load(), b.reset_coords().load())
    for argv in (
        ["--preset", "nope"],
        ["--preset", "alerce", "--labels", str(labels)],
        ["--channels", "Sky/data", "--size", "20"],
        ["--size", "20", "--epochs", "zero"],
        ["--preset", "alerce"],  # exists already
    ):
        assert main(["export", str(store), str(tmp_path / "cli.zarr"), *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("finkcube: error: ")
        assert err.count("\n") == 1


def _items(args: tuple[CubeDataset, list[int]]) -> list[np.ndarray]:
    data, indices = args
    return [data[i][0] for i in indices]


def _batches(args: tuple[CubeDataset, list[list[int]]]) -> list[tuple[np.ndarray, list[object]]]:
    """What a DataLoader worker does: ``__getitems__`` per batch, then stack the x."""
    data, batches = args
    out = []
    for batch in batches:
        items = data.__getitems__(batch)
        out.append((np.stack([x for x, *_ in items]), [t for _, t, *_ in items]))
    return out


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_dataset_over_a_training_set_pickles_into_worker_processes(
    store: Path, tmp_path: Path, method: str
) -> None:
    out = tmp_path / "train.zarr"
    export(store, out, preset="rubin-reliability", labels=labels_of(store))
    data = CubeDataset(out)
    stamps = xr.open_zarr(out).stamps.values
    assert len(data) == len(stamps)
    assert data.shape == stamps.shape[1:]
    x, target = data[3]
    np.testing.assert_array_equal(x, stamps[3])
    assert target == labels_of(store)[data.locate(3)[0]]
    clone = pickle.loads(pickle.dumps(data))
    np.testing.assert_array_equal(clone[5][0], stamps[5])
    halves = [list(range(0, len(data), 2)), list(range(1, len(data), 2))]
    with multiprocessing.get_context(method).Pool(2) as pool:
        got = pool.map(_items, [(data, h) for h in halves])
        for half, items in zip(halves, got, strict=True):
            for i, item in zip(half, items, strict=True):
                np.testing.assert_array_equal(item, data[i][0])
        # Shuffled batches dealt to 2 workers, as DataLoader(num_workers=2, shuffle=True).
        order = np.random.default_rng(1).permutation(len(data)).tolist()
        batches = [order[b : b + 4] for b in range(0, len(order), 4)]
        labels = xr.open_zarr(out).label.values
        for option in (False, True):
            dataset = CubeDataset(out, in_memory=option)
            shares = pool.map(_batches, [(dataset, batches[w::2]) for w in range(2)])
            for w, share in enumerate(shares):
                for batch, (x, targets) in zip(batches[w::2], share, strict=True):
                    np.testing.assert_array_equal(x, stamps[batch])
                    assert targets == [str(v) for v in labels[batch]]


def test_dataset_items_with_meta_and_transform(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.zarr"
    export(store, out, size=SIZE)
    ds = xr.open_zarr(out)
    for option in (False, True):
        data = CubeDataset(out, meta=True, transform=np.negative, in_memory=option)
        batch = data.__getitems__([4, 1, 4, -1])
        for i, (x, target, meta) in zip([4, 1, 4, -1], batch, strict=True):
            np.testing.assert_array_equal(x, -ds.stamps.values[i])
            assert target == meta["diaObjectId"] == int(ds.diaObjectId.values[i])
            assert meta["diaSourceId"] == int(ds.diaSourceId.values[i])
            assert meta["band"] == str(ds.band.values[i])
            np.testing.assert_array_equal(meta["psfFlux"], ds.psfFlux.values[i])
        x, target, meta = data[2]
        np.testing.assert_array_equal(x, -ds.stamps.values[2])
        assert target == meta["diaObjectId"] == int(ds.diaObjectId.values[2])
    assert data.index["diaSourceId"].tolist() == ds.diaSourceId.values.tolist()


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_torch_dataloader_with_worker_processes(store: Path, tmp_path: Path, method: str) -> None:
    torch = pytest.importorskip("torch")
    out = tmp_path / "train.zarr"
    export(store, out, preset="alerce")
    data = CubeDataset(out)
    loader = torch.utils.data.DataLoader(
        data.as_torch(), batch_size=4, shuffle=True, num_workers=2,
        multiprocessing_context=method,
    )  # fmt: skip
    stamps = xr.open_zarr(out).stamps.values
    seen = 0
    for x, target in loader:
        assert x.shape[1:] == (6, 31, 31)
        for sample, oid in zip(x.numpy(), target.tolist(), strict=True):
            rows = np.flatnonzero((stamps == sample).all(axis=(1, 2, 3)))
            assert len(rows) >= 1  # the sample is one of the training set's (NaN -> 0)
            assert oid in {data.locate(int(r))[0] for r in rows}  # with its own target
        seen += len(x)
    assert seen == len(data)


def test_an_export_of_many_chunks_equals_one_of_a_single_chunk(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import finkcube.ml.training

    one, many = tmp_path / "one.zarr", tmp_path / "many.zarr"
    export(store, one, size=SIZE)
    per_sample = 4 * 3 * SIZE * SIZE
    monkeypatch.setattr(finkcube.ml.training, "CHUNK_BYTES", 3 * per_sample)  # 3 per chunk
    export(store, many, size=SIZE)
    a, b = xr.open_zarr(one), xr.open_zarr(many)
    assert b.stamps.encoding["chunks"][0] == 3 < a.sizes["sample"]
    xr.testing.assert_equal(a.reset_coords().load(), b.reset_coords().load())
    assert len(CubeDataset(many)) == a.sizes["sample"]


def _send_batch(data: CubeDataset, indices: list[int], queue: multiprocessing.Queue) -> None:
    queue.put(np.stack([x for x, _ in data.__getitems__(indices)]))


@pytest.mark.parametrize("in_memory", [False, True])
def test_a_forked_worker_reads_a_dataset_its_parent_has_used(
    store: Path, tmp_path: Path, in_memory: bool
) -> None:
    """DataLoader's fork workers inherit the dataset as it is, open arrays included."""
    out = tmp_path / "train.zarr"
    export(store, out, size=SIZE)
    data = CubeDataset(out, in_memory=in_memory)
    want = np.stack([x for x, _ in data.__getitems__([5, 1, 7])])  # opened in the parent
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    worker = context.Process(target=_send_batch, args=(data, [5, 1, 7], queue))
    worker.start()
    got = queue.get(timeout=120)
    worker.join(timeout=60)
    assert worker.exitcode == 0
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(want, xr.open_zarr(out).stamps.values[[5, 1, 7]])
