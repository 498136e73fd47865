"""``finkcube ingest PATH ... --out STORE``, and ``finkcube emulator --write-alerts DIR``.

The ingest makes or extends cubes from alert files (:func:`finkcube.ingest`); the emulator
option writes generated alerts as such files (:func:`finkcube.emulator.alertfiles.
write_alerts`), for tests and benchmarks.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from finkcube.cli.outcome import EXIT_OK, report_failures

__all__ = ["add_ingest_parser", "add_write_alerts_options", "run_ingest", "run_write_alerts"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_ingest_parser(sub: Any) -> None:
    """Add the ``ingest`` command to the subparsers ``sub``."""
    p = sub.add_parser("ingest", help="make cubes from Avro / Parquet alert files (no request)")
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="alert files, folders or globs (paths or URLs)"
    )
    p.add_argument("--out", required=True, metavar="STORE", help="Zarr store: path or URL")
    p.add_argument(
        "--batch", type=_positive, default=500, metavar="N",
        help="alerts decoded and held at a time (500)",
    )  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace what is at STORE")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on a dask.distributed cluster")


def run_ingest(args: argparse.Namespace) -> int:
    """Run ``finkcube ingest``: print the report's summary; the exit status of its failures."""
    from finkcube.pipeline.ingest import ingest

    report = ingest(
        args.paths,
        args.out,
        batch=args.batch,
        overwrite=args.overwrite,
        progress=None,
        scheduler=args.scheduler or None,
    )
    print(report.summary())
    return report_failures(report)


def add_write_alerts_options(p: argparse.ArgumentParser) -> None:
    """Add ``--write-alerts DIR`` and its options to the ``emulator`` command."""
    p.add_argument(
        "--write-alerts", type=Path, metavar="DIR",
        help="write generated alerts as alert files in DIR, then exit (no server)",
    )  # fmt: skip
    p.add_argument("--objects", type=_positive, default=10, metavar="N", help="objects (10)")
    p.add_argument("--per-file", type=_positive, default=50, metavar="N", help="alerts a file")
    p.add_argument("--format", choices=("avro", "parquet"), default="avro", dest="file_format")


def run_write_alerts(args: argparse.Namespace) -> int:
    """Run ``finkcube emulator --write-alerts DIR``: print one line per file written."""
    from finkcube.emulator.alertfiles import write_alerts

    for path in write_alerts(
        args.write_alerts,
        objects=args.objects,
        per_file=args.per_file,
        file_format=args.file_format,
        seed=args.seed,
    ):
        print(path)
    return EXIT_OK
