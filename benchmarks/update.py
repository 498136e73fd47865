"""Benchmark of an update with nothing new: the CPU it costs per object beyond its requests.

```bash
python benchmarks/update.py                # 500 objects (~2 minutes on 2 cores)
python benchmarks/update.py --quick        # 30 objects, seconds (the smoke test)
```

The emulator serves ``--objects`` generated objects of 5-15 sources (in its own process,
latency 0, so that its CPU is not counted); they are built into a store (untimed). Then, in
turn, ``--repeats`` times each (medians reported):

- U1: ``update_store(store, url=...)`` when the service has nothing new: the CPU time of
  this process (``time.process_time``: every thread, zarr's included), the client, the
  plan and the store's reads all inside the timing;
- the baseline: the same sources requests alone, as the update makes them
  (``finkcube.pipeline.fetch.list_sources`` on a fresh client, the same batches);

and U1's share beyond the requests, per object (target: at most 1 ms). Wall times are
printed beside them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _helpers import say, served
from _table import Row, machine, machine_line, render


def _cpu(fn: Any) -> tuple[float, float, Any]:
    """``(cpu seconds, wall seconds, result)`` of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, result


def main(argv: list[str] | None = None) -> int:
    """Build the store, time the updates and the requests alone, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="30 objects, 3 repeats")
    parser.add_argument("--json", type=Path, help="also save the figures here")
    args = parser.parse_args(argv)
    objects, repeats = (30, 3) if args.quick else (args.objects, args.repeats)

    import finkcube
    from finkcube.pipeline.fetch import list_sources

    with (
        tempfile.TemporaryDirectory() as tmp,
        served(Path(tmp), latency_ms=0.0, bulk=objects, bulk_sources=(5, 15)) as info,
    ):
        url, ids = info["url"], [int(i) for i in info["bulk"]]
        store = Path(tmp) / "cubes.zarr"
        say(f"building {len(ids)} objects")
        finkcube.build_store(ids, store, url=url, workers=8)

        def update() -> Any:
            return finkcube.update_store(store, url=url, workers=8)

        def requests_alone() -> Any:
            with finkcube.FinkClient(url, workers=8) as client:
                return list_sources(client, ids, None)

        updates, alone = [], []
        for _ in range(repeats):
            cpu, wall, report = _cpu(update)
            assert all(r.status == "unchanged" for r in report.results), report.summary()
            updates.append((cpu, wall))
            alone.append(_cpu(requests_alone)[:2])
        say("done")
    cpu_u = statistics.median(c for c, _ in updates)
    cpu_r = statistics.median(c for c, _ in alone)
    wall_u = statistics.median(w for _, w in updates)
    wall_r = statistics.median(w for _, w in alone)
    beyond = (cpu_u - cpu_r) / len(ids) * 1e3
    rows = [
        Row(
            "U1",
            f"update_store, nothing new, {len(ids)} objects: CPU vs the sources requests alone",
            cpu_u,
            cpu_r,
            "s",
            ratio=f"{cpu_u / cpu_r:.2f}x",
        ),
        Row(
            "U1b",
            "U1's CPU beyond the requests, per object",
            beyond,
            None,
            "ms",
            target="<= 1 ms",
            passed=beyond <= 1.0,
        ),
        Row(
            "U1c",
            "wall time of the update vs the requests alone",
            wall_u,
            wall_r,
            "s",
            ratio=f"{wall_u / wall_r:.2f}x",
        ),
    ]
    info_machine = machine()
    print(render(rows))
    print(machine_line(info_machine))
    if args.json:
        rows_saved = [row.__dict__ for row in rows]
        saved = {
            "objects": len(ids),
            "repeats": repeats,
            "machine": info_machine,
            "rows": rows_saved,
        }
        args.json.write_text(json.dumps(saved, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
