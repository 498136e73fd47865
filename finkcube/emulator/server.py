"""The emulator's HTTP server: a threaded stdlib server around :func:`~.app.handle`.

One thread per connection, HTTP/1.1 keep-alive (every reply has a Content-Length), a
listen backlog of 128 and no cap on threads, so a benchmark's 32 concurrent requests are
served at once; the per-request latency is a sleep in the connection's thread. Faults are
drawn by :class:`~.faults.FaultPlan`. Request bodies above ``max_body_bytes`` get a 413.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from finkcube.emulator.app import Reply, handle, internal_error
from finkcube.emulator.catalog import Catalog, load_catalog
from finkcube.emulator.faults import FaultPlan
from finkcube.errors import InputError

__all__ = ["Emulator"]

logger = logging.getLogger(__name__)

_API_PREFIX = "/api/"
#: How long an idle keep-alive connection is kept open, in seconds.
_IDLE_TIMEOUT_S = 60.0
_JOIN_TIMEOUT_S = 5.0
#: Bodies over the cap but under this size are read and dropped before the 413.
_DRAIN_LIMIT = 64 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "finkcube-emulator"
    timeout = _IDLE_TIMEOUT_S
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK hold every small reply back by ~40 ms on loopback.
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _send(self, reply: Reply, *, cut: bool = False) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body[: len(reply.body) // 2] if cut else reply.body)
        self.wfile.flush()

    def _read_body(self, limit: int) -> bytes | Reply:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return Reply(411, b'{"message": "Length Required"}\n')
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return Reply(400, b'{"message": "Bad Content-Length"}\n')
        if length > limit:
            self.close_connection = True
            # Read (and drop) a moderately large body so that the client, still sending,
            # sees the 413 rather than a reset connection.
            remaining = length if length <= _DRAIN_LIMIT else 0
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
            return Reply(
                413,
                b'{"message": "The data value transmitted exceeds the capacity limit."}\n',
            )
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self, method: str) -> None:
        emulator: Emulator = self.server.emulator
        parts = urlsplit(self.path)
        path = parts.path
        emulator._count(path)
        with emulator._track():
            body = self._read_body(emulator.max_body_bytes)
            if isinstance(body, Reply):
                self._send(body)
                return
            query: dict[str, str] = {}
            for name, value in parse_qsl(parts.query, keep_blank_values=True):
                query.setdefault(name, value)
            fault = None
            if path.startswith(_API_PREFIX):
                key = f"{method} {path}?{parts.query}\0".encode() + body
                fault = emulator._fault_plan.decide(key.decode("utf-8", "replace"))
                emulator._wait(emulator.latency_ms / 1000.0)
            if fault is not None:
                emulator._faults_served(fault)
                logger.debug("fault %s on %s %s", fault, method, self.path)
            if fault == "drop":
                self.close_connection = True
                return
            if fault == "503":
                self._send(Reply(503, b"<h1>503 Service Unavailable</h1>\n", "text/html"))
                return
            if fault == "429":
                retry = ("Retry-After", str(emulator.retry_after_s))
                self._send(Reply(429, b"<h1>429 Too Many Requests</h1>\n", "text/html", (retry,)))
                return
            if fault == "stall":
                emulator._wait(emulator.stall_s)
            try:
                reply = handle(
                    emulator.catalog,
                    method,
                    path,
                    query,
                    body,
                    self.headers.get("Content-Type"),
                )
            except Exception:
                logger.exception("the emulator failed on %s %s", method, self.path)
                reply = internal_error()
            if fault == "truncate":
                self.close_connection = True
                self._send(reply, cut=True)
                return
            self._send(reply)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    block_on_close = False

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(
            target=self._work,
            args=(request, client_address),
            name="finkcube-emulator-connection",
            daemon=True,
        )
        with self._lock:
            self._connections.add(request)
            self._workers.add(worker)
        self.emulator._connection_opened()
        worker.start()

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connections.discard(request)
                self._workers.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> list[threading.Thread]:
        """Shut every open connection down; return the threads still serving them."""
        with self._lock:
            connections = list(self._connections)
            workers = list(self._workers)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        return workers


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
        self._server: _Server | None = None
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
            server = _Server((self.host, self.port), self)
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
