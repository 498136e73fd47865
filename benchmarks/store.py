"""Benchmark of the store's layout and catalog: a store of 5,000 objects against one of 100.

```bash
python benchmarks/store.py              # 5,000 and 100 objects (~2-4 minutes on 2 cores)
python benchmarks/store.py --quick      # 300 and 20 objects, seconds (the smoke test)
```

The stores: ``--templates`` cubes (20-40 epochs of 30-60 px stamps, ``planes="data"``,
assembled with :func:`finkcube.cube.assemble.assemble_cube` from seeded random stamps) are
written with :func:`finkcube.store.write_cube`; every other object's group is a copy of one
of them whose ``diaObjectId`` attribute zarr-python rewrites (``zarr.open_group(..., mode=
"r+").attrs``), which costs a few ms where writing a cube costs about 0.1 s. The catalog is
then built by :func:`finkcube.store.finalize_store` (timed: S0). Medians of ``--repeats``,
each call paying what a user pays (locating the store included), the big store's and the
small one's calls in turn:

- S1: ``open_store`` (the catalog) of the big store, and of the small one as the baseline;
  the first call in the process (first use of xarray's zarr backend) is reported too;
- S2: one cube with plain xarray as the README shows it, ``xr.open_zarr(f"{store}/{ID}")``,
  in the big store against the small one (and ``.load()`` of it), and, for the layout
  before the catalog, ``xr.open_zarr(store, group=ID)`` on a copy of the small store whose
  root zarr consolidates as the older finkcube did (it grows with the store);
- S3: memory kept by ``open_store`` (tracemalloc, the view held) per object, against the
  catalog's own bytes (its arrays and the ``str`` objects of its string columns); target:
  at most 1.5x those, plus 256 kB whatever the size;
- S4: ``open_store`` of the big store once a write made its catalog stale (rebuilt in
  memory from the groups' ``zarr.json``).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _helpers import median_time, say, timed
from _table import Row, machine, machine_line, render

BASE_ID = 313761043604045880


def _cube(oid: int, rng: np.random.Generator) -> Any:
    from finkcube.cube.assemble import assemble_cube
    from finkcube.names import KINDS
    from finkcube.service.decode import stamps_from_arrays

    n = int(rng.integers(20, 41))
    records, cutouts = [], {}
    for i in range(n):
        sid = (oid % 10**9) * 1000 + i + 1
        side = int(rng.integers(30, 61))
        stamps = {k: rng.normal(100, 30, (side, side)).astype(np.float32) for k in KINDS}
        cutouts[sid] = stamps_from_arrays(sid, stamps)
        records.append({"r:diaSourceId": sid, "r:midpointMjdTai": 60000.0 + i + rng.random(),
                        "r:band": "ugrizy"[int(rng.integers(6))], "r:ra": 150.0 + rng.random(),
                        "r:dec": 2.0 + rng.random()})  # fmt: skip
    return assemble_cube(oid, records, cutouts)


def make_store(path: Path, objects: int, templates: int) -> dict[str, float]:
    """A store of ``objects`` cubes: ``templates`` written, the others copies of them."""
    import zarr

    from finkcube.store import finalize_store, init_store, write_cube

    rng = np.random.default_rng(0)
    init_store(path, overwrite=True)
    t_write, _ = timed(
        lambda: [write_cube(_cube(BASE_ID + i, rng), path) for i in range(min(templates, objects))]
    )
    started = time.perf_counter()
    for i in range(templates, objects):
        oid = BASE_ID + i
        shutil.copytree(path / str(BASE_ID + i % templates), path / str(oid))
        zarr.open_group(str(path), path=str(oid), mode="r+").attrs["diaObjectId"] = oid
    t_copy = time.perf_counter() - started
    t_final, _ = timed(lambda: finalize_store(path))
    return {"write_templates_s": t_write, "copies_s": t_copy, "finalize_s": t_final}


def _retained(fn: Any) -> tuple[int, Any]:
    """Bytes still allocated after ``fn()`` returned (its result held), and the result.

    Garbage is collected before each reading: what counts is what the result keeps alive.
    """
    tracemalloc.start()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    result = fn()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, result


def _pair(big: Any, small: Any, repeats: int) -> tuple[float, float]:
    """Medians of ``big()`` and ``small()``, called in turn: a busy machine slows both alike."""
    runs = [(timed(big)[0], timed(small)[0]) for _ in range(max(1, repeats))]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def _deep_bytes(ds: Any) -> int:
    """A dataset's bytes in memory, the ``str`` objects of its string arrays included."""
    total = 0
    for var in ds.variables.values():
        values = var.values
        total += values.nbytes
        if values.dtype == object:
            total += sum(sys.getsizeof(v) for v in values.ravel())
    return total


def _old_layout(small: Path, workdir: Path) -> Path:
    """A copy of the small store with the root consolidated, as finkcube wrote it before."""
    import zarr

    copy = workdir / "old-layout.zarr"
    shutil.copytree(small, copy)
    shutil.rmtree(copy / "catalog")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: consolidated metadata is not in the spec
        zarr.consolidate_metadata(str(copy))
    return copy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 and 20 objects")
    parser.add_argument("--objects", type=int, help="the big store (5,000)")
    parser.add_argument("--small", type=int, help="the small store (100)")
    parser.add_argument("--templates", type=int, default=20, help="cubes really written")
    parser.add_argument("--repeats", type=int, help="repeats of each timing (default 7)")
    parser.add_argument("--json", type=Path, help="save the figures here")
    args = parser.parse_args(argv)
    big_n = args.objects or (300 if args.quick else 5000)
    small_n = args.small or (20 if args.quick else 100)
    repeats = args.repeats or (3 if args.quick else 7)
    info = machine()

    import xarray as xr

    import finkcube
    from finkcube.store import write_cube

    with tempfile.TemporaryDirectory(prefix="finkcube-store-bench-") as tmp:
        workdir = Path(tmp)
        big, small = workdir / "big.zarr", workdir / "small.zarr"
        say(f"writing a store of {big_n} objects")
        made = {"big": make_store(big, big_n, args.templates)}
        say(f"writing a store of {small_n} objects")
        made["small"] = make_store(small, small_n, args.templates)
        group = str(BASE_ID)

        t_first, _ = timed(lambda: finkcube.open_store(big))
        t_open_big, t_open_small = _pair(
            lambda: finkcube.open_store(big), lambda: finkcube.open_store(small), repeats
        )
        assert len(finkcube.open_store(big)) == big_n

        with warnings.catch_warnings():
            warnings.simplefilter("error")  # as the README shows it: no warning
            t_cube_big, t_cube_small = _pair(
                lambda: xr.open_zarr(f"{big}/{group}"),
                lambda: xr.open_zarr(f"{small}/{group}"),
                repeats,
            )
            t_load_big, t_load_small = _pair(
                lambda: xr.open_zarr(f"{big}/{group}").load(),
                lambda: xr.open_zarr(f"{small}/{group}").load(),
                repeats,
            )
        old = _old_layout(small, workdir)
        t_old = median_time(lambda: xr.open_zarr(old, group=group), repeats)

        kept_big, view_big = _retained(lambda: finkcube.open_store(big))
        kept_small, view_small = _retained(lambda: finkcube.open_store(small))
        cat_big, cat_small = _deep_bytes(view_big.catalog), _deep_bytes(view_small.catalog)
        del view_big, view_small

        write_cube(finkcube.open_cube(big, BASE_ID).load(), big)  # the catalog is stale now
        t_stale = median_time(lambda: finkcube.open_store(big), max(1, repeats // 2))
        assert not finkcube.open_store(big).current

    rows = [
        Row("S0", f"finalize_store: the catalog built from {big_n} groups' zarr.json",
            made["big"]["finalize_s"], made["small"]["finalize_s"], unit="s",
            ratio=f"{small_n} objects: baseline"),
        Row("S1a", f"open_store (the catalog) of {big_n} objects vs {small_n}", t_open_big,
            t_open_small, unit="s", ratio=f"{t_open_big / t_open_small:.2f}x",
            target="<= 0.5 s", passed=t_open_big <= 0.5),
        Row("S1b", f"open_store of {big_n} objects, first call in the process", t_first,
            unit="s"),
        Row("S2a", f'one cube, plain xr.open_zarr(f"{{store}}/{{ID}}"): {big_n} vs {small_n} '
            "objects", t_cube_big * 1e3, t_cube_small * 1e3, unit="ms",
            ratio=f"{t_cube_big / t_cube_small:.2f}x", target="<= 50 ms, <= 1.5x",
            passed=t_cube_big <= 0.05 and t_cube_big <= 1.5 * t_cube_small),
        Row("S2b", f"the same, .load() of the cube: {big_n} vs {small_n} objects",
            t_load_big * 1e3, t_load_small * 1e3, unit="ms",
            ratio=f"{t_load_big / t_load_small:.2f}x"),
        Row("S2c", f"the layout before: xr.open_zarr(store, group=ID), root consolidated, "
            f"{small_n} objects, vs S2a at {small_n}", t_old * 1e3, t_cube_small * 1e3,
            unit="ms", ratio=f"{t_old / t_cube_small:.1f}x slower"),
        Row("S3", f"memory kept by open_store per object ({big_n} objects) vs the catalog's "
            "own bytes per object", kept_big / big_n, cat_big / big_n, unit="B",
            ratio=f"{kept_big / cat_big:.2f}x", target="no growth beyond the catalog",
            passed=kept_big <= 1.5 * cat_big + 256 * 1024),
        Row("S4", f"open_store of {big_n} objects with a stale catalog (rebuilt in memory)",
            t_stale, t_open_big, unit="s", ratio=f"{t_stale / t_open_big:.1f}x S1a"),
    ]  # fmt: skip
    print(render(rows))
    print()
    print(machine_line(info))
    print(
        f"stores: {args.templates} cubes written by write_cube "
        f"({made['big']['write_templates_s']:.1f} s), the other groups copies "
        f"({made['big']['copies_s']:.1f} s for {big_n - args.templates}); memory kept at "
        f"{small_n} objects: {kept_small / small_n:.0f} B per object (catalog "
        f"{cat_small / small_n:.0f} B)"
    )
    if args.json:
        saved = {
            "machine": info,
            "objects": big_n,
            "small": small_n,
            "repeats": repeats,
            "made": made,
            "rows": [r.as_dict() for r in rows],
        }
        args.json.write_text(json.dumps(saved, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
