"""Benchmark of training sets: streaming one, and a shuffled 2-worker loader over CubeDataset.

```bash
python benchmarks/training.py                 # 100 objects (about 3,000 samples of 3x31x31)
python benchmarks/training.py --objects 10    # quick
```

The store is built from the emulator and exported with ``finkcube.ml.export`` (untimed
set-up); then, medians of 3, each set-up (opening) inside its timing:

- T1: every sample read with plain zarr-python (``zarr.open_array``, chunk by chunk), vs
  ``np.load`` of the same bytes as a warm ``.npy``; target >= 35 %;
- T2: the same with dask (``xr.open_zarr(...).stamps.data.sum().compute()``), vs the same;
- T3: a shuffled loader: 2 worker processes (spawn) each reading batches of 256 shuffled
  indices with ``CubeDataset.__getitems__`` (what ``DataLoader`` calls), samples per second;
  target >= 10,000; and its ratio to the same loader over an ``np.load(mmap_mode="r")``
  dataset. With PyTorch installed, T4: ``DataLoader(num_workers=2, shuffle=True)``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BATCH = 256


def median_time(run: Any, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class NpyDataset:
    """The baseline: the same samples from a ``.npy`` memory map."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.x: Any = None

    def __getitems__(self, indices: list[int]) -> list[Any]:
        if self.x is None:
            self.x = np.load(self.path, mmap_mode="r")
        return [(np.asarray(self.x[i]), 0) for i in indices]


def _batch(args: tuple[Any, list[int]]) -> int:
    data, indices = args
    return len(np.stack([x for x, *_ in data.__getitems__(indices)]))


def loader_rate(data: Any, n: int, pool: Any) -> float:
    def run() -> None:
        order = np.random.default_rng().permutation(n)
        batches = [(data, order[b : b + BATCH].tolist()) for b in range(0, n, BATCH)]
        assert sum(pool.map(_batch, batches)) == n

    return n / median_time(run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100)
    args = parser.parse_args()
    import xarray as xr
    import zarr

    from finkcube import build_store
    from finkcube.emulator import Emulator
    from finkcube.ml import CubeDataset, export

    work = Path(tempfile.mkdtemp(prefix="finkcube-training-"))
    with Emulator() as emu:
        ids = emu.catalog.bulk_objects(args.objects, sources=(20, 40))
        build_store(ids, work / "cubes.zarr", url=emu.url)
    out = work / "train.zarr"
    report = export(work / "cubes.zarr", out, size=31)
    npy = work / "raw.npy"
    np.save(npy, zarr.open_array(out / "stamps", mode="r")[:])
    n = report.samples
    print(f"{report.summary()}; {npy.stat().st_size / 1e6:.1f} MB")

    def plain() -> None:
        array = zarr.open_array(out / "stamps", mode="r")
        step = array.chunks[0]
        for start in range(0, n, step):
            array[start : start + step]

    def with_dask() -> None:
        xr.open_zarr(out).stamps.data.sum().compute()

    def raw() -> None:
        np.load(npy)

    raw()
    base = median_time(raw)
    t1, t2 = median_time(plain), median_time(with_dask)
    print(f"T1 zarr-python stream: {t1 * 1e3:.1f} ms vs npy {base * 1e3:.1f} ms: {base / t1:.0%}")
    print(f"T2 dask stream:        {t2 * 1e3:.1f} ms vs npy {base * 1e3:.1f} ms: {base / t2:.0%}")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        rate = loader_rate(CubeDataset(out), n, pool)
        npy_rate = loader_rate(NpyDataset(str(npy)), n, pool)
    print(f"T3 shuffled 2-worker loader: {rate:,.0f} samples/s; npy memmap {npy_rate:,.0f}/s: "
          f"{rate / npy_rate:.0%}")  # fmt: skip
    try:
        import torch
    except ImportError:
        print("T4 skipped: torch is not installed")
        return
    data = CubeDataset(out).as_torch()

    def torch_loader() -> None:
        loader = torch.utils.data.DataLoader(
            data, batch_size=BATCH, shuffle=True, num_workers=2, multiprocessing_context="spawn"
        )
        assert sum(len(x) for x, _ in loader) == n

    print(f"T4 torch DataLoader: {n / median_time(torch_loader):,.0f} samples/s")


if __name__ == "__main__":
    main()
