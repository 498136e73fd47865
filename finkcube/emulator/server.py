"""The emulator's server: :class:`Emulator` serves the catalog from a background thread.

The HTTP layer (one thread per connection, keep-alive, 413 on large bodies, the faults
drawn by :class:`~.faults.FaultPlan` and the per-request latency, a sleep in the
connection's thread) is in :mod:`~.handler`; a benchmark's 32 concurrent requests are
served at once.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from finkcube.emulator.catalog import Catalog, load_catalog
from finkcube.emulator.faults import FaultPlan
from finkcube.emulator.handler import ThreadedServer
from finkcube.errors import InputError

__all__ = ["Emulator"]

logger = logging.getLogger(__name__)

_JOIN_TIMEOUT_S = 5.0


class Emulator:
    """The Fink LSST API emulator, served from a background thread.

    Parameters
    ----------
    host : str, optional
        Address to bind (default loopback only).
    port : int, optional
        Port to bind; 0 (default) picks a free one.
    alerts : iterable of str or Path, optional
        More Avro alert files to serve besides the packaged sample.
    latency_ms : float, optional
        Delay added to every API request (the real service takes about 250 ms).
    faults : float, optional
        Rate (0 to 1) of transient faults: 503, 429 with ``Retry-After``, dropped connection,
        truncated body, stall. A request never fails more than 3 times in a row.
    seed : int, optional
        Seed of the generated objects and of the faults.
    retry_after_s : int, optional
        ``Retry-After`` of a 429 fault, in seconds.
    stall_s : float, optional
        How long a stall fault holds the reply, in seconds.
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
        if float(latency_ms) < 0 or float(stall_s) < 0:
            raise InputError(
                f"invalid latency {latency_ms!r} ms or stall {stall_s!r} s: expected >= 0"
            )
        self.host = host
        self.port = int(port)
        self.alerts = tuple(alerts)
        self.latency_ms = float(latency_ms)
        self.seed = int(seed)
        self.retry_after_s = int(retry_after_s)
        self.stall_s = float(stall_s)
        self.max_body_bytes = int(max_body_bytes)
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

    # -- used by the handler ------------------------------------------------------------

    def _count(self, path: str) -> None:
        with self._stats_lock:
            self.requests[path] += 1

    def _connection_opened(self) -> None:
        with self._stats_lock:
            self.connections += 1

    def _faults_served(self, fault: str) -> None:
        with self._stats_lock:
            self.faults_served[fault] += 1

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _track(self) -> _InFlight:
        return _InFlight(self)

    def reset_stats(self) -> None:
        """Zero the request, fault and connection counters and the in-flight high-water mark."""
        with self._stats_lock:
            self.requests.clear()
            self.faults_served.clear()
            self.connections = 0
            self.max_in_flight = self.in_flight


class _InFlight:
    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    def __enter__(self) -> None:
        emulator = self._emulator
        with emulator._stats_lock:
            emulator.in_flight += 1
            emulator.max_in_flight = max(emulator.max_in_flight, emulator.in_flight)

    def __exit__(self, *exc_info: object) -> None:
        with self._emulator._stats_lock:
            self._emulator.in_flight -= 1
