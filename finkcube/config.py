"""Settings: explicit argument, then ``FINKCUBE_*`` environment variables, then defaults."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

from finkcube.errors import InputError, redact_text
from finkcube.names import DEFAULT_URL, URL_ENV

__all__ = [
    "MAX_SIZE",
    "RETRIES_ENV",
    "TIMEOUT_ENV",
    "redact_url",
    "resolve_number",
    "resolve_url",
]

#: The largest fixed canvas side (pixels) a cube may ask for: Rubin stamps are 30 to 102
#: pixels a side, so anything larger is only padding (and memory: a side of 10**6 would
#: need terabytes per epoch).
MAX_SIZE = 1024

#: Environment variables read for the client's settings when no argument is given.
TIMEOUT_ENV = "FINKCUBE_TIMEOUT"
RETRIES_ENV = "FINKCUBE_RETRIES"

N = TypeVar("N", int, float)

#: What each variable must hold, as (words for the error message, the check).
_ACCEPTS: dict[str, tuple[str, Callable[[float], bool]]] = {
    TIMEOUT_ENV: ("a number of seconds > 0", lambda v: math.isfinite(v) and v > 0),
    RETRIES_ENV: ("an integer >= 0", lambda v: v >= 0),
}


#: What a valid service URL looks like, for the error messages.
_URL_FORM = "expected http://HOST[:PORT] or https://HOST[:PORT], with no path, query or fragment"


def redact_url(url: str) -> str:
    """Return ``url`` with the password of its userinfo (or a bare user token) hidden.

    The URL is what an attribute, a log line or an error message may show; the client
    still connects with the credentials.

    Examples
    --------
    >>> redact_url("https://user:secret@api.example.org")
    'https://user:***@api.example.org'
    >>> redact_url("https://token@api.example.org"), redact_url("http://127.0.0.1:8000")
    ('https://***@api.example.org', 'http://127.0.0.1:8000')
    """
    return redact_text(url)


def _url_problem(text: str) -> str | None:
    """What is wrong with ``text`` as the service's base URL, or None."""
    if not text:
        return "it is empty"
    if any(c.isspace() or not c.isprintable() for c in text):
        return "it holds a space or a control character"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        if "port" in str(exc).lower():
            return "its port is not a number in 1..65535"
        return f"it does not parse ({exc})"
    if parts.scheme not in ("http", "https"):
        return "its scheme is not http or https"
    if not parts.hostname:
        return "it has no host"
    if port == 0:
        return "its port is not in 1..65535"
    if parts.query or "?" in text:
        return "it has a ?query"
    if parts.fragment or "#" in text:
        return "it has a #fragment"
    if parts.path.strip("/"):
        return f"it has a path ({parts.path}): give the service's root"
    return None


def resolve_url(url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Return the API base URL to use, checked and without a trailing slash.

    Parameters
    ----------
    url : str or None
        An explicit URL; wins over everything else (an empty one is refused, not skipped).
    env : mapping, optional
        The environment to read ``FINKCUBE_URL`` from (default: ``os.environ``); an empty
        variable counts as unset.

    Returns
    -------
    str
        An ``http`` or ``https`` URL: a host, maybe a port, credentials maybe, nothing else.

    Raises
    ------
    InputError
        Before anything is sent, for another scheme, no host, a port outside 1..65535, a
        blank or control character, a query, a fragment or a path; the message says what
        is wrong (credentials hidden) and names ``FINKCUBE_URL`` when the URL came from it.

    Examples
    --------
    >>> resolve_url(env={})
    'https://api.lsst.fink-portal.org'
    >>> resolve_url(env={"FINKCUBE_URL": "http://127.0.0.1:8000/"})
    'http://127.0.0.1:8000'
    >>> resolve_url("http://host:99999", env={})
    Traceback (most recent call last):
    ...
    finkcube.errors.InputError: invalid service URL 'http://host:99999': its port is not ...
    """
    environ = os.environ if env is None else env
    from_env = environ.get(URL_ENV) if url is None else None
    chosen = url if url is not None else (from_env or DEFAULT_URL)
    problem = _url_problem(chosen)
    if problem is not None:
        where = f" (from {URL_ENV}: fix or unset the variable)" if from_env else ""
        raise InputError(
            f"invalid service URL {redact_url(chosen)!r}{where}: {problem}; {_URL_FORM}"
        )
    return chosen.rstrip("/")


def resolve_number(
    value: N | None,
    name: str,
    default: N,
    cast: Callable[[str], N],
    env: Mapping[str, str] | None = None,
) -> N:
    """Return ``value``, else the environment variable ``name`` cast, else ``default``.

    Parameters
    ----------
    value : int or float or None
        An explicit setting; wins over everything else.
    name : str
        The environment variable (``FINKCUBE_TIMEOUT``, ``FINKCUBE_RETRIES``).
    default : int or float
        Used when neither is given.
    cast : callable
        ``int`` or ``float``, applied to the variable's text.
    env : mapping, optional
        The environment (default: ``os.environ``).

    Raises
    ------
    InputError
        When the variable does not parse, or holds a value out of range (a timeout that is
        not a positive number of seconds, a negative number of retries); the message names
        the variable. An explicit ``value`` is the caller's to check.

    Examples
    --------
    >>> resolve_number(None, "FINKCUBE_TIMEOUT", 30.0, float, env={"FINKCUBE_TIMEOUT": "5"})
    5.0
    >>> resolve_number(2.0, "FINKCUBE_TIMEOUT", 30.0, float, env={"FINKCUBE_TIMEOUT": "5"})
    2.0
    >>> resolve_number(None, "FINKCUBE_RETRIES", 3, int, env={"FINKCUBE_RETRIES": "-1"})
    Traceback (most recent call last):
    ...
    finkcube.errors.InputError: invalid FINKCUBE_RETRIES='-1': expected an integer >= 0; ...
    """
    if value is not None:
        return value
    text = (os.environ if env is None else env).get(name, "").strip()
    if not text:
        return default
    expected, accepts = _ACCEPTS.get(name, (f"a {cast.__name__} number", math.isfinite))
    try:
        number = cast(text)
    except ValueError:
        number = None
    if number is None or not accepts(number):
        raise InputError(f"invalid {name}={text!r}: expected {expected}; fix or unset the variable")
    return number
