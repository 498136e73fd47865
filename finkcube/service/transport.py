"""The client's transport: the ``requests.Session`` it makes, and what a failed send was.

Every request of :class:`~finkcube.service.client.FinkClient` goes through
``Session.post`` of its session (its own, or the caller's used as it is), so cookies a
server sets, hooks, redirects, ``.netrc``, proxies and the CA bundle of the environment all
behave as requests documents. :func:`failure_event` names what a send that raised ended
with, for :func:`~finkcube.service.retry.decide`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from finkcube.service.limits import ERROR_BODY_BYTES
from finkcube.service.retry import Event

__all__ = [
    "BodyTooLarge",
    "DeadlinePassed",
    "Reply",
    "failure_event",
    "make_session",
    "post",
    "read_body",
]

_CHUNK_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """A reply body over its cap: ``size`` bytes announced, or read so far, past ``cap``."""

    def __init__(self, cap: int, size: int, *, announced: bool) -> None:
        how = "announces" if announced else "passed"
        super().__init__(f"the body {how} {size} bytes, over the cap of {cap} bytes")
        self.cap, self.size = cap, size


class DeadlinePassed(Exception):
    """A reply body still incomplete when the try's total deadline came."""

    def __init__(self, received: int) -> None:
        super().__init__(f"{received} bytes of the body received")
        self.received = received


class _Watchdog:
    """Shut a reply's socket for reading when ``seconds`` have passed, unless stopped first.

    ``HTTPResponse.shutdown`` (urllib3 >= 2.3, the declared minimum) wakes a read blocked in
    another thread. A reply without it (a caller's session with another adapter) is left to
    its per-read timeout and the clock check between chunks: closing it from this thread
    would break ``http.client`` in the middle of the read.
    """

    def __init__(self, reply: requests.Response, seconds: float) -> None:
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._cut, args=(reply,))
        self._timer.daemon = True
        self._timer.start()

    def _cut(self, reply: requests.Response) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            shutdown = getattr(reply.raw, "shutdown", None)
            if callable(shutdown):
                with contextlib.suppress(Exception):  # already released: nothing to cut
                    shutdown()

    def stop(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


def _announced_length(reply: requests.Response) -> int | None:
    value = reply.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def read_body(
    reply: requests.Response, *, cap: int, seconds: float, keep_prefix: bool = False
) -> bytes:
    """Read the body of a streamed reply, at most ``cap`` bytes, within ``seconds``.

    Parameters
    ----------
    reply : requests.Response
        A reply of ``Session.post(..., stream=True)``, its body not read yet.
    cap : int
        The most bytes (after any ``Content-Encoding`` is undone) accepted.
    seconds : float
        How long the body may take to arrive in all.
    keep_prefix : bool, optional
        Return the first ``cap`` bytes of a longer body instead of raising (for an error
        reply, read only to be quoted).

    Returns
    -------
    bytes
        The body.

    Raises
    ------
    BodyTooLarge
        When the body announces or reaches more than ``cap`` bytes (and not ``keep_prefix``).
    DeadlinePassed
        When the body is not complete within ``seconds``.
    requests.RequestException, urllib3.exceptions.HTTPError, OSError
        When the body cannot be read (see :func:`failure_event`).

    The caller closes ``reply``: that releases its connection when the body was read whole,
    and drops it otherwise.
    """
    announced = _announced_length(reply)
    if announced is not None and announced > cap and not keep_prefix:
        raise BodyTooLarge(cap, announced, announced=True)
    end = time.monotonic() + seconds
    body = bytearray()
    watchdog = _Watchdog(reply, seconds)
    try:
        for piece in reply.iter_content(_CHUNK_BYTES):
            body += piece
            if len(body) > cap:
                if keep_prefix:
                    return bytes(body[:cap])
                raise BodyTooLarge(cap, len(body), announced=False)
            if time.monotonic() > end:
                raise DeadlinePassed(len(body))
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        if watchdog.fired:
            raise DeadlinePassed(len(body)) from exc
        raise
    finally:
        watchdog.stop()
    if watchdog.fired and (announced is None or len(body) < announced):
        raise DeadlinePassed(len(body))  # a body without a length, cut quietly
    return bytes(body)


def make_session(workers: int) -> requests.Session:
    """A session keeping ``workers`` live connections to the service, never retrying itself.

    The client's own retry loop decides what is asked again, so the adapter has
    ``max_retries=0``. ``trust_env`` stays on: requests reads the proxies, the CA bundle and
    ``.netrc`` of the environment at each request, a cost far below the service's answer
    time, and a change of the environment applies as in any other requests program.
    TLS verification stays on.

    Examples
    --------
    >>> with make_session(16) as session:
    ...     session.get_adapter("https://api.lsst.fink-portal.org").max_retries.total
    0
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(workers, 10), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def failure_event(exc: BaseException) -> Event:
    """What a send or a body read that raised ``exc`` ended with.

    Examples
    --------
    >>> failure_event(requests.ReadTimeout()), failure_event(requests.ConnectionError())
    (<Event.TIMEOUT: 'timeout'>, <Event.DROPPED: 'dropped connection'>)
    >>> failure_event(requests.exceptions.InvalidURL())
    <Event.REQUEST: 'request error'>
    """
    if isinstance(exc, requests.exceptions.SSLError):
        return Event.TLS
    if isinstance(exc, requests.Timeout):  # ConnectTimeout is also a ConnectionError
        return Event.TIMEOUT
    if isinstance(exc, requests.ConnectionError):
        return Event.DROPPED
    if isinstance(
        exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
    ):
        return Event.SHORT_BODY  # the body ended before its announced length, or was garbled
    if isinstance(exc, requests.RequestException):
        return Event.REQUEST
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):  # anything requests let by
        return Event.DROPPED
    raise TypeError(f"not a transport failure: {exc!r}")


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply read whole: its status, headers and body."""

    status: int
    headers: Any
    body: bytes


def post(
    session: requests.Session,
    url: str,
    payload: dict[str, Any],
    *,
    headers: dict[str, str],
    timeout: float,
    deadline: float,
    cap: int,
    method: str = "POST",
) -> Reply:
    """POST ``payload`` as JSON and read the reply, within ``deadline`` seconds in all.

    ``method="GET"`` sends a GET without fields instead (``payload`` must be empty): the
    one request the API answers only to a GET, the list of ``/api/v1/tags``.

    A success's body is refused past ``cap`` bytes (:class:`BodyTooLarge`); only the first
    :data:`~finkcube.service.limits.ERROR_BODY_BYTES` of an error reply's are read, to be
    quoted. :class:`DeadlinePassed` when the body is not complete ``deadline`` seconds after
    the request was sent; the errors of ``Session.post`` and of :func:`read_body` otherwise.
    """
    started = time.monotonic()
    if method == "GET" and not payload:
        reply = session.get(url, headers=headers, timeout=timeout, stream=True)
    else:
        reply = session.post(url, json=payload, headers=headers, timeout=timeout, stream=True)
    with reply:  # releases the connection, or drops one whose body was not read whole
        ok = 200 <= reply.status_code < 300
        body = read_body(
            reply,
            cap=cap if ok else ERROR_BODY_BYTES,
            seconds=deadline - (time.monotonic() - started),
            keep_prefix=not ok,
        )
    return Reply(reply.status_code, reply.headers, body)
