"""Build a store in a fresh process and report its wall time and peak memory (B2).

Run by ``benchmarks/run.py``: ``python benchmarks/_child.py URL STORE IDS_FILE WORKERS``.
Prints one JSON object: ``seconds`` (the ``build_store`` call only, imports excluded),
``maxrss_mb`` (peak resident set of this whole process, imports included; ``VmHWM`` on
Linux), ``built``,
``failed``, ``epochs`` and ``rss_after_import_mb``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def _maxrss_mb() -> float:
    """This process's peak resident set size, in MB.

    On Linux, ``VmHWM`` of ``/proc/self/status``: ``ru_maxrss`` is kept across ``exec``, so
    in a child started by a large parent it reports at least the parent's size at the fork.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    scale = 1.0 if sys.platform == "darwin" else 1024.0  # ru_maxrss: bytes on macOS, else KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def main(argv: list[str] | None = None) -> int:
    """Build the listed objects into the store and print the figures as JSON."""
    url, store, ids_file, workers = argv if argv is not None else sys.argv[1:]
    from finkcube.pipeline.build import build_store

    ids = [int(line) for line in Path(ids_file).read_text().split()]
    after_import = _maxrss_mb()
    started = time.perf_counter()
    report = build_store(ids, store, url=url, workers=int(workers), overwrite=True)
    seconds = time.perf_counter() - started
    figures = {
        "seconds": seconds,
        "maxrss_mb": _maxrss_mb(),
        "rss_after_import_mb": after_import,
        "built": report.count("built"),
        "failed": len(report.failed),
        "epochs": sum(r.epochs for r in report.results),
    }
    sys.stdout.write(json.dumps(figures) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
