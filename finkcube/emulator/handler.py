"""The emulator's HTTP layer: a threaded stdlib server and the handler of one request.

One thread per connection, HTTP/1.1 keep-alive (every reply has a Content-Length), a
listen backlog of 128 and no cap on threads. The handler reads the request (bodies above
``max_body_bytes`` get a 413), asks its :class:`Backend` for a fault, waits the latency,
and sends what :func:`~.app.handle` answers. :class:`~.server.Emulator` is the backend: it
runs this server and keeps the counters. A request carrying the
:data:`~.faults.FORCED_FAULT_HEADER` header gets the hostile reply it asks for instead
(:func:`~.faults.forced_fault`; not counted among the drawn faults).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import SplitResult, parse_qsl, urlsplit

from finkcube.emulator.app import Reply, handle, internal_error
from finkcube.emulator.faults import (
    FORCED_FAULT_HEADER,
    ForcedFault,
    compressed_fits,
    deep_json,
    forced_fault,
    junk_chunks,
)

if TYPE_CHECKING:
    from finkcube.emulator.catalog import Catalog

__all__ = ["Backend", "RequestHandler", "ThreadedServer"]

logger = logging.getLogger(__name__)

_API_PREFIX = "/api/"
#: How long an idle keep-alive connection is kept open, in seconds.
_IDLE_TIMEOUT_S = 60.0
#: Bodies over the cap but under this size are read and dropped before the 413.
_DRAIN_LIMIT = 64 * 1024 * 1024


class Backend(Protocol):
    """What the HTTP layer asks of the emulator it serves: settings, counters, faults."""

    max_body_bytes: int
    latency_ms: float
    retry_after_s: int
    stall_s: float

    @property
    def catalog(self) -> Catalog:
        """What is served."""
        ...

    def serving(self, path: str) -> AbstractContextManager[None]:
        """Count a request for ``path`` and hold it in flight while the block runs."""
        ...

    def draw_fault(self, request_key: str) -> str | None:
        """The fault of this attempt of the request (counted), or None."""
        ...

    def pause(self, seconds: float) -> None:
        """Wait, or return early when the emulator stops."""
        ...

    def connection_opened(self) -> None:
        """Count an accepted connection."""
        ...


def _request_key(method: str, parts: SplitResult, body: bytes) -> str:
    """What identifies a request across its retries: method, path, query and body."""
    key = f"{method} {parts.path}?{parts.query}\0".encode() + body
    return key.decode("utf-8", "replace")


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "finkcube-emulator"
    timeout = _IDLE_TIMEOUT_S
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK hold every small reply back by a delayed-ACK timeout.
    disable_nagle_algorithm = True
    server: ThreadedServer

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
        backend = self.server.backend
        parts = urlsplit(self.path)
        with backend.serving(parts.path):
            body = self._read_body(backend.max_body_bytes)
            if isinstance(body, Reply):
                self._send(body)
                return
            forced = forced_fault(self.headers.get(FORCED_FAULT_HEADER))
            if forced is not None and parts.path.startswith(_API_PREFIX):
                self._force(forced, backend, self._answer(backend.catalog, method, parts, body))
                return
            fault = None
            if parts.path.startswith(_API_PREFIX):
                fault = backend.draw_fault(_request_key(method, parts, body))
                backend.pause(backend.latency_ms / 1000.0)
            if fault is not None:
                logger.debug("fault %s on %s %s", fault, method, self.path)
                if self._fail(fault, backend):
                    return
            reply = self._answer(backend.catalog, method, parts, body)
            if fault == "truncate":
                self.close_connection = True
            self._send(reply, cut=fault == "truncate")

    def _fail(self, fault: str, backend: Backend) -> bool:
        """Inject ``fault``; return True when it replaces the reply, False when one follows."""
        if fault == "drop":
            self.close_connection = True
            return True
        if fault == "503":
            self._send(Reply(503, b"<h1>503 Service Unavailable</h1>\n", "text/html"))
            return True
        if fault == "429":
            retry = ("Retry-After", str(backend.retry_after_s))
            self._send(Reply(429, b"<h1>429 Too Many Requests</h1>\n", "text/html", (retry,)))
            return True
        if fault == "stall":
            backend.pause(backend.stall_s)
        return False  # a stall or a truncated reply: the reply is still sent

    def _force(self, fault: ForcedFault, backend: Backend, reply: Reply) -> None:
        """Send the hostile reply ``fault`` asks for (``reply`` is the real one), then close."""
        logger.debug("forced fault %s on %s", fault, self.path)
        self.close_connection = True
        if fault.kind == "deep-json":
            reply = Reply(200, deep_json(int(fault.value)))
        elif fault.kind == "huge-fits":
            reply = Reply(200, compressed_fits(int(fault.value)), "application/octet-stream")
        elif fault.kind in ("oversize", "drip"):
            size = int(fault.value) if fault.kind == "oversize" else len(reply.body)
            self.send_response(200 if fault.kind == "oversize" else reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(size))
            self.send_header("Connection", "close")
            self.end_headers()
            pieces = junk_chunks(size) if fault.kind == "oversize" else iter(reply.body)
            with contextlib.suppress(OSError):  # the client hung up: what it asked for
                for piece in pieces:
                    self.wfile.write(piece if isinstance(piece, bytes) else bytes((piece,)))
                    self.wfile.flush()
                    if fault.kind == "drip":
                        backend.pause(fault.value)
            return
        self._send(reply)

    def _answer(self, catalog: Catalog, method: str, parts: SplitResult, body: bytes) -> Reply:
        query: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            query.setdefault(name, value)
        try:
            return handle(
                catalog, method, parts.path, query, body, self.headers.get("Content-Type")
            )
        except Exception:
            logger.exception("the emulator failed on %s %s", method, self.path)
            return internal_error()


class ThreadedServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    block_on_close = False

    def __init__(self, address: tuple[str, int], backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        super().__init__(address, RequestHandler)

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
        self.backend.connection_opened()
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
