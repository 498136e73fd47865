"""The emulator's server: :class:`Emulator` serves the catalog from a background thread.

The HTTP layer (one thread per connection, keep-alive, 413 on large bodies) is in
:mod:`~.handler`; it asks the emulator, through the few public methods of the
:class:`~.handler.Backend` protocol, to count each request, draw its fault from the
:class:`~.faults.FaultPlan` and wait its latency. The latency is a sleep in the connection's
own thread, so concurrent requests wait side by side rather than in a queue.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import operator
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from finkcube.emulator.catalog import Catalog, load_catalog
from finkcube.emulator.faults import FaultPlan
from finkcube.emulator.handler import ThreadedServer
from finkcube.errors import InputError

__all__ = ["Emulator"]

logger = logging.getLogger(__name__)

_JOIN_TIMEOUT_S = 5.0
#: The highest TCP port.
MAX_PORT = 65535
#: The longest latency or stall the emulator accepts, in seconds: longer ones would only
#: hang the client (and overflow the thread timer for absurd values).
MAX_DELAY_S = 3600.0


def _check_port(port: object) -> int:
    try:
        value = operator.index(port)  # type: ignore[arg-type]
    except TypeError:
        value = -1
    if isinstance(port, bool) or not 0 <= value <= MAX_PORT:
        raise InputError(
            f"invalid port {port!r}: choose an integer from 0 to {MAX_PORT} (0 picks a free one)"
        )
    return value


def _check_delay(what: str, value: object, scale: float, unit: str) -> float:
    """``value`` as a float, refused unless finite and from 0 to MAX_DELAY_S (in ``unit``)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    top = MAX_DELAY_S * scale
    if not (math.isfinite(number) and 0.0 <= number <= top):
        raise InputError(f"invalid {what} {value!r}: choose a number of {unit} from 0 to {top:g}")
    return number


def _check_count(what: str, value: object, top: int) -> int:
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = -1
    if isinstance(value, bool) or not 0 <= number <= top:
        raise InputError(f"invalid {what} {value!r}: choose an integer from 0 to {top}")
    return number


class Emulator:
    """The Fink LSST API emulator, served from a background thread.

    Parameters
    ----------
    host : str, optional
        Address to bind (default loopback only).
    port : int, optional
        Port to bind, 0 to 65535; 0 (default) picks a free one.
    alerts : iterable of str or Path, optional
        More Avro alert files to serve besides the packaged sample.
    latency_ms : float, optional
        Delay added to every API request, in milliseconds (0 to one hour), to imitate the
        network and the service's own response time.
    faults : float, optional
        Rate (0 to 1) of transient faults: 503, 429 with ``Retry-After``, dropped connection,
        truncated body, stall. A request never fails more than 3 times in a row.
    seed : int, optional
        Seed of the generated objects and of the faults.
    retry_after_s : int, optional
        ``Retry-After`` of a 429 fault, in seconds (0 to one hour).
    stall_s : float, optional
        How long a stall fault holds the reply, in seconds (0 to one hour).
    max_body_bytes : int, optional
        Larger request bodies get a 413.
    catalog : Catalog, optional
        Serve this catalog instead of loading one (``alerts`` and ``seed`` then only seed
        the faults).

    Attributes
    ----------
    requests : collections.Counter
        Requests received, by URL path (faulted ones included).
    faults_served : collections.Counter
        Faults injected, by kind (see :data:`~.faults.FAULT_KINDS`).
    connections : int
        TCP connections accepted (keep-alive reuse keeps it low).
    in_flight, max_in_flight : int
        Requests being served now, and the most served at once.

    Raises
    ------
    InputError
        For a port outside 0..65535, or a latency, stall, fault rate, ``Retry-After`` or body
        cap that is not a finite number in its range.

    Notes
    -----
    The HTTP layer (:mod:`~.handler`) uses the emulator only through :meth:`serving`,
    :meth:`draw_fault`, :meth:`pause`, :meth:`connection_opened` and the settings above
    (the :class:`~.handler.Backend` protocol).

    Examples
    --------
    >>> import requests
    >>> with Emulator() as emu:
    ...     reply = requests.post(
    ...         emu.url + "/api/v1/sources",
    ...         json={"diaObjectId": str(emu.catalog.named("single")), "columns": "r:band"},
    ...         timeout=10,
    ...     )
    >>> reply.status_code, len(reply.json())
    (200, 1)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        alerts: Iterable[str | Path] = (),
        latency_ms: float = 0.0,
        faults: float = 0.0,
        seed: int = 0,
        retry_after_s: int = 1,
        stall_s: float = 2.0,
        max_body_bytes: int = 1_000_000,
        *,
        catalog: Catalog | None = None,
    ) -> None:
        self.host = host
        self.port = _check_port(port)
        self.alerts = tuple(alerts)
        self.latency_ms = _check_delay("latency", latency_ms, 1000.0, "milliseconds")
        self.seed = int(seed)
        self.retry_after_s = _check_count("Retry-After", retry_after_s, int(MAX_DELAY_S))
        self.stall_s = _check_delay("stall", stall_s, 1.0, "seconds")
        self.max_body_bytes = _check_count("body cap", max_body_bytes, 2**62)
        self._fault_plan = FaultPlan(faults, seed=self.seed)
        self._catalog = catalog
        self.requests: collections.Counter[str] = collections.Counter()
        self.faults_served: collections.Counter[str] = collections.Counter()
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._stats_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadedServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def faults(self) -> float:
        """The fault rate."""
        return self._fault_plan.rate

    @property
    def catalog(self) -> Catalog:
        """What is served (loaded on first use or at start)."""
        if self._catalog is None:
            self._catalog = load_catalog(self.alerts, seed=self.seed)
        return self._catalog

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server, without a trailing slash."""
        if self._server is None:
            raise InputError("the emulator is not running: call start() or use it in a with")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Emulator:
        """Load the catalog, bind the port and serve from a daemon thread; return self."""
        if self._server is not None:
            return self
        self.catalog  # noqa: B018 (load before the first request, not during it)
        try:
            server = ThreadedServer((self.host, self.port), self)
        except OSError as exc:
            raise InputError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}; "
                "choose another --port or --host"
            ) from exc
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="finkcube-emulator",
            daemon=True,
        )
        self._thread.start()
        logger.debug("emulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and wait for the threads to end."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        for worker in server.close_connections():
            worker.join(_JOIN_TIMEOUT_S)
        if thread is not None:
            thread.join(_JOIN_TIMEOUT_S)
        self._server = None
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset_stats(self) -> None:
        """Zero the request, fault and connection counters and the in-flight high-water mark."""
        with self._stats_lock:
            self.requests.clear()
            self.faults_served.clear()
            self.connections = 0
            self.max_in_flight = self.in_flight

    # -- what the HTTP handler uses (the handler.Backend protocol) ------------------------

    @contextlib.contextmanager
    def serving(self, path: str) -> Iterator[None]:
        """Count one request for ``path`` and hold it in flight while the block runs."""
        with self._stats_lock:
            self.requests[path] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._stats_lock:
                self.in_flight -= 1

    def draw_fault(self, request_key: str) -> str | None:
        """Return the fault this attempt of a request gets (counted), or None to serve it.

        ``request_key`` identifies the request (the same for each retry): see
        :meth:`~.faults.FaultPlan.decide`.
        """
        fault = self._fault_plan.decide(request_key)
        if fault is not None:
            with self._stats_lock:
                self.faults_served[fault] += 1
        return fault

    def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less when the emulator stops meanwhile."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def connection_opened(self) -> None:
        """Count one accepted TCP connection."""
        with self._stats_lock:
            self.connections += 1
