"""Benchmark of training sets: streaming one, and a shuffled 2-worker loader over CubeDataset.

```bash
python benchmarks/training.py                 # 300 objects (about 8,700 samples of 3x31x31)
python benchmarks/training.py --objects 100   # about 2,900 samples (33 MB)
python benchmarks/training.py --quick         # a smoke run: 6 objects, one repeat
```

The store is built from the emulator and exported with ``finkcube.ml.export(store, out,
size=31)`` (untimed set-up). The default, about 100 MB, is three times this machine's 32 MiB
L3 cache: a 33 MB set is served to ``np.load`` from the cache, which no real training set
is. Then, medians of ``--repeats`` (5), the runs compared taken in turn at each repeat (so
that the load of a shared machine weighs on all alike), each set-up (opening) inside its
timing:

- T1: every sample read with plain zarr-python (``zarr.open_array``, chunk by chunk), vs
  ``np.load`` of the same bytes as a warm ``.npy``; target >= 35 %;
- T2: the same with dask (``xr.open_zarr(...).stamps.data.sum().compute()``), vs the same;
- T3: a shuffled loader as ``DataLoader(num_workers=2, shuffle=True, batch_size=256)`` runs
  one epoch: one permutation cut into batches, dealt in turn to 2 worker processes
  (spawned once, with their imports, untimed: the same for every dataset); each worker
  unpickles the dataset (so opens it, inside the timing), reads each of its batches with
  ``__getitems__`` and stacks it (the collation).
  Samples per second for ``CubeDataset(out)`` (T3a), ``CubeDataset(out, in_memory=True)``
  (T3b: each worker reads the whole set once, inside the timing), and the same loader over
  an ``np.load(mmap_mode="r")`` dataset (the baseline); target >= 10,000/s.
  With PyTorch installed, T4: ``DataLoader(num_workers=2, shuffle=True)`` itself (spawn).

``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BATCH = 256
WORKERS = 2


def median_times(runs: list[Any], repeats: int) -> list[float]:
    """The median time of each run, the runs taken in turn at each repeat (interleaved, so
    that a change in the load of the machine weighs on all of them alike)."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, kept in zip(runs, times, strict=True):
            start = time.perf_counter()
            run()
            kept.append(time.perf_counter() - start)
    return [statistics.median(kept) for kept in times]


class NpyDataset:
    """The baseline: the same samples from a ``.npy`` memory map (opened in each worker)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.x: Any = None

    def __getitems__(self, indices: list[int]) -> list[Any]:
        if self.x is None:
            self.x = np.load(self.path, mmap_mode="r")
        return [(np.asarray(self.x[i]), 0) for i in indices]


def _worker(args: tuple[Any, list[list[int]]]) -> int:
    """One worker's share of an epoch: the dataset arrives pickled, as DataLoader sends it."""
    data, batches = args
    return sum(len(np.stack([x for x, *_ in data.__getitems__(b)])) for b in batches)


def _start_worker() -> None:
    """Pool initializer: the imports a worker needs, done once at its start (untimed)."""
    import finkcube.ml  # noqa: F401


def loader_rates(datasets: list[Any], n: int, pool: Any, repeats: int) -> list[float]:
    """Samples per second of one shuffled epoch over each dataset."""

    def epoch(data: Any) -> Any:
        def run() -> None:
            order = np.random.default_rng().permutation(n)
            batches = [order[b : b + BATCH].tolist() for b in range(0, n, BATCH)]
            shares = [(data, batches[w::WORKERS]) for w in range(WORKERS)]
            assert sum(pool.map(_worker, shares, chunksize=1)) == n

        return run

    return [n / t for t in median_times([epoch(d) for d in datasets], repeats)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="6 objects, one repeat")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    if args.quick:
        args.objects, args.repeats = 6, 1
    with tempfile.TemporaryDirectory(prefix="finkcube-training-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, work: Path) -> None:
    """Build, export and measure in ``work`` (removed afterwards)."""
    import xarray as xr
    import zarr

    from finkcube import build_store
    from finkcube.emulator import Emulator
    from finkcube.ml import CubeDataset, export

    with Emulator() as emu:
        ids = emu.catalog.bulk_objects(args.objects, sources=(20, 40))
        build_store(ids, work / "cubes.zarr", url=emu.url)
    out = work / "train.zarr"
    report = export(work / "cubes.zarr", out, size=31)
    npy = work / "raw.npy"
    np.save(npy, zarr.open_array(out / "stamps", mode="r")[:])
    n, repeats = report.samples, args.repeats
    megabytes = npy.stat().st_size / 1e6
    print(f"{report.summary()}; {megabytes:.1f} MB; load average {os.getloadavg()[0]:.1f}")

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
    base, t1, t2 = median_times([raw, plain, with_dask], repeats)
    rows: list[dict[str, Any]] = []

    def row(key: str, what: str, value: float, unit: str, baseline: float) -> None:
        rows.append({"id": key, "what": what, "value": value, "unit": unit,
                     "baseline": baseline, "ratio": value / baseline if unit == "samples/s"
                     else baseline / value})  # fmt: skip
        shown = f"{value:,.0f} samples/s" if unit == "samples/s" else f"{value * 1e3:.1f} ms"
        base_shown = f"{baseline:,.0f}/s" if unit == "samples/s" else f"{baseline * 1e3:.1f} ms"
        print(f"{key} {what}: {shown} vs {base_shown}: {rows[-1]['ratio']:.0%}")

    row("T1", "zarr-python stream", t1, "s", base)
    row("T2", "dask stream", t2, "s", base)
    with multiprocessing.get_context("spawn").Pool(WORKERS, initializer=_start_worker) as pool:
        pool.map(abs, range(WORKERS), chunksize=1)  # the workers are up (untimed)
        npy_rate, rate, memory_rate = loader_rates(
            [NpyDataset(str(npy)), CubeDataset(out), CubeDataset(out, in_memory=True)],
            n, pool, repeats,
        )  # fmt: skip
    row("T3a", "shuffled 2-worker loader, CubeDataset", rate, "samples/s", npy_rate)
    row("T3b", "the same, in_memory=True", memory_rate, "samples/s", npy_rate)
    try:
        import torch
    except ImportError:
        print("T4 skipped: torch is not installed")
    else:
        data = CubeDataset(out).as_torch()

        def torch_loader() -> None:
            loader = torch.utils.data.DataLoader(
                data, batch_size=BATCH, shuffle=True, num_workers=WORKERS,
                multiprocessing_context="spawn",
            )  # fmt: skip
            assert sum(len(x) for x, _ in loader) == n

        (t4,) = median_times([torch_loader], repeats)
        print(f"T4 torch DataLoader: {n / t4:,.0f} samples/s")
        rows.append({"id": "T4", "what": "torch DataLoader", "value": n / t4,
                     "unit": "samples/s"})  # fmt: skip
    if args.json is not None:
        figures = {"samples": n, "megabytes": megabytes, "objects": args.objects,
                   "load_average": os.getloadavg()[0], "rows": rows}  # fmt: skip
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
