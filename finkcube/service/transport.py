"""The client's transport pieces: one pooled ``requests.Session``, and the retry backoff.

:class:`~finkcube.client.FinkClient` holds the session this makes, posts through
:class:`DirectPost` when the session is its own, and runs its retry loop with
:func:`backoff_delay` between tries.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

__all__ = ["DirectPost", "backoff_delay", "make_session", "poster"]


def make_session(url: str, workers: int) -> requests.Session:
    """A session for ``url`` keeping ``workers`` live connections, the environment read once.

    The client's own retry loop handles failures, so the adapter never retries. With
    ``trust_env``, requests reads the environment (proxies, CA bundle, ``.netrc``) again on
    every request, about 1 ms of CPU each, a third of what a cutout request costs the
    client: it is read here once, for the service's URL. Verification stays on.
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(workers, 10), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    settings = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(settings["proxies"])
    session.verify = settings["verify"]
    session.cert = settings["cert"]
    session.auth = requests.utils.get_netrc_auth(url)
    session.trust_env = False
    return session


def backoff_delay(attempt: int, asked: float | None, backoff: float, max_backoff: float) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): the server's ``Retry-After`` when
    it gave one, else full jitter, uniform in ``[0, min(max_backoff, backoff * 2**attempt)]``.

    Examples
    --------
    >>> backoff_delay(3, 0.7, backoff=0.5, max_backoff=30.0)
    0.7
    >>> 0.0 <= backoff_delay(2, None, backoff=0.5, max_backoff=30.0) <= 2.0
    True
    """
    if asked is not None:
        return asked
    return random.uniform(0.0, min(max_backoff, backoff * 2**attempt))


class DirectPost:
    """POST JSON through a session's adapter, skipping requests' per-request merging.

    ``Session.post`` merges the session's settings, cookies and hooks into every request
    and looks for redirects in every reply: about 1.1 ms of CPU per cutout request,
    which 16 threads pay under one GIL. Here each URL's request is prepared once by the
    session (headers, auth, cookies), copied with a new body, and sent by the session's
    adapter with its ``verify``, ``cert`` and ``proxies``: 0.6 ms. The adapter maps
    failures to the same ``requests`` exceptions, and redirects are followed as
    ``Session.post`` follows them. Used only on a session the client made itself; a
    session given by the caller keeps all of its behaviour.
    """

    def __init__(self, session: requests.Session, headers: Mapping[str, str]) -> None:
        self._session = session
        self._headers = {**headers, "Content-Type": "application/json"}
        self._prepared: dict[str, requests.PreparedRequest] = {}
        self._lock = threading.Lock()

    def _template(self, url: str) -> requests.PreparedRequest:
        with self._lock:
            found = self._prepared.get(url)
            if found is None:
                request = requests.Request("POST", url, headers=self._headers, data=b"{}")
                found = self._prepared[url] = self._session.prepare_request(request)
            return found

    def post(self, url: str, payload: Mapping[str, Any], timeout: float) -> requests.Response:
        """Send ``payload`` as JSON to ``url``; the reply's body is not read yet."""
        request = self._template(url).copy()
        # As requests encodes ``json=``: strict JSON, UTF-8.
        request.body = json.dumps(payload, allow_nan=False).encode()
        request.headers["Content-Length"] = str(len(request.body))
        session = self._session
        reply = session.get_adapter(url).send(
            request, timeout=timeout, verify=session.verify, cert=session.cert,
            proxies=session.proxies,
        )  # fmt: skip
        if not reply.is_redirect:
            return reply
        redirects = session.resolve_redirects(
            reply, request, timeout=timeout, verify=session.verify, cert=session.cert,
            proxies=session.proxies,
        )  # fmt: skip
        return [reply, *redirects][-1]


#: ``post(url, payload, timeout)``: send JSON, return the reply with its body not yet read.
Post = Callable[[str, Mapping[str, Any], float], requests.Response]


def poster(session: requests.Session, own: bool, headers: Mapping[str, str]) -> Post:
    """How the client posts: :class:`DirectPost` on its own session, else ``Session.post``."""
    if own:
        return DirectPost(session, headers).post

    def post(url: str, payload: Mapping[str, Any], timeout: float) -> requests.Response:
        return session.post(url, json=dict(payload), headers=dict(headers), timeout=timeout)

    return post
