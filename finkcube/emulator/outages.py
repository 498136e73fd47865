"""Cutouts that fail for a while, then are served: the service's transient holes.

On the real service a listed source can lack its cutouts for a while (cutouts are ingested
by another streaming job than sources: an empty 200), or have them behind a stale path
(cutout rows point at nightly files that move after the nightly merge: a 500, or an HTML
page in a 200 for FITS). :class:`Outages` holds such holes for the emulator: the next
``times`` cutout requests of a source get the reply asked, then it is served as usual.
Tests reach it through :meth:`~.catalog.Catalog.fail_cutouts`.

:func:`pandas2_rows` writes null text and boolean cells as a server on pandas 2 does: the
string ``"nan"``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Final

from finkcube.errors import InputError

__all__ = ["CUTOUT_ERROR_PAGE", "GARBLED_BODY", "OUTAGE_REPLIES", "Outages", "pandas2_rows"]

#: The cutout service's HTML error page, which it answers with status 200 to a FITS request
#: for a null cutout or a stale datalake path.
CUTOUT_ERROR_PAGE: Final = (
    b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
    b"<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was "
    b"unable to complete your request.</p>\n"
)
#: What a failing cutout request gets: ``empty`` a 200 with an empty body (no cutout row
#: yet), ``500`` the service's 500, ``html`` a 200 carrying :data:`CUTOUT_ERROR_PAGE`
#: whatever the format, ``null`` what a null cutout gets (FITS: the HTML page in a 200;
#: array and PNG: a 500), ``garbled`` a 200 whose body decodes as nothing.
OUTAGE_REPLIES: Final = ("empty", "500", "html", "null", "garbled")
#: The body of a ``garbled`` reply: neither JSON, nor FITS, nor PNG, nor an error page.
GARBLED_BODY: Final = b"\x00\x17garbled\xff cutout bytes\x00"


class Outages:
    """Which sources' cutout requests fail, how, and how many more times (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failing: dict[int, tuple[str, int | None]] = {}

    def add(self, source_id: int, reply: str, times: int | None) -> None:
        """Fail the next ``times`` cutout requests of a source (None: until :meth:`end`)."""
        if reply not in OUTAGE_REPLIES:
            expected = ", ".join(OUTAGE_REPLIES)
            raise InputError(f"invalid reply {reply!r}: expected one of {expected}")
        counted = isinstance(times, int) and not isinstance(times, bool) and times >= 0
        if times is not None and not counted:
            raise InputError(f"invalid times {times!r}: expected a count >= 0, or None")
        with self._lock:
            self._failing[int(source_id)] = (reply, times)

    def end(self, source_id: int) -> None:
        """Serve a source's cutouts as usual from now on."""
        with self._lock:
            self._failing.pop(int(source_id), None)

    def take(self, source_id: int) -> str | None:
        """The reply of this cutout request of a source, or None to serve it (counted)."""
        with self._lock:
            entry = self._failing.get(source_id)
            if entry is None:
                return None
            reply, left = entry
            if left is None:
                return reply
            if left <= 1:
                del self._failing[source_id]
            else:
                self._failing[source_id] = (reply, left - 1)
            return reply if left >= 1 else None


def pandas2_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with each null cell of a text or boolean column written ``"nan"``, as pandas 2.

    Examples
    --------
    >>> pandas2_rows([{"b": "g", "f": True, "x": 1.0}, {"b": None, "f": None, "x": None}])
    [{'b': 'g', 'f': True, 'x': 1.0}, {'b': 'nan', 'f': 'nan', 'x': None}]
    """
    text: set[str] = set()
    for row in rows:
        text.update(k for k, v in row.items() if isinstance(v, str | bool))
    return [{k: ("nan" if v is None and k in text else v) for k, v in row.items()} for row in rows]
