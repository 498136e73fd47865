"""Benchmark of ``finkcube ingest``: alerts per second on one core, and peak memory at scale.

```bash
python benchmarks/ingest.py                 # 300 alerts timed, 300 vs 3,000 for memory
python benchmarks/ingest.py --alerts 60     # quick (tests/test_benchmarks_smoke.py)
```

- I1: alerts per second of ``finkcube.ingest(files, store)`` (everything a user pays: the
  scan, FITS decoding, assembly, the Zarr writes, the final consolidation; a fresh store
  each run; median of 3), this process pinned to one core;
- baseline: the floor, decoding the same packets' FITS files with astropy in a loop (each
  of the three files of each alert opened and its data, variance and PSF read into numpy),
  the packets already in memory, on the same core (median of 3); target >= 50 %;
- I2: peak RSS of a fresh process ingesting N alerts, and 10 N (target: within 100 MB).
"""

from __future__ import annotations

import argparse
import io
import json
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


def _write(folder: Path, alerts: int, seed: int) -> int:
    from finkcube.emulator.alertfiles import write_alerts

    objects = max(1, alerts // 6)  # 5 epochs of 30-40 px and one late one of 30-102 px
    paths = write_alerts(folder, objects=objects, sources=(5, 5), per_file=100, seed=seed)
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


def _ingest(folder: Path, work: Path, run: int) -> float:
    import finkcube

    started = time.perf_counter()
    finkcube.ingest([folder], work / f"run-{run}.zarr")
    return time.perf_counter() - started


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
    args = parser.parse_args(argv)
    pinned = _pin()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small, large = work / "n", work / "10n"
        n = _write(small, args.alerts, seed=1)
        floors = [_floor(small) for _ in range(args.repeats)]
        times = [_ingest(small, work, i) for i in range(args.repeats)]
        n10 = _write(large, 10 * args.alerts, seed=2)
        rss_n = _peak_rss_mb(small, work / "rss-n.zarr")
        rss_10n = _peak_rss_mb(large, work / "rss-10n.zarr")
    floor, ingest = statistics.median(floors), statistics.median(times)
    figures = {
        "alerts": n,
        "ingest_alerts_per_s": n / ingest,
        "floor_alerts_per_s": n / floor,
        "ratio": floor / ingest,
        "peak_rss_mb_n": rss_n,
        "peak_rss_mb_10n": rss_10n,
        "alerts_10n": n10,
        "rss_growth_mb": rss_10n - rss_n,
    }
    print(f"machine: {os.cpu_count()} cores, {pinned}; python {sys.version.split()[0]}")
    print("id | what | finkcube | baseline | ratio | target | pass")
    ratio = figures["ratio"]
    print(
        f"I1 | ingest {n} alerts, 1 core | {figures['ingest_alerts_per_s']:.0f} alerts/s | "
        f"{figures['floor_alerts_per_s']:.0f} alerts/s (astropy FITS decode only) | "
        f"{ratio:.2f} | >= 0.50 | {'yes' if ratio >= 0.5 else 'NO'}"
    )
    growth = figures["rss_growth_mb"]
    print(
        f"I2 | peak RSS, {n10} alerts | {rss_10n:.0f} MB | {rss_n:.0f} MB ({n} alerts) | "
        f"+{growth:.0f} MB | <= +100 MB | {'yes' if growth <= 100 else 'NO'}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
