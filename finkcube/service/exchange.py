"""One request of :class:`~finkcube.service.client.FinkClient` and its retries.

:class:`Exchange` sends a request through :func:`~finkcube.service.transport.post` (its
body capped, its try cut at a deadline), decodes the reply and asks again as
:func:`~finkcube.service.retry.decide` says, ending with the error
:mod:`~finkcube.service.replies` names.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import urllib3

from finkcube.errors import DecodeError, NotFoundError, TransportError
from finkcube.service.limits import OversizeReplyError
from finkcube.service.replies import (
    final_error,
    is_error_page,
    one_line,
    page_error,
    send_error,
    status_error,
)
from finkcube.service.retry import Event, GiveUp, Limits, Outcome, decide
from finkcube.service.transport import BodyTooLarge, DeadlinePassed, failure_event, post

__all__ = ["Exchange"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Failed:
    """A failed try: what happened, and the error it ends with if it is not asked again."""

    outcome: Outcome
    error: Exception


@dataclass(frozen=True, slots=True)
class Exchange:
    """How a client sends: its session, headers, timeout, deadline, retries, concurrency."""

    session: requests.Session
    headers: dict[str, str]
    timeout: float
    deadline: float
    limits: Limits
    in_flight: threading.BoundedSemaphore

    def post(
        self,
        url: str,
        payload: dict[str, Any],
        decode: Callable[[bytes], T],
        what: str,
        cap: tuple[str, int],
        method: str = "POST",
    ) -> T:
        """POST ``payload`` and return ``decode(body)``, asking again as :func:`decide` says.

        ``cap`` is the name of the client's setting that caps the body, and its value;
        ``method="GET"`` sends a GET without fields (see :func:`~.transport.post`).
        """
        internal_errors = 0  # HTTP 500 replies so far
        attempt = 0
        while True:
            tried = self._try(url, payload, decode, what, cap, method)
            if not isinstance(tried, _Failed):
                return tried
            outcome, error = tried.outcome, tried.error
            internal_errors += outcome.internal_error
            decision = decide(attempt, outcome, self.limits, internal_errors=internal_errors)
            if isinstance(decision, GiveUp):
                if decision.spent:
                    raise final_error(what, url, error, attempt + 1) from error
                raise error
            attempt += 1
            logger.info(
                "%s: retry %d/%d in %.2f s after %s",
                what, attempt, self.limits.retries, decision.delay, one_line(error),
            )  # fmt: skip
            time.sleep(decision.delay)

    def _try(
        self,
        url: str,
        payload: dict[str, Any],
        decode: Callable[[bytes], T],
        what: str,
        cap: tuple[str, int],
        method: str = "POST",
    ) -> T | _Failed:
        """One try: the decoded reply, or how it failed and the error that tells it.

        A body past its cap is refused (:class:`OversizeReplyError`, raised: the same
        request would get the same reply); a try past the deadline counts as a timeout.
        """
        try:
            with self.in_flight:
                reply = post(
                    self.session, url, payload, headers=self.headers, timeout=self.timeout,
                    deadline=self.deadline, cap=cap[1], method=method,
                )  # fmt: skip
        except BodyTooLarge as exc:
            raise OversizeReplyError(
                f"{what}: reply from {url} refused: {exc} ({cap[0]})"
            ) from None
        except DeadlinePassed as exc:
            error = TransportError(
                f"{what}: no complete reply from {url} within the {self.deadline:g} s "
                f"deadline ({exc})"
            )
            return _Failed(Outcome(Event.TIMEOUT), error)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            event = failure_event(exc)
            return _Failed(Outcome(event), send_error(what, url, event, exc))
        status, body = reply.status, reply.body
        if 200 <= status < 300:
            try:
                return decode(body)
            except OversizeReplyError:
                raise  # the same request would get the same reply
            except DecodeError as exc:
                if is_error_page(body):  # the service failed on it: asked once more only
                    return _Failed(Outcome(Event.ERROR_PAGE), page_error(what, url, body))
                return _Failed(Outcome(Event.UNDECODABLE), exc)
            except NotFoundError as exc:  # an empty body: no such alert
                return _Failed(Outcome(Event.EMPTY), exc)
        outcome = Outcome(Event.STATUS, status, reply.headers.get("Retry-After"))
        return _Failed(outcome, status_error(what, url, status, body))
