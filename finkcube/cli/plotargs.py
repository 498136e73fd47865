"""The options of ``finkcube plot``: which epochs, frame rate, scale, alignment, resolution.

``--epochs`` reads three forms:

- ``N`` (a bare integer): at most ``N`` epochs, evenly spread from the first to the last
  (the default grid shows 6 that way; an animation, every epoch);
- ``I,J,K`` (a comma in it): those positions along time, in that order; negative positions
  count from the end, ``7,`` is position 7 alone (``--epochs=-1,`` for the last);
- ``START:STOP`` (a colon in it): every epoch whose MJD lies in ``[START, STOP]``; either end
  may be left out (``60100:``).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from finkcube.viz.figure import SCALES, TimeRange

__all__ = ["add_plot_options", "parse_epochs", "plot_options"]


def parse_epochs(text: str) -> tuple[Any, int | None]:
    """Return ``(epochs, max_rows)`` for :func:`finkcube.viz.plot.render` from ``--epochs``.

    Examples
    --------
    >>> parse_epochs("5"), parse_epochs("0,3,-1"), parse_epochs("60000.5:")
    ((None, 5), ([0, 3, -1], None), (TimeRange(start=60000.5, stop=None), None))
    """
    text = text.strip()
    try:
        if ":" in text:
            start, _, stop = text.partition(":")
            low = float(start) if start.strip() else None
            high = float(stop) if stop.strip() else None
            if any(v is not None and not math.isfinite(v) for v in (low, high)) or (
                low is not None and high is not None and low > high
            ):
                raise ValueError(text)
            return TimeRange(low, high), None
        if "," in text:
            return [int(p) for p in text.split(",") if p.strip()], None
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(
            f"expected a count (5), positions (0,3,7) or an MJD range (60000.5:60010), got {text!r}"
        )
    return None, count


def _fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 100):
        raise argparse.ArgumentTypeError(f"expected frames per second in (0, 100], got {text!r}")
    return value


def _dpi(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 10 <= value <= 600:
        raise argparse.ArgumentTypeError(f"expected dots per inch in 10..600, got {text!r}")
    return value


def add_plot_options(p: argparse.ArgumentParser) -> None:
    """Add the selection and drawing options of ``finkcube plot`` to its parser."""
    p.add_argument(
        "--epochs",
        type=parse_epochs,
        metavar="SEL",
        help="N (that many, evenly spread), I,J,K (positions) or START:STOP (an MJD range)",
    )
    p.add_argument("--fps", type=_fps, default=4.0, help="frames per second of a GIF (4)")
    p.add_argument(
        "--scale",
        choices=SCALES,
        default="shared",
        help="one scale per kind over the epochs shown (shared, the default), or per stamp",
    )
    p.add_argument(
        "--align",
        choices=["sky"],
        help="the stamps aligned on the sky, north up (a build with --planes all or --align sky)",
    )
    p.add_argument("--dpi", type=_dpi, default=100, help="dots per inch of the output (100)")
    p.add_argument(
        "--no-lightcurve", action="store_true", help="the stamps alone, no light curve beside"
    )


def plot_options(args: argparse.Namespace) -> dict[str, Any]:
    """Return the keyword arguments of :func:`finkcube.viz.plot.render` from parsed options."""
    epochs, max_rows = args.epochs if args.epochs is not None else (None, None)
    return {
        "epochs": epochs,
        "max_rows": max_rows,
        "fps": args.fps,
        "scale": args.scale,
        "align": args.align,
        "dpi": args.dpi,
        "lightcurve": not args.no_lightcurve,
        "progress": None,
    }
