"""Settings: explicit argument, then ``FINKCUBE_*`` environment variables, then defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from finkcube._types import DEFAULT_URL, URL_ENV
from finkcube.errors import InputError

__all__ = ["resolve_url"]


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
