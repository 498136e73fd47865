"""finkcube benchmarks: speed against the documentation's loop and the latency bound, memory,
reads and bytes on disk. Every ratio is measured in the same run, on the same machine.

Usage (from the repository root, in the project's virtual environment)::

    python benchmarks/run.py                 # the full run (~5-10 minutes on 2 cores)
    python benchmarks/run.py --quick         # tiny sizes, seconds (the smoke test runs this)
    python benchmarks/run.py --only B1,B3 --json figures.json

B1  one object of --object-sources sources, emulator latency --latency-ms: ``build_store`` at
    --workers workers against the documentation's sequential loop and against the ideal bound
    ``N x latency / workers``.
B2  --objects generated objects (--bulk-sources sources each) into one store, each build in a
    fresh process: wall time; peak RSS for 10 % of the objects and for all of them.
B3  reading that store: ``open_store``, one object's cube, streaming every stamp, against
    reading the same float32 bytes from a plain ``.npy`` file (both warm in the page cache).
B4  bytes on disk per stamp against the raw float32 size, and the store's chunks and codecs.
B5  one object of 400 sources at the real service's regime (250 ms, 16 workers), each build
    in a fresh process, against the bound and the plain-threads floor.

The emulator runs in its own process (``benchmarks/_serve.py``) so that its threads do not
compete with the measured client for the GIL.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _bulk import bench_b2, bench_b3, bench_b4
from _helpers import say
from _one_object import bench_b1
from _regime import QUICK_REGIME, REGIME, bench_b5
from _table import Row, machine, machine_line, render

ALL = ("B1", "B2", "B3", "B4", "B5")

FULL = {
    "object_sources": 400,
    "latency_ms": 100.0,
    "workers": 16,
    "objects": 500,
    "bulk_sources": (20, 40),
    "bulk_latency_ms": 0.0,
    "repeats": 3,
}
QUICK = {
    "object_sources": 40,
    "latency_ms": 10.0,
    "workers": 16,
    "objects": 10,
    "bulk_sources": (5, 10),
    "bulk_latency_ms": 0.0,
    "repeats": 1,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="finkcube benchmarks (see benchmarks/README.md)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated, e.g. B1,B3")
    parser.add_argument("--json", type=Path, help="also save every figure to this JSON file")
    parser.add_argument("--workdir", type=Path, help="keep the stores here (default: a temp dir)")
    parser.add_argument("--object-sources", type=int, help="B1: sources of the object")
    parser.add_argument("--latency-ms", type=float, help="B1: emulator latency")
    parser.add_argument("--workers", type=int, help="concurrent requests of finkcube")
    parser.add_argument("--objects", type=int, help="B2: objects in the store")
    parser.add_argument("--repeats", type=int, help="timed repeats (the median is kept)")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )
    args = parser.parse_args(argv)
    chosen = [x.strip().upper() for x in args.only.split(",") if x.strip()]
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        parser.error(f"--only: unknown benchmark {unknown[0]}; choose among {', '.join(ALL)}")
    args.only = chosen
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    params = dict(QUICK if args.quick else FULL)
    for key in ("object_sources", "latency_ms", "workers", "objects", "repeats"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    info = machine()
    started = time.perf_counter()
    rows: list[Row] = []
    notes: list[str] = []
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="finkcube-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        store = workdir / "b2-store.zarr"
        if "B1" in args.only:
            got, figures["B1"] = bench_b1(params, workdir, notes)
            rows += got
            say("\n" + render(got))
        reuse = "B2" not in args.only and (store / "zarr.json").exists()
        if reuse:
            say(f"B3/B4: reusing the store {store} (B2 not asked for)")
        elif {"B2", "B3", "B4"} & set(args.only):
            got, figures["B2"] = bench_b2(
                params, workdir, store, want_rss="B2" in args.only, notes=notes
            )
            if "B2" in args.only:
                rows += got
                say("\n" + render(got))
        if "B3" in args.only:
            got, figures["B3"] = bench_b3(params, workdir, store, notes)
            rows += got
        if "B4" in args.only:
            got, figures["B4"], layout = bench_b4(store)
            rows += got
            notes.append(f"B4: store layout of `cutout`: {layout}")
        if "B5" in args.only:
            regime = dict(QUICK_REGIME if args.quick else REGIME)
            if args.repeats is not None:
                regime["repeats"] = args.repeats
            got, figures["B5"] = bench_b5(regime, workdir, notes)
            rows += got
            say("\n" + render(got))
    info["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    info["seconds"] = time.perf_counter() - started
    print(render(rows))
    print()
    print(machine_line(info))
    end_load = info["loadavg_end"]
    print(
        f"run: {'quick' if args.quick else 'full'}, {info['seconds']:.0f} s"
        + (f"; load average at end {end_load[0]:.2f}" if end_load else "")
    )
    for note in notes:
        print(note)
    if args.json:
        saved = {
            "machine": info,
            "params": params,
            "rows": [r.as_dict() for r in rows],
            "figures": figures,
        }
        args.json.write_text(json.dumps(saved, indent=2, default=str) + "\n")
    missed = [r.id for r in rows if r.passed is False]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
