"""Serve the emulator in its own process for the benchmarks, with generated objects added.

Run by ``benchmarks/run.py``, not by hand. A separate process keeps the emulator's threads
off the measured client's GIL. The catalog is prepared before serving: one object of
``--object-sources`` sources (B1), a small warm-up object, and ``--bulk`` objects of
``--bulk-sources LO,HI`` sources each (B2, B3, B4). The B1 object's ``kind=All`` replies
are rendered before serving: the emulator generates a cutout on its first request (about
2 ms of its CPU) and caches it, a cost the real service does not have, which would
otherwise fall on whichever timed run comes first. The first line printed is one JSON
object ``{"url", "object", "warmup", "bulk"}``; the emulator then serves until stdin closes.
"""

from __future__ import annotations

import argparse
import json
import sys

from finkcube.emulator import Emulator
from finkcube.names import KINDS


def _pair(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition(",")
    return int(lo), int(hi or lo)


def main(argv: list[str] | None = None) -> int:
    """Prepare the catalog, print where it is served, serve until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--object-sources", type=int, default=0)
    parser.add_argument("--bulk", type=int, default=0)
    parser.add_argument("--bulk-sources", type=_pair, default=(20, 40))
    args = parser.parse_args(argv)
    with Emulator(latency_ms=args.latency_ms, seed=args.seed) as emu:
        catalog = emu.catalog
        warmup = catalog.bulk_objects(1, sources=(5, 5))[0]
        obj = None
        if args.object_sources:
            obj = catalog.bulk_objects(1, sources=(args.object_sources, args.object_sources))[0]
            for source_id in catalog.source_ids(obj):
                for kind in KINDS:
                    catalog.array_json(source_id, kind)
        bulk = catalog.bulk_objects(args.bulk, sources=args.bulk_sources) if args.bulk else []
        line = {"url": emu.url, "object": obj, "warmup": warmup, "bulk": bulk}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        sys.stdin.read()  # serve until the parent closes our stdin (or dies)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
