"""``finkcube export STORE OUT``: a store's stamps as one training set for ML."""

from __future__ import annotations

import argparse
from typing import Any

from finkcube.cli.outcome import EXIT_OK

__all__ = ["add_export_parser", "run_export"]


def add_export_parser(sub: Any) -> None:
    """Add the ``export`` command to the subparsers ``sub``."""
    from finkcube.ml.presets import NORMALISERS, PRESETS

    p = sub.add_parser("export", help="write a store's stamps as one training set for ML")
    p.add_argument("store", metavar="STORE")
    p.add_argument(
        "out", metavar="OUT",
        help="the training set to write: a Zarr v3 path or URL, or icechunk://PATH",
    )  # fmt: skip
    p.add_argument("--preset", help=f"published preprocessing: {', '.join(sorted(PRESETS))}")
    p.add_argument(
        "--channels", metavar="LIST",
        help="comma-separated KIND/PLANE channels, in order (e.g. Difference/data,Science)",
    )  # fmt: skip
    p.add_argument("--size", type=int, help="side of every stamp in pixels (crop or NaN pad)")
    p.add_argument("--epochs", default="all", help="all (default), first, last, or N (last N)")
    p.add_argument("--normalise", help=f"per-image normalisation: {', '.join(NORMALISERS)}")
    p.add_argument("--fill", type=float, default=0.0, help="what NaN become (0)")
    p.add_argument("--mask", action="store_true", default=None, help="add NaN-mask channels")
    p.add_argument("--labels", metavar="FILE", help="CSV or Parquet: diaObjectId,label")
    p.add_argument("--overwrite", action="store_true", help="replace what is at OUT")
    p.add_argument(
        "--tag", metavar="NAME",
        help="name the export's commit in an Icechunk OUT (icechunk://PATH), for good",
    )  # fmt: skip


def run_export(args: argparse.Namespace) -> int:
    """Run ``finkcube export``: print one line saying what was written."""
    from finkcube.ml.training import export

    report = export(
        args.store,
        args.out,
        preset=args.preset,
        channels=args.channels.split(",") if args.channels else None,
        size=args.size,
        epochs=args.epochs,
        normalise=args.normalise,
        fill=args.fill,
        mask=args.mask,
        labels=args.labels,
        overwrite=args.overwrite,
        tag=args.tag,
    )
    print(report.summary())
    return EXIT_OK
