"""The retry policy of :class:`~finkcube.service.client.FinkClient`: a pure function.

:func:`decide` is told what one try of a request ended with (an :class:`Outcome`), how many
tries went before and the client's :class:`Limits`; it answers :class:`Retry` (wait so many
seconds, then ask again) or :class:`GiveUp` (raise an error of that class). It sends nothing
and reads no clock of its own (``now`` and the random draw are parameters), so every rule is
unit-tested without a socket. The rules:

- a timeout, a dropped connection, a body shorter than announced, a body that does not decode,
  a 429 and any 5xx are retried, at most ``retries`` times in all;
- a 500 is retried once only: the service answers 500 for deterministic failures (a cutout
  missing from its alert, a value that reaches an assert), 502-504 under load; so is a 200
  carrying the service's error page instead of a cutout (an HTML page or an error message:
  its answer, for a FITS request, to a null cutout or a stale datalake path), which asking
  five times in a row cannot mend either (a later run can: see ``update_store``);
- a 400 (:class:`~finkcube.errors.BadRequestError`), any other status
  (:class:`~finkcube.errors.ServiceError`), an empty cutout body (no such alert:
  :class:`~finkcube.errors.NotFoundError`), a TLS failure or a request that cannot be sent
  (:class:`~finkcube.errors.TransportError`) are never retried: asking again cannot help;
- before retry ``n`` (0-based) the client waits the server's ``Retry-After`` when a reply
  gives one (seconds or an HTTP date), else a random time in
  ``[0, min(max_backoff, backoff * 2**n)]`` ("full jitter": many clients retrying at once
  spread out instead of coming back together); either wait is capped by ``max_backoff``.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from finkcube.errors import (
    BadRequestError,
    FinkcubeError,
    NotFoundError,
    ServiceError,
    TransportError,
)

__all__ = ["Event", "GiveUp", "Limits", "Outcome", "Retry", "decide", "retry_after"]

_BAD_REQUEST = 400
_TOO_MANY_REQUESTS = 429
_INTERNAL_ERROR = 500
#: Past this many doublings the full-jitter bound is ``max_backoff`` for any sane setting;
#: stopping there keeps ``backoff * 2**n`` a finite float for any number of retries.
_MAX_DOUBLINGS = 64


class Event(enum.Enum):
    """What a failed try ended with."""

    #: An HTTP reply of a status that is not a success (see :attr:`Outcome.status`).
    STATUS = "HTTP status"
    #: No connection, or no bytes, within the timeout.
    TIMEOUT = "timeout"
    #: The connection was refused, reset or closed before a complete reply.
    DROPPED = "dropped connection"
    #: A body shorter than its announced length, or a broken chunked/compressed body.
    SHORT_BODY = "short body"
    #: A success whose body does not decode (not JSON, not FITS, an HTML page...).
    UNDECODABLE = "undecodable body"
    #: A success whose body is the service's error page (HTML, or an error message) instead
    #: of what was asked: retried like a 500.
    ERROR_PAGE = "error page"
    #: An empty body for a cutout: the service's way of saying "no such alert".
    EMPTY = "empty body"
    #: The TLS handshake or certificate verification failed.
    TLS = "TLS failure"
    #: The request could not be made at all (an invalid URL, too many redirects...).
    REQUEST = "request error"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One failed try: its :class:`Event`, and for a reply its status and ``Retry-After``."""

    event: Event
    status: int | None = None
    retry_after: str | None = None

    @property
    def internal_error(self) -> bool:
        """Whether this is a 500 or an error page, which :func:`decide` retries once only."""
        return self.status == _INTERNAL_ERROR or self.event is Event.ERROR_PAGE


@dataclass(frozen=True, slots=True)
class Limits:
    """How far the client goes: ``retries`` after the first try, the backoff in seconds.

    ``internal_error_retries`` is how often a 500 or an error page in a 200 is retried
    (within ``retries``).
    """

    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    internal_error_retries: int = 1


@dataclass(frozen=True, slots=True)
class Retry:
    """Ask again after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop and raise an ``error``; ``spent`` when it is because the tries are spent.

    A request that gave up with ``spent`` false failed in a way asking again cannot mend.
    """

    error: type[FinkcubeError]
    spent: bool


def decide(
    attempt: int,
    outcome: Outcome,
    limits: Limits,
    *,
    internal_errors: int = 0,
    now: float | None = None,
    uniform: Callable[[float, float], float] = random.uniform,
) -> Retry | GiveUp:
    """Decide what follows the failed try number ``attempt`` (0 for the first try).

    Parameters
    ----------
    attempt : int
        How many tries went before the one that just failed.
    outcome : Outcome
        How it failed.
    limits : Limits
        The client's retries and backoff.
    internal_errors : int, optional
        How many of the tries so far, this one included, were answered 500 or an error page.
    now : float, optional
        The current time (seconds since the epoch), for a ``Retry-After`` given as an HTTP
        date (default: the clock).
    uniform : callable, optional
        ``uniform(a, b)``, a random number in ``[a, b]`` (default: :func:`random.uniform`).

    Returns
    -------
    Retry or GiveUp

    Examples
    --------
    >>> limits = Limits(retries=2, backoff=0.5, max_backoff=30.0)
    >>> decide(0, Outcome(Event.STATUS, 503, retry_after="2"), limits)
    Retry(delay=2.0)
    >>> decide(0, Outcome(Event.STATUS, 400), limits)
    GiveUp(error=<class 'finkcube.errors.BadRequestError'>, spent=False)
    >>> decide(2, Outcome(Event.TIMEOUT), limits)
    GiveUp(error=<class 'finkcube.errors.TransportError'>, spent=True)
    >>> 0.0 <= decide(1, Outcome(Event.DROPPED), limits).delay <= 1.0
    True
    """
    event, status = outcome.event, outcome.status
    if event is Event.EMPTY:
        return GiveUp(NotFoundError, spent=False)
    if event in (Event.TLS, Event.REQUEST):
        return GiveUp(TransportError, spent=False)
    if event is Event.STATUS:
        if status is None:
            raise ValueError("an Outcome of Event.STATUS needs its status")
        if status == _BAD_REQUEST:
            return GiveUp(BadRequestError, spent=False)
        if status < _INTERNAL_ERROR and status != _TOO_MANY_REQUESTS:
            return GiveUp(ServiceError, spent=False)
    replied = (Event.STATUS, Event.UNDECODABLE, Event.ERROR_PAGE)
    spent_error = ServiceError if event in replied else TransportError
    if attempt >= limits.retries:
        return GiveUp(spent_error, spent=True)
    if outcome.internal_error and internal_errors > limits.internal_error_retries:
        return GiveUp(spent_error, spent=True)
    asked = retry_after(outcome.retry_after, limits.max_backoff, now=now)
    if asked is not None:
        return Retry(asked)
    bound = min(limits.max_backoff, limits.backoff * 2.0 ** min(attempt, _MAX_DOUBLINGS))
    return Retry(uniform(0.0, bound))


def retry_after(value: str | None, cap: float, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for, between 0 and ``cap``; None if it asks none.

    Parameters
    ----------
    value : str or None
        The header: seconds (an integer, or a decimal number as some servers send) or an
        HTTP date.
    cap : float
        The longest wait the client accepts (its ``max_backoff``): a server asking an hour
        must not stall a build for an hour.
    now : float, optional
        The current time for an HTTP date (default: the clock).

    Examples
    --------
    >>> retry_after("2", cap=30.0), retry_after("3600", cap=30.0), retry_after("soon", 30.0)
    (2.0, 30.0, None)
    >>> retry_after("Thu, 01 Jan 1970 00:00:20 GMT", cap=30.0, now=5.0)
    15.0
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(cap, max(0.0, seconds))
