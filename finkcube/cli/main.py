"""The ``finkcube`` command line: argparse, one function per command, errors as one line.

``main(argv) -> int`` never raises and never prints a traceback (unless ``-vv``): every
failure is one ``finkcube: error: ...`` line on stderr and an exit status:

- 2: a usage or input error the user must fix (:class:`~finkcube.errors.InputError`,
  :class:`~finkcube.errors.NotFoundError`, a refused store);
- 1: a failure while working (any other :class:`~finkcube.errors.FinkcubeError`, an
  :class:`OSError` such as a full disk, or an unexpected error, reported as a bug);
- 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from finkcube._version import __version__
from finkcube.cli.export import add_export_parser, run_export
from finkcube.cli.find import add_build_options, add_find_parser, run_find, selection_from_args
from finkcube.cli.ingest import (
    add_ingest_parser,
    add_write_alerts_options,
    run_ingest,
    run_write_alerts,
)
from finkcube.cli.outcome import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    classify,
    one_line,
    report_failures,
    show_warning,
    unknown_message,
)
from finkcube.cli.plotargs import add_plot_options, plot_options
from finkcube.config import MAX_SIZE, resolve_url
from finkcube.errors import InputError, printable, redact_text
from finkcube.ids import load_objects_file, parse_id
from finkcube.names import ALIGN_ARGS, DEFAULT_URL, PLANES_ARGS, URL_ENV

__all__ = ["main", "main_entry"]

logger = logging.getLogger(__name__)


class _UsageError(Exception):
    """Raised by the parser instead of exiting, so that ``main`` returns 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _number(
    cast: Callable[[str], float], low: float, high: float | None, expected: str
) -> Callable[[str], float]:
    """Return an argparse type: ``cast(text)`` within ``[low, high]``, else a usage error."""

    def parse(text: str) -> float:
        try:
            value = cast(text)
        except ValueError:
            value = None
        if (
            value is None
            or not math.isfinite(value)
            or value < low
            or (high is not None and value > high)
        ):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, 1, None, "a positive integer")
_size = _number(int, 1, MAX_SIZE, f"a canvas side in pixels, 1..{MAX_SIZE}")
_rate = _number(float, 0.0, 1.0, "a number in [0, 1]")
_non_negative = _number(float, 0.0, None, "a number >= 0")
_port = _number(int, 0, 65535, "a port number in 0..65535 (0: a free port)")


def _add_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        help=f"API base URL (default: ${URL_ENV}, else {DEFAULT_URL})",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``finkcube`` command."""
    parser = _Parser(
        prog="finkcube",
        description="Analysis-ready cubes of the image cutouts of Rubin alerts served by Fink.",
    )
    parser.add_argument("--version", action="version", version=f"finkcube {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log messages (-vv: debug, and the traceback of an error)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("build", help="build one cube per object into a Zarr store")
    p.add_argument("ids", nargs="*", metavar="ID", help="diaObjectIds")
    p.add_argument("--out", required=True, metavar="STORE", help="Zarr store: path or URL")
    _add_url(p)
    p.add_argument("--objects-file", type=Path, metavar="FILE", help="one diaObjectId a line")
    p.add_argument("--planes", choices=PLANES_ARGS, default="data", help="data (default) or all")
    p.add_argument("--size", type=_size, help=f"fixed canvas side in pixels (1..{MAX_SIZE})")
    p.add_argument("--align", choices=ALIGN_ARGS, help="also resample the stamps onto one sky grid")
    p.add_argument("--workers", type=_positive_int, default=8, help="concurrent requests (8)")
    p.add_argument("--overwrite", action="store_true", help="replace what is at STORE")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on a dask.distributed cluster")
    add_build_options(p)

    p = sub.add_parser("update", help="add the sources that appeared since the last build")
    p.add_argument("store", metavar="STORE")
    _add_url(p)
    p.add_argument("--workers", type=_positive_int, default=8, help="concurrent requests (8)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on a dask.distributed cluster")
    p.add_argument("--reselect", action="store_true", help="run the store's selections again")
    retry = p.add_mutually_exclusive_group()
    retry.add_argument("--retry-missing-after", type=_non_negative, default=1.0, metavar="HOURS",
                       help="ask again for left-out sources last tried this long ago (1; 0: all)"
                       )  # fmt: skip
    retry.add_argument("--no-retry-missing", action="store_true",
                       help="never ask again for left-out sources")  # fmt: skip
    add_find_parser(sub, _add_url)

    p = sub.add_parser("info", help="summarise a store or one cube")
    p.add_argument("store", metavar="STORE")
    p.add_argument("id", nargs="?", metavar="ID")
    p.add_argument("--repair", action="store_true",
                   help="first put right what a crash left and rewrite the catalog "
                        "from the groups")  # fmt: skip

    p = sub.add_parser("emulator", help="serve the Fink LSST API emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=0, help="0..65535; 0: a free port")
    p.add_argument("--alerts", nargs="+", type=Path, default=[], metavar="FILE.avro")
    p.add_argument("--latency-ms", type=_non_negative, default=0.0, metavar="MS")
    p.add_argument("--faults", type=_rate, default=0.0, metavar="RATE")
    p.add_argument("--seed", type=int, default=0)
    add_write_alerts_options(p)

    p = sub.add_parser("demo", help="build a sample cube from the built-in emulator")
    p.add_argument("--out", type=Path, default=Path("finkcube-demo"), metavar="DIR")

    p = sub.add_parser("plot", help="draw an object's stamps (PNG) or animate them (GIF)")
    p.add_argument("store", metavar="STORE")
    p.add_argument("id", metavar="ID")
    # A str, not a Path: Path("s3://b/x.png") would hide that a URL was given.
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--gif", action="store_true", help="write an animation instead")
    p.add_argument("--stretch", default="sigmoid")
    p.add_argument("--cmap", default="gray")
    add_plot_options(p)
    add_ingest_parser(sub)
    add_export_parser(sub)
    return parser


def _object_ids(args: argparse.Namespace, selected: bool = False) -> list[int]:
    ids = [parse_id(v) for v in args.ids]
    if args.objects_file is not None:
        ids.extend(load_objects_file(args.objects_file))
    if not ids and not selected:
        raise InputError(
            "no diaObjectId given: pass IDs or --objects-file FILE, or a selection "
            "(--cone RA DEC RADIUS, --tag TAG, --name NAME)"
        )
    return list(dict.fromkeys(ids))


def _cmd_build(args: argparse.Namespace) -> int:
    selection = selection_from_args(args)
    ids = _object_ids(args, selection is not None)
    args.url = resolve_url(args.url)
    from finkcube.pipeline.build import build_store

    report = build_store(
        ids,
        args.out,
        url=args.url,
        planes=args.planes,
        size=args.size,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=None,
        scheduler=args.scheduler or None,
        selection=selection,
        forced_photometry=args.forced_photometry,
        align=args.align,
    )
    if report.results and all(r.not_found for r in report.results):
        unknown = [r.object_id for r in report.results]
        print(f"finkcube: error: {unknown_message(unknown)}; nothing written", file=sys.stderr)
        return EXIT_USAGE
    print(report.summary())
    return report_failures(report)


def _cmd_update(args: argparse.Namespace) -> int:
    if args.url is not None:
        args.url = resolve_url(args.url)
    from finkcube.pipeline.update import update_store

    report = update_store(
        args.store,
        url=args.url,
        workers=args.workers,
        progress=None,
        scheduler=args.scheduler or None,
        reselect=args.reselect,
        retry_missing_after=None if args.no_retry_missing else args.retry_missing_after,
    )
    print(report.summary())
    return report_failures(report)


def _cmd_info(args: argparse.Namespace) -> int:
    from finkcube.cli.info import describe_cube, describe_store, repair

    if args.repair:
        print(repair(args.store))
    if args.id is None:
        print(describe_store(args.store))
    else:
        print(describe_cube(args.store, parse_id(args.id)))
    return EXIT_OK


def _cmd_emulator(args: argparse.Namespace) -> int:
    if args.write_alerts is not None:
        return run_write_alerts(args)
    from finkcube.emulator import run_server

    return run_server(
        host=args.host,
        port=args.port,
        alerts=args.alerts,
        latency_ms=args.latency_ms,
        faults=args.faults,
        seed=args.seed,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from finkcube.cli.demo import run_demo

    for line in run_demo(args.out):
        print(line, flush=True)
    return EXIT_OK


def _cmd_plot(args: argparse.Namespace) -> int:
    from finkcube.viz.plot import render

    path = render(
        args.store,
        parse_id(args.id),
        args.output,
        gif=args.gif,
        stretch=args.stretch,
        cmap=args.cmap,
        **plot_options(args),
    )
    print(f"wrote {path}")
    return EXIT_OK


_COMMANDS = {
    "build": _cmd_build,
    "update": _cmd_update,
    "info": _cmd_info,
    "emulator": _cmd_emulator,
    "demo": _cmd_demo,
    "plot": _cmd_plot,
    "find": run_find,
    "ingest": run_ingest,
    "export": run_export,
}


class _SafeFormatter(logging.Formatter):
    """Log lines safe for a terminal: control characters escaped, URL credentials hidden."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return "\n".join(printable(redact_text(line)) for line in text.split("\n"))


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_SafeFormatter("finkcube: %(levelname)s: %(message)s"))
    root = logging.getLogger("finkcube")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _run(args: argparse.Namespace) -> int:
    """Run the command, turning every exception into one stderr line and an exit status."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        # Warnings as one line each, for this command only (restored on the way out); log
        # lines go through tqdm, above a progress bar instead of into it.
        with warnings.catch_warnings(), logging_redirect_tqdm([logging.getLogger("finkcube")]):
            warnings.showwarning = show_warning
            return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("finkcube: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        code, line = classify(exc, args)
        if args.verbose >= 2:
            traceback.print_exception(exc, file=sys.stderr)
        print(line, file=sys.stderr)
        return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``finkcube`` command line and return its exit status.

    Never raises (``--help`` and ``--version`` return 0 after printing) and writes any error
    as one line on stderr; ``-vv`` adds the traceback.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success; 1 a failure while working (network, server, disk, or a bug); 2 a usage
        or input error (bad id, bad option, refused store); 130 interrupted.

    Examples
    --------
    >>> main(["build", "not-an-id", "--out", "x.zarr"])
    2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"finkcube: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    _configure_logging(args.verbose)
    return _run(args)


def main_entry() -> NoReturn:
    """The console script: ``raise SystemExit(main())``, quiet when stdout closes early.

    When the reader of stdout goes away (``finkcube info STORE | head -1``), the output still
    buffered cannot be written; stdout is pointed at the null device so that the interpreter
    prints nothing more when it exits.
    """
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = code or EXIT_FAILURE
    raise SystemExit(code)


if __name__ == "__main__":
    main_entry()
