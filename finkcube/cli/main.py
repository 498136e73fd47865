"""The ``finkcube`` command line: argparse, one function per command, errors as one line.

``main(argv) -> int`` never raises for a user error: an :class:`~finkcube.errors.InputError`
or :class:`~finkcube.errors.NotFoundError` prints ``finkcube: error: ...`` and returns 2, any
other :class:`~finkcube.errors.FinkcubeError` returns 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from finkcube._version import __version__
from finkcube.config import resolve_url
from finkcube.errors import FinkcubeError, InputError, NotFoundError
from finkcube.ids import parse_id, read_objects_file
from finkcube.names import DEFAULT_URL, PLANES_ARGS, URL_ENV

if TYPE_CHECKING:
    from finkcube.pipeline.build import BuildReport

__all__ = ["main", "main_entry"]

logger = logging.getLogger("finkcube")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


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
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, 1, None, "a positive integer")
_rate = _number(float, 0.0, 1.0, "a number in [0, 1]")
_non_negative = _number(float, 0.0, None, "a number >= 0")


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
        "-v", "--verbose", action="count", default=0, help="more log messages (-vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("build", help="build one cube per object into a Zarr store")
    p.add_argument("ids", nargs="*", metavar="ID", help="diaObjectIds")
    p.add_argument("--out", required=True, metavar="STORE", help="Zarr store: path or URL")
    _add_url(p)
    p.add_argument("--objects-file", type=Path, metavar="FILE", help="one diaObjectId a line")
    p.add_argument("--planes", choices=PLANES_ARGS, default="data", help="data (default) or all")
    p.add_argument("--size", type=_positive_int, help="fixed canvas side in pixels")
    p.add_argument("--workers", type=_positive_int, default=8, help="concurrent requests (8)")
    p.add_argument("--overwrite", action="store_true", help="replace what is at STORE")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on a dask.distributed cluster")

    p = sub.add_parser("update", help="add the sources that appeared since the last build")
    p.add_argument("store", metavar="STORE")
    _add_url(p)
    p.add_argument("--workers", type=_positive_int, default=8, help="concurrent requests (8)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on a dask.distributed cluster")

    p = sub.add_parser("info", help="summarise a store or one cube")
    p.add_argument("store", metavar="STORE")
    p.add_argument("id", nargs="?", metavar="ID")

    p = sub.add_parser("emulator", help="serve the Fink LSST API emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: a free port")
    p.add_argument("--alerts", nargs="+", type=Path, default=[], metavar="FILE.avro")
    p.add_argument("--latency-ms", type=_non_negative, default=0.0, metavar="MS")
    p.add_argument("--faults", type=_rate, default=0.0, metavar="RATE")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("demo", help="build a sample cube from the built-in emulator")
    p.add_argument("--out", type=Path, default=Path("finkcube-demo"), metavar="DIR")

    p = sub.add_parser("plot", help="draw an object's stamps (PNG) or animate them (GIF)")
    p.add_argument("store", metavar="STORE")
    p.add_argument("id", metavar="ID")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    p.add_argument("--gif", action="store_true", help="write an animation instead")
    p.add_argument("--stretch", default="sigmoid")
    p.add_argument("--cmap", default="gray")
    return parser


def _object_ids(args: argparse.Namespace) -> list[int]:
    ids = [parse_id(v) for v in args.ids]
    if args.objects_file is not None:
        try:
            text = args.objects_file.read_text()
        except OSError as exc:
            reason = exc.strerror or exc
            raise InputError(f"cannot read objects file {args.objects_file}: {reason}") from exc
        ids.extend(read_objects_file(text, name=str(args.objects_file)))
    if not ids:
        raise InputError("no diaObjectId given: pass IDs or --objects-file FILE")
    return list(dict.fromkeys(ids))


#: How many unknown ids an error line names before it only counts the others.
_NAMED_IDS = 5


def _unknown_message(ids: Sequence[int]) -> str:
    """One line naming the objects the service lists no source for."""
    named = ", ".join(str(i) for i in ids[:_NAMED_IDS])
    more = f" and {len(ids) - _NAMED_IDS} more" if len(ids) > _NAMED_IDS else ""
    noun = "diaObjectId" if len(ids) == 1 else "diaObjectIds"
    return f"the service lists no source for {noun} {named}{more}: unknown object? check the id"


def _report_failures(report: BuildReport) -> int:
    """Print the failed objects (unknown ones on one line); 2 if all are unknown, else 1."""
    failed = report.failed
    unknown = [r.object_id for r in failed if r.not_found]
    for result in failed:
        if not result.not_found:
            print(
                f"finkcube: diaObjectId {result.object_id} failed: {result.error}",
                file=sys.stderr,
            )
    if unknown:
        print(f"finkcube: error: {_unknown_message(unknown)}", file=sys.stderr)
    if not failed:
        return EXIT_OK
    return EXIT_USAGE if len(unknown) == len(failed) else EXIT_FAILURE


def _warm_up() -> None:
    """Pay xarray's first-use cost on a thread while a build waits for the service.

    The first xarray object a process makes imports dask and looks up xarray's plug-ins
    (some 300 modules, about 0.45 s here). A command builds its first cube only after the
    last reply, so a one-object build paid it after all its requests; on this thread it
    overlaps the requests. The thread is not a daemon: an early exit waits for it.
    """

    def work() -> None:
        import xarray as xr

        xr.Dataset(coords={"time": [0.0]})

    threading.Thread(target=work, name="finkcube-warm-up").start()


def _cmd_build(args: argparse.Namespace) -> int:
    ids = _object_ids(args)
    args.url = resolve_url(args.url)
    _warm_up()
    from finkcube.pipeline.build import build_store

    if args.scheduler:
        from finkcube.pipeline.distributed import build_store_distributed

        report = build_store_distributed(
            ids,
            args.out,
            scheduler=args.scheduler,
            url=args.url,
            planes=args.planes,
            size=args.size,
            workers=args.workers,
            overwrite=args.overwrite,
        )
    else:
        report = build_store(
            ids,
            args.out,
            url=args.url,
            planes=args.planes,
            size=args.size,
            workers=args.workers,
            overwrite=args.overwrite,
            progress=None,
        )
    if report.results and all(r.not_found for r in report.results):
        unknown = [r.object_id for r in report.results]
        print(f"finkcube: error: {_unknown_message(unknown)}; nothing written", file=sys.stderr)
        return EXIT_USAGE
    print(report.summary())
    return _report_failures(report)


def _cmd_update(args: argparse.Namespace) -> int:
    if args.url is not None:
        args.url = resolve_url(args.url)
    _warm_up()
    from finkcube.pipeline.update import update_store

    report = update_store(
        args.store,
        url=args.url,
        workers=args.workers,
        progress=None,
        scheduler=args.scheduler or None,
    )
    print(report.summary())
    return _report_failures(report)


def _cmd_info(args: argparse.Namespace) -> int:
    from finkcube.cli.info import describe_cube, describe_store

    if args.id is None:
        print(describe_store(args.store))
    else:
        print(describe_cube(args.store, parse_id(args.id)))
    return EXIT_OK


def _cmd_emulator(args: argparse.Namespace) -> int:
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
}


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("finkcube: %(levelname)s: %(message)s"))
    root = logging.getLogger("finkcube")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``finkcube`` command line and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success; 1 a failure while working (network, server); 2 a usage or input error.

    Examples
    --------
    >>> main(["build", "not-an-id", "--out", "x.zarr"])
    2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"finkcube: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _configure_logging(args.verbose)
    try:
        return _COMMANDS[args.command](args)
    except (InputError, NotFoundError) as exc:
        print(f"finkcube: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FinkcubeError as exc:
        print(f"finkcube: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("finkcube: interrupted", file=sys.stderr)
        return 130


def main_entry() -> NoReturn:
    """The console script: ``raise SystemExit(main())``."""
    raise SystemExit(main())


if __name__ == "__main__":
    main_entry()
