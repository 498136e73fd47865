"""HTTP client of the Fink LSST API: one pooled session, timeouts, retries, error mapping.

:class:`FinkClient` only moves bytes, through ``requests.Session.post``; the reply bodies are
decoded by the pure functions of :mod:`finkcube.service.decode` (inside the retry loop, so
that a garbled reply is asked again). Payloads are built and checked by
:mod:`finkcube.service.payloads`, replies read beyond decoding by
:mod:`finkcube.service.replies`, the session made by :mod:`finkcube.service.transport`; what
a failed try gets is decided by :mod:`finkcube.service.retry`, and :meth:`FinkClient.map`
runs on :mod:`finkcube.service.pool`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import requests
import urllib3

from finkcube.config import RETRIES_ENV, TIMEOUT_ENV, resolve_number, resolve_url
from finkcube.errors import DecodeError, InputError, NotFoundError
from finkcube.ids import parse_id
from finkcube.names import CUTOUTS_PATH, KIND_ALL, KINDS, SOURCE_ID, SOURCES_PATH
from finkcube.names import PNG_OPTIONS as PNG_OPTIONS  # importable from here, as before
from finkcube.service.decode import (
    SourceCutouts,
    Stamp,
    decode_cutout_arrays,
    decode_fits,
    decode_source_records,
    stamps_from_arrays,
    stamps_from_fits,
)
from finkcube.service.payloads import (
    check_number,
    cutout_payload,
    cutout_request,
    request_columns,
    sources_request,
    user_agent,
)
from finkcube.service.pool import OrderedPool
from finkcube.service.replies import (
    decode_png,
    final_error,
    one_line,
    open_fits,
    records_table,
    send_error,
    status_error,
)
from finkcube.service.retry import Event, GiveUp, Limits, Outcome, decide
from finkcube.service.transport import failure_event, make_session

if TYPE_CHECKING:
    from astropy.io.fits import HDUList
    from astropy.table import Table

__all__ = ["FinkClient"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Defaults of the settings an argument or FINKCUBE_TIMEOUT / FINKCUBE_RETRIES can change.
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 5


@dataclass(frozen=True, slots=True)
class _Failed:
    """A failed try: what happened, and the error it ends with if it is not asked again."""

    outcome: Outcome
    error: Exception


class FinkClient:
    """Client of the Fink LSST API (``/api/v1/sources`` and ``/api/v1/cutouts``).

    Parameters
    ----------
    url : str or None, optional
        The API's base URL (default: ``$FINKCUBE_URL``, else the public service).
    session : requests.Session or None, optional
        A session to use as is (and not close): its headers, auth, cookies, hooks and
        adapters apply to every request. By default the client makes one whose connection
        pool holds ``workers`` connections.
    workers : int, optional
        Most requests in flight at once from this client, and the size of the pool
        :meth:`map` runs on.
    timeout : float, optional
        Seconds to wait for a connection or for the next bytes of a reply (default:
        ``$FINKCUBE_TIMEOUT``, else 30).
    retries : int, optional
        How many times (default: ``$FINKCUBE_RETRIES``, else 5) a failed request is asked
        again (5xx, 429, timeouts, dropped connections, truncated or undecodable replies;
        a 500 once only); 400, other 4xx, "not found", TLS failures and input errors are
        never retried (see :mod:`finkcube.service.retry`).
    backoff, max_backoff : float, optional
        Retry ``n`` waits a random time in ``[0, min(max_backoff, backoff * 2**n)]`` (full
        jitter), or the server's ``Retry-After``, capped by ``max_backoff``.
    env : mapping, optional
        Environment read for ``FINKCUBE_URL``, ``FINKCUBE_TIMEOUT`` and ``FINKCUBE_RETRIES``
        (default: ``os.environ``).

    Examples
    --------
    >>> client = FinkClient("http://127.0.0.1:1", workers=2, env={})
    >>> client.url, client.workers
    ('http://127.0.0.1:1', 2)
    >>> client.cutouts("12a")
    Traceback (most recent call last):
    ...
    finkcube.errors.InvalidIdError: invalid diaSourceId '12a': expected a positive decimal integer of at most 19 digits
    >>> client.close()
    """  # noqa: E501

    def __init__(
        self,
        url: str | None = None,
        *,
        session: requests.Session | None = None,
        workers: int = 8,
        timeout: float | None = None,
        retries: int | None = None,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InputError(f"invalid workers {workers!r}: expected a positive integer")
        timeout = resolve_number(timeout, TIMEOUT_ENV, DEFAULT_TIMEOUT, float, env)
        retries = resolve_number(retries, RETRIES_ENV, DEFAULT_RETRIES, int, env)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InputError(f"invalid retries {retries!r}: expected an integer >= 0")
        check_number("timeout", timeout, positive=True)
        check_number("backoff", backoff)
        check_number("max_backoff", max_backoff)
        self.url = resolve_url(url, env)
        self.workers = workers
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self._limits = Limits(retries, self.backoff, self.max_backoff)
        self._own_session = session is None
        self._session = make_session(workers) if session is None else session
        self._headers = {"User-Agent": user_agent(), "Accept": "*/*"}
        self._in_flight = threading.BoundedSemaphore(workers)
        self._pool = OrderedPool(workers, "finkcube-client")

    def __repr__(self) -> str:
        return f"FinkClient({self.url!r}, workers={self.workers})"

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the :meth:`map` pool and close the session the client made."""
        self._pool.close()
        if self._own_session:
            self._session.close()

    def __enter__(self) -> FinkClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _post(
        self, path: str, payload: dict[str, Any], decode: Callable[[bytes], T], what: str
    ) -> T:
        """POST ``payload`` and return ``decode(body)``, asking again as :func:`decide` says."""
        url = self.url + path
        internal_errors = 0  # HTTP 500 replies so far
        attempt = 0
        while True:
            tried = self._try(url, payload, decode, what)
            if not isinstance(tried, _Failed):
                return tried
            outcome, error = tried.outcome, tried.error
            internal_errors += outcome.internal_error
            decision = decide(attempt, outcome, self._limits, internal_errors=internal_errors)
            if isinstance(decision, GiveUp):
                if decision.spent:
                    raise final_error(what, url, error, attempt + 1) from error
                raise error
            attempt += 1
            logger.info(
                "%s: retry %d/%d in %.2f s after %s",
                what, attempt, self.retries, decision.delay, one_line(error),
            )  # fmt: skip
            time.sleep(decision.delay)

    def _try(
        self, url: str, payload: dict[str, Any], decode: Callable[[bytes], T], what: str
    ) -> T | _Failed:
        """One try: the decoded reply, or how it failed and the error that tells it."""
        try:
            with self._in_flight:
                reply = self._session.post(
                    url, json=payload, headers=self._headers, timeout=self.timeout
                )
                body = reply.content  # read inside: a dropped or short body raises here
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            event = failure_event(exc)
            return _Failed(Outcome(event), send_error(what, url, event, exc))
        status = reply.status_code
        if 200 <= status < 300:
            try:
                return decode(body)
            except DecodeError as exc:
                return _Failed(Outcome(Event.UNDECODABLE), exc)
            except NotFoundError as exc:  # an empty body: no such alert
                return _Failed(Outcome(Event.EMPTY), exc)
        outcome = Outcome(Event.STATUS, status, reply.headers.get("Retry-After"))
        return _Failed(outcome, status_error(what, url, status, body))

    # ------------------------------------------------------------------ sources

    def source_records(
        self, object_ids: int | str | Iterable[int | str], columns: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Return the raw source records of one or many objects, in one request.

        Parameters
        ----------
        object_ids : int or str or iterable of int or str
            One ``diaObjectId`` or several (sent comma-separated in one request).
        columns : iterable of str, optional
            Columns to ask for, with or without their ``r:`` prefix (default: all; slow).

        Returns
        -------
        list of dict
            The records as served (prefixed keys, newest first; ``[]`` for unknown objects).

        Raises
        ------
        InvalidIdError
            For a malformed id (nothing is sent).
        """
        payload, what = sources_request(object_ids, columns)
        return self._post(SOURCES_PATH, payload, decode_source_records, what)

    def sources(
        self, object_ids: int | str | Iterable[int | str], columns: Iterable[str] | None = None
    ) -> Table:
        """Return the source table of one or many objects.

        Parameters
        ----------
        object_ids : int or str or iterable of int or str
            One ``diaObjectId`` or several (one request).
        columns : iterable of str, optional
            Columns to ask for, with or without their ``r:`` prefix (default: all).

        Returns
        -------
        astropy.table.Table
            One row per source, newest first as served; column names without their prefix;
            ids as exact int64; missing values masked. No rows for unknown objects.
        """
        records = self.source_records(object_ids, columns)
        names = list(dict.fromkeys(key for record in records for key in record))
        if not names and columns is not None:
            names = list(request_columns(columns) or ())
        return records_table(records, names)

    # ------------------------------------------------------------------ cutouts

    def cutouts(
        self,
        source_id: int | str,
        kind: str = KIND_ALL,
        output_format: str = "array",
        **png_options: Any,
    ) -> dict[str, np.ndarray] | np.ndarray | HDUList | bytes:
        """Return the cutouts of one alert in the format asked.

        Parameters
        ----------
        source_id : int or str
            The alert's ``diaSourceId``.
        kind : str, optional
            ``Science``, ``Template``, ``Difference`` or ``All`` (array only).
        output_format : str, optional
            ``array`` (default), ``FITS`` or ``PNG`` (case-insensitive).
        **png_options
            PNG only: ``stretch``, ``colormap``, ``pmin``, ``pmax``, ``convolution_kernel``.

        Returns
        -------
        dict of str to numpy.ndarray, numpy.ndarray, astropy.io.fits.HDUList or bytes
            array with ``kind="All"``: ``{kind: float32 array}`` for the three kinds; array
            with one kind: its float32 array; FITS: the file opened as an ``HDUList``;
            PNG: the image's bytes.

        Raises
        ------
        InputError
            For a bad id or option (nothing is sent).
        NotFoundError
            When the service knows no such alert.
        """
        sid, kind, fmt, payload = cutout_request(source_id, kind, output_format, png_options)
        what = f"{kind} cutout of {SOURCE_ID} {sid} ({fmt})"
        if fmt == "PNG":
            return self._post(CUTOUTS_PATH, payload, lambda b: decode_png(b, source_id=sid), what)
        if fmt == "FITS":
            return self._post(
                CUTOUTS_PATH, payload, lambda b: open_fits(b, kind=kind, source_id=sid), what
            )
        kinds = KINDS if kind == KIND_ALL else (kind,)
        arrays = self._post(
            CUTOUTS_PATH,
            payload,
            lambda b: decode_cutout_arrays(b, source_id=sid, kinds=kinds),
            what,
        )
        return arrays if kind == KIND_ALL else arrays[kind]

    def cutout_arrays(self, source_id: int | str) -> SourceCutouts:
        """Return the data planes of one alert's three cutouts (one ``kind=All`` request).

        Raises
        ------
        NotFoundError
            When the service knows no such alert.
        CubeError
            When the kinds' shapes disagree.
        """
        sid = parse_id(source_id, what=SOURCE_ID)
        return self._post(
            CUTOUTS_PATH,
            cutout_payload(sid, KIND_ALL, "array"),
            lambda b: stamps_from_arrays(sid, decode_cutout_arrays(b, source_id=sid)),
            f"cutouts of {SOURCE_ID} {sid} (array)",
        )

    def cutout_fits(self, source_id: int | str) -> SourceCutouts:
        """Return one alert's three cutouts with every plane, PSF and header (3 FITS requests).

        Raises
        ------
        NotFoundError
            When the service knows no such alert.
        CubeError
            When the kinds' shapes disagree.
        """
        sid = parse_id(source_id, what=SOURCE_ID)
        stamps = [self._fits_stamp(sid, kind) for kind in KINDS]
        return stamps_from_fits(sid, stamps)

    def _fits_stamp(self, sid: int, kind: str) -> Stamp:
        return self._post(
            CUTOUTS_PATH,
            cutout_payload(sid, kind, "FITS"),
            lambda body: decode_fits(body, kind=kind, source_id=sid),
            f"{kind} cutout of {SOURCE_ID} {sid} (FITS)",
        )

    # ------------------------------------------------------------------ concurrency

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Apply ``fn`` to every item on the client's pool, yielding results in input order.

        The pool holds ``workers`` threads and is shared by every call on this client, so
        at most ``workers`` calls of ``fn`` run at once. ``fn`` must not call :meth:`map`
        on the same client. An exception of ``fn`` is raised when its result is reached;
        the items not yet started are then cancelled.

        Examples
        --------
        >>> with FinkClient("http://127.0.0.1:1", workers=2, env={}) as client:
        ...     list(client.map(lambda x: x * x, range(5)))
        [0, 1, 4, 9, 16]
        """
        return self._pool.map(fn, items)
