"""HTTP client of the Fink LSST API: one pooled session, timeouts, retries, error mapping.

:class:`FinkClient` only moves bytes, through ``requests.Session.post``; the reply bodies are
decoded by the pure functions of :mod:`finkcube.service.decode` (inside the retry loop of
:mod:`finkcube.service.exchange`, so that a garbled reply is asked again). Payloads are built
and checked by :mod:`finkcube.service.payloads`, replies read beyond decoding by
:mod:`finkcube.service.replies`, the session made and each body read (capped, within a
deadline: :mod:`finkcube.service.limits`) by :mod:`finkcube.service.transport`; what a
failed try gets is decided by :mod:`finkcube.service.retry`, and :meth:`FinkClient.map` runs
on :mod:`finkcube.service.pool`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import requests

from finkcube.config import RETRIES_ENV, TIMEOUT_ENV, redact_url, resolve_number, resolve_url
from finkcube.errors import InputError
from finkcube.ids import parse_id
from finkcube.names import CUTOUTS_PATH, KIND_ALL, KINDS, OBJECT_ID, SOURCE_ID, SOURCES_PATH
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
from finkcube.service.exchange import Exchange
from finkcube.service.limits import (
    MAX_CUTOUT_BYTES,
    MAX_ROWS_PER_OBJECT,
    MAX_SOURCES_BYTES,
    check_cap,
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
    open_fits,
    records_table,
)
from finkcube.service.retry import Limits
from finkcube.service.search import SearchMethods
from finkcube.service.transport import make_session

if TYPE_CHECKING:
    from astropy.io.fits import HDUList
    from astropy.table import Table

__all__ = ["FinkClient"]

T = TypeVar("T")
R = TypeVar("R")

#: Defaults of the settings an argument or FINKCUBE_TIMEOUT / FINKCUBE_RETRIES can change.
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 5
#: A try's total deadline, when none is given, is this many times the timeout.
DEADLINE_TIMEOUTS = 4


class FinkClient(SearchMethods):
    """Client of the Fink LSST API: sources, cutouts, and the searches of :class:`SearchMethods`.

    The searches (``conesearch``, ``tags``, ``tag``, ``resolve``, ``objects``,
    ``forced_photometry``) are documented in :mod:`finkcube.service.search`.

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
    deadline : float or None, optional
        Most seconds one try may take in all, from sending the request to the last byte of
        its reply (default: 4 times ``timeout``). ``timeout`` bounds each wait only: a server
        dripping its reply a byte at a time would hold a request for ever without it. A try
        past its deadline is cut and counts as a timeout (retried as one).
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
    max_cutout_bytes, max_sources_bytes : int, optional
        The largest reply body accepted for a cutout (default 8 MiB) and for a sources
        request (default 256 MiB); see :mod:`finkcube.service.limits`. A larger reply, or one
        holding more than 10,000 records per object asked, is refused while it arrives with
        an :class:`~finkcube.errors.DecodeError` naming the request and the cap, and is not
        asked again (the same request would get the same reply).

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
        deadline: float | None = None,
        max_cutout_bytes: int = MAX_CUTOUT_BYTES,
        max_sources_bytes: int = MAX_SOURCES_BYTES,
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
        if deadline is not None:
            check_number("deadline", deadline, positive=True)
        self.url = resolve_url(url, env)
        self.workers = workers
        self.timeout = float(timeout)
        self.deadline = DEADLINE_TIMEOUTS * self.timeout if deadline is None else float(deadline)
        self.max_cutout_bytes = check_cap("max_cutout_bytes", max_cutout_bytes)
        self.max_sources_bytes = check_cap("max_sources_bytes", max_sources_bytes)
        self.retries = retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self._limits = Limits(retries, self.backoff, self.max_backoff)
        self._own_session = session is None
        self._session = make_session(workers) if session is None else session
        self._exchange = Exchange(
            self._session, {"User-Agent": user_agent(), "Accept": "*/*"}, self.timeout,
            self.deadline, self._limits, threading.BoundedSemaphore(workers),
        )  # fmt: skip
        self._pool = OrderedPool(workers, "finkcube-client")

    def __repr__(self) -> str:
        return f"FinkClient({redact_url(self.url)!r}, workers={self.workers})"

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
        """POST ``payload`` and return ``decode(body)`` (see :class:`Exchange`)."""
        name = "max_sources_bytes" if path == SOURCES_PATH else "max_cutout_bytes"
        return self._exchange.post(
            self.url + path, payload, decode, what, (name, getattr(self, name))
        )

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
        most = MAX_ROWS_PER_OBJECT * (payload[OBJECT_ID].count(",") + 1)
        return self._post(
            SOURCES_PATH, payload, lambda b: decode_source_records(b, max_records=most), what
        )

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

    def cutout_arrays_wcs(self, source_id: int | str) -> SourceCutouts:
        """Return the data planes of one alert's cutouts with their WCS cards (2 requests).

        One ``kind=All`` array request and the Science FITS file for its primary header:
        Rubin's three kinds of an alert share one pixel grid, so that header serves all
        three (what aligning a ``planes="data"`` cube needs, at one request more per source
        rather than the two more of ``planes="all"``).

        Raises
        ------
        NotFoundError
            When the service knows no such alert.
        CubeError
            When the kinds' shapes disagree.
        """
        arrays = self.cutout_arrays(source_id)
        header = self._fits_stamp(arrays.source_id, KINDS[0]).header
        stamps = tuple(Stamp(s.kind, s.planes, header=header) for s in arrays.stamps)
        return SourceCutouts(arrays.source_id, stamps)

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
