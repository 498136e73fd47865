"""The errors and warnings finkcube raises.

Every error derives from :class:`FinkcubeError`; each subclass also derives from the builtin
a user would naturally catch::

    FinkcubeError (Exception)
    ├── InputError (ValueError)            bad id, option, path: the user's to fix (CLI exit 2)
    │   ├── InvalidIdError                 not a positive decimal 64-bit integer
    │   └── StoreRefusedError (+StoreError) a path that is not a finkcube store, a newer layout
    ├── StoreError (OSError)               the store or file system failed (CLI exit 1)
    │   └── IncompleteCubeError            a group whose write never finished
    ├── NotFoundError (LookupError)        unknown object or source (CLI exit 2)
    ├── ServiceError                       the service answered an error (status, url, body)
    │   └── BadRequestError (ValueError)   HTTP 400: the service's own message is quoted
    ├── TransportError (ConnectionError)   timeout, dropped connection, retries spent
    ├── DecodeError (ValueError)           a reply that is not what its format promises
    └── CubeError (ValueError)             stamps that cannot be stacked (shapes disagree)

    FinkcubeWarning (UserWarning)

The CLI turns :class:`InputError` and :class:`NotFoundError` into exit status 2 (the user must
act) and any other :class:`FinkcubeError` into exit status 1 (the service, the network or the
disk failed), printing the message on one line.
"""

from __future__ import annotations

import re

__all__ = [
    "BadRequestError",
    "CubeError",
    "DecodeError",
    "FinkcubeError",
    "FinkcubeWarning",
    "IncompleteCubeError",
    "InputError",
    "InvalidIdError",
    "NotFoundError",
    "ServiceError",
    "StoreError",
    "StoreRefusedError",
    "TransportError",
    "printable",
    "redact_text",
    "storage_failure",
]

#: How many characters of a reply body an error message quotes.
BODY_QUOTE_CHARS = 200


#: A URL's userinfo (``user:password@``), as it may appear in any text.
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^\s/?#@]+)@")


def _hide(match: re.Match[str]) -> str:
    user, colon, _ = match.group(2).partition(":")
    return f"{match.group(1)}{user + ':***' if colon else '***'}@"


def redact_text(text: str) -> str:
    """Return ``text`` with the credentials of every URL in it hidden.

    Examples
    --------
    >>> redact_text("request to https://me:s3cret@host/api failed")
    'request to https://me:***@host/api failed'
    >>> redact_text("http://token@host and http://host:80")
    'http://***@host and http://host:80'
    """
    return _USERINFO.sub(_hide, text)


def printable(text: str) -> str:
    r"""Return ``text`` with every non-printable character (escape, BEL, CR, ...) escaped.

    What a server sent can then reach a terminal without driving it.

    Examples
    --------
    >>> print(printable("\x1b[31mred\x07\r"))
    \x1b[31mred\x07\r
    """
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


#: The top-level packages of the cloud SDKs under fsspec's object stores (s3fs, gcsfs,
#: adlfs), and Icechunk. Their errors (no credentials found, an endpoint that does not
#: answer) are not OSErrors, but they are the store's failures, not finkcube's.
_STORAGE_SDKS = frozenset({"botocore", "aiobotocore", "google", "azure", "icechunk"})
#: The fsspec object stores, which hand their storage options on to their SDK only at the
#: first call: a TypeError raised there is an option the SDK does not take.
_OBJECT_STORES = frozenset({"s3fs", "gcsfs", "adlfs"})
_STORAGE_HINTS = {
    "NoCredentialsError": "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, "
    "or FSSPEC_S3='{\"anon\": true}' for a public bucket",
}


def storage_failure(exc: BaseException) -> str | None:
    """Return the one-line reason of an error a cloud storage SDK raised, else None.

    The reason is the message's first line, followed, in Icechunk's reports (a first line,
    a context, then a chain of ``-> cause`` lines), by the innermost cause. botocore's
    ``NoCredentialsError`` (an S3 store with no credentials configured) gets a hint naming
    where the credentials are read from.

    Examples
    --------
    >>> storage_failure(RuntimeError("a bug")) is None
    True
    """
    kind = type(exc)
    if isinstance(exc, TypeError) and _raised_in(exc) in _OBJECT_STORES | _STORAGE_SDKS:
        return (
            f"the storage options were refused: {exc} (check storage_options, or the "
            "FSSPEC_<PROTOCOL> variable fsspec reads them from)"
        )
    if kind.__module__.split(".")[0] not in _STORAGE_SDKS:
        return None
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return kind.__name__
    text = lines[0].removeprefix("x ")
    causes = [line.partition("-> ")[2] for line in lines[1:] if "-> " in line]
    if causes and causes[-1] != text:
        text = f"{text}: {causes[-1]}"
    hint = _STORAGE_HINTS.get(kind.__name__)
    return f"{text} ({hint})" if hint else text


def _raised_in(exc: BaseException) -> str:
    """The top-level package of the code that raised ``exc`` (its traceback's last frame)."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0]


def quote_body(body: bytes | str | None, limit: int = BODY_QUOTE_CHARS) -> str:
    """Return the start of a reply body as a printable one-line string.

    Parameters
    ----------
    body : bytes or str or None
        What the server sent.
    limit : int, optional
        How many characters to keep.

    Returns
    -------
    str
        ``repr``-like text: no newlines, ``...`` when cut.

    Examples
    --------
    >>> quote_body(b"<html>\\n<body>oops</body></html>", limit=12)
    "'<html> <body...'"
    >>> quote_body(b"\\x1b[2J\\x07bell")
    "'\\\\x1b[2J\\\\x07bell'"
    """
    if body is None:
        return "''"
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    cut = text[:limit] + ("..." if len(text) > limit else "")
    return repr(cut)


class FinkcubeError(Exception):
    """Root of every error finkcube raises."""


class InputError(FinkcubeError, ValueError):
    """Bad input from the user: an id, an option, a path. Nothing was sent or written."""


class InvalidIdError(InputError):
    """An identifier that is not a positive decimal 64-bit integer."""


class StoreError(FinkcubeError, OSError):
    """A store or file system that failed: unreadable metadata, a write that did not land."""


class StoreRefusedError(StoreError, InputError):
    """A path finkcube will not use as asked: not a finkcube store, or a newer layout.

    Both a :class:`StoreError` and an :class:`InputError`: the user must act (pass another
    path, ``overwrite=True``, or upgrade finkcube), nothing was written.
    """


class IncompleteCubeError(StoreError):
    """A cube group whose write never finished (an interrupted build); a re-run redoes it."""


class NotFoundError(FinkcubeError, LookupError):
    """An object or source the service does not know."""


class ServiceError(FinkcubeError):
    """The service answered with an error status.

    Parameters
    ----------
    message : str
        What went wrong, in one line.
    status : int or None
        The HTTP status code.
    url : str or None
        The URL that was asked.
    body : bytes or str or None
        The reply body; its first characters are kept in :attr:`body_start`.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        body: bytes | str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.body_start = quote_body(body) if body is not None else ""


class BadRequestError(ServiceError, ValueError):
    """HTTP 400: the service refused the request's arguments."""


class TransportError(FinkcubeError, ConnectionError):
    """The request did not complete: timeout, dropped connection, retries exhausted."""


class DecodeError(FinkcubeError, ValueError):
    """A reply body that does not hold what its format promises."""


class CubeError(FinkcubeError, ValueError):
    """Stamps that cannot be stacked into a cube."""


class FinkcubeWarning(UserWarning):
    """Something the user should know that does not stop the work."""
