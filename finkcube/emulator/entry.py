"""The emulator's command line: ``finkcube emulator`` and ``python -m finkcube.emulator``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from finkcube.emulator.server import Emulator
from finkcube.errors import FinkcubeError, InputError

__all__ = ["run_server", "serve"]

logger = logging.getLogger(__name__)


def run_server(
    host: str = "127.0.0.1",
    port: int = 0,
    alerts: Iterable[str | Path] = (),
    latency_ms: float = 0.0,
    faults: float = 0.0,
    seed: int = 0,
    *,
    out: IO[str] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Serve the emulator in the foreground until interrupted (``finkcube emulator``).

    Prints ``finkcube emulator listening on http://HOST:PORT`` as its first line (flushed),
    then serves until KeyboardInterrupt, SIGTERM or ``stop`` is set.

    Parameters
    ----------
    host, port, alerts, latency_ms, faults, seed
        As for :class:`Emulator`.
    out : text stream, optional
        Where the first line goes (default ``sys.stdout``).
    stop : threading.Event, optional
        Set it to stop serving (for callers running this in a thread).

    Returns
    -------
    int
        0, the exit status.

    Raises
    ------
    InputError
        For a port outside 0..65535 or one that cannot be bound, a latency or fault rate
        that is not a finite number in range, or another bad option; nothing is served.
    """
    stream = sys.stdout if out is None else out
    stop_event = threading.Event() if stop is None else stop
    emulator = Emulator(host, port, alerts, latency_ms=latency_ms, faults=faults, seed=seed)
    previous = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        previous = signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    try:
        with emulator:
            stream.write(f"finkcube emulator listening on {emulator.url}\n")
            stream.flush()
            try:
                while not stop_event.wait(0.2):
                    pass
            except KeyboardInterrupt:
                logger.debug("interrupted: stopping the emulator")
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m finkcube.emulator",
        description="Serve the Fink LSST API emulator until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: a free one)")
    parser.add_argument(
        "--alerts", nargs="+", action="extend", default=[], metavar="FILE.avro",
        help="more Avro alert files to serve",
    )  # fmt: skip
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay per request")
    parser.add_argument("--faults", type=float, default=0.0, help="transient fault rate, 0-1")
    parser.add_argument("--seed", type=int, default=0, help="seed of generated data and faults")
    return parser


def serve(argv: Sequence[str] | None = None) -> int:
    """Parse ``finkcube emulator`` options and run :func:`run_server`; return the exit status.

    Errors print one line on stderr: exit status 2 for bad input, 1 otherwise.
    """
    args = _parser().parse_args(argv)
    try:
        return run_server(
            args.host, args.port, args.alerts, args.latency_ms, args.faults, args.seed
        )
    except InputError as exc:
        sys.stderr.write(f"finkcube emulator: error: {exc}\n")
        return 2
    except FinkcubeError as exc:
        sys.stderr.write(f"finkcube emulator: error: {exc}\n")
        return 1
