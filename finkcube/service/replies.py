"""What the client makes of a reply beyond :mod:`finkcube.service.decode`: pure, no socket.

A PNG checked, a FITS file opened as an ``HDUList``, source records as an astropy
``Table``; the service's error page told apart from a garbled reply; and the errors a
request ends with: of a send that raised, of an HTTP status (a 400 quoting the service's own
text), of an error page in a 200, and of a request out of tries.
"""

from __future__ import annotations

import ast
import io
from typing import TYPE_CHECKING, Any

import numpy as np

from finkcube.errors import (
    BadRequestError,
    DecodeError,
    FinkcubeError,
    NotFoundError,
    ServiceError,
    TransportError,
    printable,
    quote_body,
)
from finkcube.names import SOURCE_ID, bare_column
from finkcube.service.decode import decode_fits
from finkcube.service.retry import Event

if TYPE_CHECKING:
    from astropy.io.fits import HDUList
    from astropy.table import Table

__all__ = [
    "RetriesSpentError",
    "decode_png",
    "final_error",
    "is_error_page",
    "one_line",
    "open_fits",
    "page_error",
    "records_table",
    "send_error",
    "service_text",
    "status_error",
]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BAD_REQUEST = 400
_OK = 200
#: How an HTML page starts (lower-cased, after blanks).
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<h1", b"<title")
#: An error message longer than this is not one of the service's short error texts.
_MESSAGE_BYTES = 4096


class RetriesSpentError(TransportError):
    """No complete reply in any try of a request (timeouts, dropped connections).

    A :class:`~finkcube.errors.TransportError` of its own kind so that a caller can tell a
    request worn out by a flaky link (a cutout then left out, asked again later) from one
    that cannot be sent at all (a TLS failure, an invalid URL).
    """


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` of an exception on one line, cut at ``limit`` characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text[:limit] + ("..." if len(text) > limit else "")


def service_text(body: bytes) -> str:
    """The ``text`` of a 400 body (a Python dict repr, or JSON), else the quoted body."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        for key in ("text", "message"):
            if isinstance(parsed.get(key), str):
                return printable(" ".join(parsed[key].split()))
    return quote_body(body)


def is_error_page(body: bytes) -> bool:
    """Whether a 200 body is the service's error page rather than a garbled reply.

    The service answers some failures with status 200 and an error page instead of what was
    asked: its cutout service's HTML page (a null cutout or a stale datalake path asked as
    FITS), or a short error message (``{"message": ...}``, ``{'status': 'error', ...}``)
    when its cutout store fails. Such a reply says the service failed on this request, not
    that bytes were lost on the way: it is asked again once, like a 500.

    Examples
    --------
    >>> is_error_page(b"<!doctype html><html><title>Error</title></html>")
    True
    >>> is_error_page(b'{"message": "Internal Server Error"}'), is_error_page(b"SIMPLE  =")
    (True, False)
    """
    head = body[:64].lstrip().lower()
    if head.startswith(_HTML_STARTS):
        return True
    text = body.strip()
    if not text.startswith(b"{") or len(text) > _MESSAGE_BYTES:
        return False
    try:
        parsed = ast.literal_eval(text.decode("utf-8", "replace"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return isinstance(parsed, dict) and (
        isinstance(parsed.get("message"), str) or parsed.get("status") == "error"
    )


def page_error(what: str, url: str, body: bytes) -> ServiceError:
    """The error of a 200 reply that carries the service's error page (see
    :func:`is_error_page`), quoting it.

    Examples
    --------
    >>> page_error("Science cutout of diaSourceId 5 (FITS)", "http://x", b"<html>oops")
    ServiceError("Science cutout of diaSourceId 5 (FITS): the service's error page instead of a reply from http://x: '<html>oops'")
    """  # noqa: E501
    text = f"{what}: the service's error page instead of a reply from {url}: {quote_body(body)}"
    return ServiceError(text, status=_OK, url=url, body=body)


def send_error(what: str, url: str, event: Event, exc: Exception) -> Exception:
    """The error a send that raised ``exc`` ends with: ``exc`` itself unless it is final.

    A TLS failure, or a request that cannot be made, is told as a
    :class:`~finkcube.errors.TransportError` naming the request; a timeout or a dropped
    connection stays as it is, to be asked again (and named by :func:`final_error`).
    """
    if event is Event.TLS:
        error = TransportError(f"{what}: TLS failure with {url}: {one_line(exc)}")
    elif event is Event.REQUEST:
        error = TransportError(f"{what}: request to {url} failed: {one_line(exc)}")
    else:
        return exc
    error.__cause__ = exc
    return error


def status_error(what: str, url: str, status: int, body: bytes) -> ServiceError:
    """The error of an HTTP ``status`` reply: a 400 quotes the service's own text.

    Examples
    --------
    >>> status_error("sources of diaObjectId 1", "http://x/api/v1/sources", 503, b"<h1>busy")
    ServiceError("sources of diaObjectId 1: HTTP 503 from http://x/api/v1/sources: '<h1>busy'")
    """
    if status == _BAD_REQUEST:
        text = f"{what}: the service refused the request: {service_text(body)}"
        return BadRequestError(text, status=status, url=url, body=body)
    text = f"{what}: HTTP {status} from {url}: {quote_body(body)}"
    return ServiceError(text, status=status, url=url, body=body)


def final_error(what: str, url: str, last: Exception | None, tries: int) -> FinkcubeError:
    """The error of a request that failed ``tries`` times, ``last`` being its last failure."""
    attempts = f"{tries} attempt{'s' if tries > 1 else ''}"
    if isinstance(last, ServiceError) and last.status == _OK:  # an error page
        error = ServiceError(
            f"{what}: the service's error page instead of a reply from {url} after "
            f"{attempts}: {last.body_start}",
            status=_OK, url=url,
        )  # fmt: skip
        error.body_start = last.body_start
        return error
    if isinstance(last, ServiceError):
        error = ServiceError(
            f"{what}: HTTP {last.status} from {url} after {attempts}: {last.body_start}",
            status=last.status, url=url,
        )  # fmt: skip
        error.body_start = last.body_start
        return error
    if isinstance(last, DecodeError):
        return ServiceError(
            f"{what}: undecodable reply from {url} after {attempts}: {last}",
            status=200, url=url,
        )  # fmt: skip
    return RetriesSpentError(
        f"{what}: no complete reply from {url} after {attempts}: {one_line(last)}"  # type: ignore[arg-type]
    )


def decode_png(content: bytes, *, source_id: int) -> bytes:
    """The PNG bytes as served; NotFoundError for an empty reply, DecodeError for no PNG."""
    if not content.strip():
        raise NotFoundError(f"no alert with {SOURCE_ID} {source_id}")
    if not content.startswith(_PNG_SIGNATURE):
        raise DecodeError(
            f"PNG cutout of {SOURCE_ID} {source_id} is not a PNG: {quote_body(content)}"
        )
    return content


def open_fits(content: bytes, *, kind: str, source_id: int) -> HDUList:
    """A cutout FITS file, checked by :func:`~finkcube.decode.decode_fits`, as an HDUList."""
    from astropy.io import fits

    decode_fits(content, kind=kind, source_id=source_id)  # checks the bytes, raises if bad
    return fits.open(io.BytesIO(content), ignore_missing_simple=True, lazy_load_hdus=False)


def records_table(records: list[dict[str, Any]], names: list[str]) -> Table:
    """Records with prefixed keys -> a Table with bare names, exact int64 ids, nulls masked."""
    from astropy.table import MaskedColumn, Table

    table = Table()
    for name in names:
        values = [record.get(name) for record in records]
        present = [v for v in values if v is not None]
        missing = [v is None for v in values]
        if present and all(isinstance(v, bool) for v in present):
            dtype: Any = bool
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            dtype = np.int64 if present or name.lower().endswith("id") else np.float64
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
            dtype = np.float64
        elif all(isinstance(v, str) for v in present):
            dtype = str
        else:
            dtype = object
        fill = {bool: False, np.int64: 0, np.float64: np.nan, str: ""}.get(dtype)
        data = np.array([fill if v is None else v for v in values], dtype=dtype)
        bare = bare_column(name)
        key = bare if bare not in table.colnames else name
        table[key] = MaskedColumn(data, mask=missing) if any(missing) else data
    return table
