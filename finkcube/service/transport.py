"""The client's transport: the ``requests.Session`` it makes, and what a failed send was.

Every request of :class:`~finkcube.service.client.FinkClient` goes through
``Session.post`` of its session (its own, or the caller's used as it is), so cookies a
server sets, hooks, redirects, ``.netrc``, proxies and the CA bundle of the environment all
behave as requests documents. :func:`failure_event` names what a send that raised ended
with, for :func:`~finkcube.service.retry.decide`.
"""

from __future__ import annotations

import requests
import urllib3
from requests.adapters import HTTPAdapter

from finkcube.service.retry import Event

__all__ = ["failure_event", "make_session"]


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
