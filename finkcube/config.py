"""Settings: explicit argument, then ``FINKCUBE_*`` environment variables, then defaults."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

from finkcube.errors import InputError
from finkcube.names import DEFAULT_URL, URL_ENV

__all__ = ["RETRIES_ENV", "TIMEOUT_ENV", "resolve_number", "resolve_url"]

#: Environment variables read for the client's settings when no argument is given.
TIMEOUT_ENV = "FINKCUBE_TIMEOUT"
RETRIES_ENV = "FINKCUBE_RETRIES"

N = TypeVar("N", int, float)

#: What each variable must hold, as (words for the error message, the check).
_ACCEPTS: dict[str, tuple[str, Callable[[float], bool]]] = {
    TIMEOUT_ENV: ("a number of seconds > 0", lambda v: math.isfinite(v) and v > 0),
    RETRIES_ENV: ("an integer >= 0", lambda v: v >= 0),
}


def resolve_url(url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Return the API base URL to use, checked and without a trailing slash.

    Parameters
    ----------
    url : str or None
        An explicit URL; wins over everything else.
    env : mapping, optional
        The environment to read ``FINKCUBE_URL`` from (default: ``os.environ``).

    Returns
    -------
    str
        An ``http`` or ``https`` URL.

    Raises
    ------
    InputError
        For any other scheme or a URL with no host; the message names ``FINKCUBE_URL``
        when the URL came from it.

    Examples
    --------
    >>> resolve_url(env={})
    'https://api.lsst.fink-portal.org'
    >>> resolve_url(env={"FINKCUBE_URL": "http://127.0.0.1:8000/"})
    'http://127.0.0.1:8000'
    """
    environ = os.environ if env is None else env
    from_env = environ.get(URL_ENV) if not url else None
    chosen = url or from_env or DEFAULT_URL
    parts = urlsplit(chosen)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        where = f" (from {URL_ENV}: fix or unset the variable)" if from_env else ""
        raise InputError(
            f"invalid service URL {chosen!r}{where}: expected http://HOST[:PORT] or https://HOST"
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
