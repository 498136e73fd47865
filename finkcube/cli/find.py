"""``finkcube find``: select objects through the service's search endpoints, and the same
selection options on ``finkcube build``.

A selection is one search (``--cone RA DEC RADIUS``, ``--tag TAG``, ``--name NAME``) and
filters on the objects' summaries (``--min-sources N``). ``find`` prints the selected
objects' summaries as a table on a terminal, CSV or JSON (``--format``), or one id per line
(``--format ids``), which ``build --objects-file`` reads back; ``build --tag ...`` selects
and builds in one command, and records the selection for ``update --reselect``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import TYPE_CHECKING, Any

from finkcube.errors import InputError
from finkcube.names import RESOLVERS

if TYPE_CHECKING:
    from astropy.table import Table

    from finkcube.pipeline.select import Selection

__all__ = [
    "FORMATS",
    "add_build_options",
    "add_find_parser",
    "add_selection_arguments",
    "format_table",
    "run_find",
    "selection_from_args",
]

#: The output formats of ``find``.
FORMATS = ("table", "csv", "json", "ids")


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _count(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    return parse


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of a selection (one search, then filters) to ``parser``."""
    group = parser.add_argument_group("selection (one search, then filters)")
    group.add_argument(
        "--cone",
        nargs=3,
        type=_finite,
        metavar=("RA", "DEC", "RADIUS"),
        help="objects within RADIUS arcsec (at most 18000) of RA, DEC (degrees)",
    )
    group.add_argument("--tag", help="the latest alerts of a Fink tag (e.g. most_likely_sn)")
    group.add_argument("--name", help="the objects of a name (e.g. a TNS name)")
    group.add_argument("--resolver", choices=RESOLVERS, default="tns", help="for --name (tns)")
    group.add_argument(
        "--n", type=_count(1), metavar="N", help="rows asked of the search (alerts, not objects)"
    )
    group.add_argument("--since", metavar="DATE", help="cone: objects first detected since "
                       "DATE; tag: alerts since DATE (ISO date, UTC, or MJD)")  # fmt: skip
    group.add_argument("--until", metavar="DATE", help="cone: objects whose latest alert, "
                       "tag: alerts, up to DATE (ISO date, UTC, or MJD)")  # fmt: skip
    group.add_argument("--min-sources", type=_count(0), metavar="N", help="at least N diaSources")
    group.add_argument("--max-sources", type=_count(0), metavar="N", help="at most N diaSources")


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """Add the selection options and ``--forced-photometry`` to the ``build`` parser."""
    add_selection_arguments(parser)
    parser.add_argument(
        "--forced-photometry",
        action="store_true",
        help="also put each object's forced light curve (/api/v1/fp) in its cube",
    )


def add_find_parser(sub: Any, add_url: Any) -> None:
    """Add the ``find`` command to the subparsers ``sub`` (``add_url`` adds ``--url``)."""
    p = sub.add_parser("find", help="select objects through the service's search endpoints")
    add_selection_arguments(p)
    add_url(p)
    p.add_argument("--format", choices=FORMATS, default="table", help="table (default), csv, "
                   "json, or ids (one diaObjectId a line, for --objects-file)")  # fmt: skip
    p.add_argument("--list-tags", action="store_true", help="list the tags the service serves")


def selection_from_args(args: argparse.Namespace) -> Selection | None:
    """The selection the options give, or None when no search option is given.

    Raises
    ------
    InputError
        For a filter without a search, or a selection that is not one.
    """
    from finkcube.pipeline.select import Selection

    searches = [args.cone is not None, args.tag is not None, args.name is not None]
    if not any(searches):
        used = [
            f"--{name.replace('_', '-')}"
            for name in ("n", "since", "until", "min_sources", "max_sources")
            if getattr(args, name) is not None
        ]
        if used:
            raise InputError(f"{used[0]} needs a search: --cone RA DEC RADIUS, --tag or --name")
        return None
    ra, dec, radius = args.cone if args.cone is not None else (None, None, None)
    return Selection(
        ra=ra, dec=dec, radius_arcsec=radius, tag=args.tag, name=args.name,
        resolver=args.resolver, n=args.n, since=args.since, until=args.until,
        min_sources=args.min_sources, max_sources=args.max_sources,
    )  # fmt: skip


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def format_table(table: Table, fmt: str, *, terminal: bool = False) -> str:
    """The text ``find`` prints for ``table`` in format ``fmt`` (no final newline).

    ``table``: astropy's own layout (fitted to the terminal's width on one); ``csv``:
    astropy's CSV writer (masked values empty); ``json``: one object per row (masked values
    and NaN as null, ids exact); ``ids``: one diaObjectId a line.
    """
    import io

    from finkcube.names import OBJECT_ID

    if fmt == "ids":
        return "\n".join(str(int(v)) for v in table[OBJECT_ID].tolist())
    if fmt == "csv":
        out = io.StringIO()
        table.write(out, format="ascii.csv")
        return out.getvalue().rstrip("\n")
    if fmt == "json":
        columns = {name: table[name].tolist() for name in table.colnames}  # masked: None
        rows = [
            {name: _json_value(columns[name][i]) for name in table.colnames}
            for i in range(len(table))
        ]
        return json.dumps(rows, allow_nan=False)
    width = None if terminal else -1
    return "\n".join(table.pformat(max_lines=-1, max_width=width))


def run_find(args: argparse.Namespace) -> int:
    """Run ``finkcube find``: print the selected objects; 0, or raise for a failure."""
    from finkcube.config import resolve_url
    from finkcube.pipeline.select import find
    from finkcube.service.client import FinkClient

    selection = selection_from_args(args)
    if selection is None and not args.list_tags:
        raise InputError("no selection given: pass --cone RA DEC RADIUS, --tag TAG or --name NAME")
    with FinkClient(resolve_url(args.url)) as client:
        if args.list_tags:
            print("\n".join(client.tags()))
            return 0
        table = find(selection, client=client)
    text = format_table(table, args.format, terminal=sys.stdout.isatty())
    if text:
        print(text)
    return 0
