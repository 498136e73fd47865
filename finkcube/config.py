"""Settings: explicit argument, then ``FINKCUBE_*`` environment variables, then defaults."""

from __future__ import annotations

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
        For any other scheme or a URL with no host.

    Examples
    --------
    >>> resolve_url(env={})
    'https://api.lsst.fink-portal.org'
    >>> resolve_url(env={"FINKCUBE_URL": "http://127.0.0.1:8000/"})
    'http://127.0.0.1:8000'
    """
    environ = os.environ if env is None else env
    chosen = url or environ.get(URL_ENV) or DEFAULT_URL
    parts = urlsplit(chosen)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(
            f"invalid service URL {chosen!r}: expected http://HOST[:PORT] or https://HOST"
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
        When the variable does not parse.

    Examples
    --------
    >>> resolve_number(None, "FINKCUBE_TIMEOUT", 30.0, float, env={"FINKCUBE_TIMEOUT": "5"})
    5.0
    >>> resolve_number(2.0, "FINKCUBE_TIMEOUT", 30.0, float, env={"FINKCUBE_TIMEOUT": "5"})
    2.0
    """
    if value is not None:
        return value
    text = (os.environ if env is None else env).get(name, "").strip()
    if not text:
        return default
    try:
        return cast(text)
    except ValueError:
        raise InputError(f"invalid {name}={text!r}: expected a {cast.__name__} number") from None
