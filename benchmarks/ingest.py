"""Benchmark of ``finkcube ingest``: alerts per second on one core, and peak memory at scale.

```bash
python benchmarks/ingest.py                 # 300 alerts timed, 300 vs 3,000 for memory
python benchmarks/ingest.py --alerts 60     # quick (tests/test_benchmarks_smoke.py)
python benchmarks/ingest.py --profile       # also: where an ingest's time goes (cProfile)
```

- I1: alerts per second of ``finkcube.ingest(files, store)`` (everything a user pays: the
  scan, FITS decoding, assembly, the Zarr writes, the final consolidation; a fresh store
  each run; median of 3), this process pinned to one core;
- baseline: the floor, decoding the same packets' FITS files with astropy in a loop (each
  of the three files of each alert opened and its data, variance and PSF read into numpy),
  the packets already in memory, on the same core (median of 3); target >= 50 %;
- I1 is measured at about 6 alerts per object (5 epochs and a late one of another side);
  I1n at 2 (a night: each object seen once or twice) and I1d at about 40 (a Data Transfer
  selection of a few objects over months): the cost of writing a cube is per object, that
  of decoding per alert;
- I1x: the bound the cubes' writes alone put on I1 (the floor against the floor plus a plain
  ``Dataset.to_zarr`` of each cube of I1's store into a zarr ``MemoryStore``: xarray's
  default encoding, no consolidation, the cubes loaded beforehand; median of 3): no ingest
  that writes these cubes through xarray reaches a higher ratio;
- I2: peak RSS of a fresh process ingesting N alerts, and 10 N (target: within 100 MB).

Both sides are timed in this process, after their imports (about 1.8 s for the ingest's,
0.5 s for the floor's: a cost per process, not per alert).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = """
import resource, sys
import finkcube
finkcube.ingest([sys.argv[1]], sys.argv[2])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _pin() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity)"


def _write(folder: Path, alerts: int, seed: int, per_object: int = 6) -> int:
    from finkcube.emulator.alertfiles import write_alerts

    objects = max(1, alerts // per_object)  # epochs of 30-40 px and one late one of 30-102 px
    epochs = (per_object - 1, per_object - 1)
    paths = write_alerts(folder, objects=objects, sources=epochs, per_file=100, seed=seed)
    import fastavro

    return sum(sum(1 for _ in fastavro.reader(p.open("rb"))) for p in paths)


def _floor(folder: Path) -> float:
    """Seconds to decode every packet's three FITS files with astropy (packets in memory)."""
    import fastavro
    import numpy as np
    from astropy.io import fits

    raws = []
    for path in sorted(folder.glob("*.avro")):
        with path.open("rb") as stream:
            for packet in fastavro.reader(stream):
                raws.extend(packet["cutout" + k] for k in ("Science", "Template", "Difference"))
    started = time.perf_counter()
    for raw in raws:
        if raw is None:
            continue
        with fits.open(io.BytesIO(raw)) as hdul:
            for hdu in hdul:
                if hdu.data is not None:
                    np.array(hdu.data, dtype=hdu.data.dtype.newbyteorder("="))
    return time.perf_counter() - started


def _store(work: Path, run: int | str) -> Path:
    """Where the ingest ``run`` writes its store."""
    return work / f"run-{run}.zarr"


def _ingest(folder: Path, work: Path, run: int | str) -> float:
    import finkcube

    started = time.perf_counter()
    finkcube.ingest([folder], _store(work, run))
    return time.perf_counter() - started


#: The functions of an ingest whose cumulative time --profile reports (file name, function).
_PARTS = {
    "write_cube (to_zarr, consolidation, upload)": ("write.py", "write_cube"),
    "  of which to_zarr": ("writers.py", "to_zarr"),
    "  of which consolidate_metadata": ("staging.py", "consolidate"),
    "decode_fits (astropy)": ("fitsfile.py", "decode_fits"),
    "read_packets (fastavro, 2nd pass)": ("packets.py", "read_packets"),
    "scan_file (fastavro, ids only)": ("packets.py", "scan_file"),
    "assemble_cube": ("assemble.py", "assemble_cube"),
    "finalize_store": ("write.py", "finalize_store"),
}


def _profile(folder: Path, work: Path) -> None:
    """Print the share of an ingest's time each part takes (cProfile, so Python-heavy parts
    weigh a little more than they do unprofiled)."""
    import cProfile
    import pstats

    import finkcube

    profiler = cProfile.Profile()
    profiler.runcall(finkcube.ingest, [folder], work / "profiled.zarr")
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, name), (_, _, _, ct, _) in stats.items() if name == "ingest")
    print(f"profile of one ingest ({total:.2f} s under cProfile):")
    for label, (file, function) in _PARTS.items():
        spent = sum(
            ct
            for (path, _, name), (_, _, _, ct, _) in stats.items()
            if name == function and path.endswith(file)
        )
        print(f"  {label}: {spent:.2f} s ({100 * spent / total:.0f} %)")


def _plain_writes(store: Path, repeats: int) -> tuple[int, float]:
    """The cubes of ``store`` and the median seconds of writing them all with a plain
    ``Dataset.to_zarr`` into memory (each loaded first, untimed)."""
    from zarr.storage import MemoryStore

    import finkcube

    catalog = finkcube.open_store(store)
    cubes = [catalog[object_id].load().drop_encoding() for object_id in catalog]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for cube in cubes:
            cube.to_zarr(MemoryStore(), zarr_format=3, consolidated=False)
        times.append(time.perf_counter() - started)
    return len(cubes), statistics.median(times)


def _ratio(folder: Path, work: Path, repeats: int, tag: str) -> tuple[float, float]:
    """The median floor and ingest seconds of the alerts in ``folder``."""
    floors = [_floor(folder) for _ in range(repeats)]
    times = [_ingest(folder, work, f"{tag}-{i}") for i in range(repeats)]
    return statistics.median(floors), statistics.median(times)


def _peak_rss_mb(folder: Path, store: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder), str(store)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(done.stdout.split()[-1]) / 1024  # ru_maxrss: KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=300, help="alerts timed (N)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="save the figures")
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    args = parser.parse_args(argv)
    pinned = _pin()
    logging.disable(logging.WARNING)  # the generated null cutouts are logged, one line each
    shapes: dict[str, tuple[int, int, float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small, large = work / "n", work / "10n"
        n = _write(small, args.alerts, seed=1)
        floor, ingest = _ratio(small, work, args.repeats, "n")
        cubes, writes = _plain_writes(_store(work, "n-0"), args.repeats)
        per_cube_ms, bound = 1000 * writes / cubes, floor / (floor + writes)
        for tag, per_object in (("I1n", 2), ("I1d", 41)):
            folder = work / tag
            count = _write(folder, args.alerts, seed=1, per_object=per_object)
            shapes[tag] = (per_object, count, *_ratio(folder, work, args.repeats, tag))
        if args.profile:
            _profile(small, work)
        n10 = _write(large, 10 * args.alerts, seed=2)
        rss_n = _peak_rss_mb(small, work / "rss-n.zarr")
        rss_10n = _peak_rss_mb(large, work / "rss-10n.zarr")
    figures: dict[str, object] = {
        "alerts": n,
        "ingest_alerts_per_s": n / ingest,
        "floor_alerts_per_s": n / floor,
        "ratio": floor / ingest,
        "peak_rss_mb_n": rss_n,
        "peak_rss_mb_10n": rss_10n,
        "alerts_10n": n10,
        "rss_growth_mb": rss_10n - rss_n,
        "plain_to_zarr_ms_per_cube": per_cube_ms,
        "bound_ratio": bound,
        "by_alerts_per_object": {
            str(per): {"alerts": k, "ingest_alerts_per_s": k / t, "floor_alerts_per_s": k / f}
            for per, k, f, t in shapes.values()
        },
    }
    print(f"machine: {os.cpu_count()} cores, {pinned}; python {sys.version.split()[0]}")
    print("id | what | finkcube | baseline | ratio | target | pass")
    rows = [("I1", 6, n, floor, ingest), *((t, *v) for t, v in shapes.items())]
    for tag, per, k, f, t in rows:
        print(
            f"{tag} | ingest {k} alerts, {per} per object, 1 core | {k / t:.0f} alerts/s | "
            f"{k / f:.0f} alerts/s (astropy FITS decode only) | {f / t:.2f} | >= 0.50 | "
            f"{'yes' if f / t >= 0.5 else 'NO'}"
        )
    print(
        f"I1x | I1's {cubes} cubes, a plain to_zarr each (in memory) | "
        f"{per_cube_ms:.0f} ms a cube | {n / floor:.0f} alerts/s (floor) | "
        f"{bound:.2f} (the best I1 can be) | - | -"
    )
    growth = rss_10n - rss_n
    print(
        f"I2 | peak RSS, {n10} alerts | {rss_10n:.0f} MB | {rss_n:.0f} MB ({n} alerts) | "
        f"+{growth:.0f} MB | <= +100 MB | {'yes' if growth <= 100 else 'NO'}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
