"""HTTP client of the Fink LSST API: one pooled session, timeouts, retries, error mapping.

:class:`FinkClient` only moves bytes; the reply bodies are decoded by the pure functions of
:mod:`finkcube.decode` (inside the retry loop, so that a garbled reply is asked again).
"""

from __future__ import annotations

import ast
import io
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from functools import cache
from numbers import Real
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import requests
import urllib3
from requests.adapters import HTTPAdapter

from finkcube._config import resolve_url
from finkcube._types import (
    CONVOLUTION_KERNELS,
    CUTOUTS_PATH,
    KIND_ALL,
    KIND_ARGS,
    KINDS,
    OUTPUT_FORMATS,
    SOURCES_PATH,
    STRETCHES,
    bare_column,
    rubin_column,
)
from finkcube.decode import (
    SourceCutouts,
    Stamp,
    decode_cutout_arrays,
    decode_fits,
    decode_source_records,
    stamps_from_arrays,
    stamps_from_fits,
)
from finkcube.errors import (
    BadRequestError,
    DecodeError,
    InputError,
    NotFoundError,
    ServiceError,
    TransportError,
    quote_body,
)
from finkcube.ids import parse_id, parse_ids

if TYPE_CHECKING:
    from astropy.io.fits import HDUList
    from astropy.table import Table

__all__ = ["FinkClient"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: The PNG options of ``/api/v1/cutouts`` and their defaults on the service.
PNG_OPTIONS = ("stretch", "colormap", "pmin", "pmax", "convolution_kernel")
_PMIN_PMAX_DEFAULTS = (0.5, 99.5)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RETRY_STATUS_MIN = 500
_TOO_MANY_REQUESTS = 429
#: The service answers 500 for deterministic failures (a cutout missing from its alert, a
#: value that reaches an assert), 502-504 under load: a 500 is retried only this often.
_INTERNAL_ERROR = 500
_INTERNAL_ERROR_RETRIES = 1


@cache
def _user_agent() -> str:
    """``finkcube/<version>``, read when first needed (no import cycle with the package)."""
    try:
        from finkcube import __version__ as version
    except ImportError:  # pragma: no cover - the package is being imported
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        try:
            version = dist_version("finkcube")
        except PackageNotFoundError:
            version = "unknown"
    return f"finkcube/{version}"


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _retry_after(value: str | None, cap: float) -> float | None:
    """Seconds asked by a ``Retry-After`` header (seconds, float or HTTP-date), capped."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = moment.timestamp() - time.time()
    if seconds != seconds:  # NaN
        return None
    return min(cap, max(0.0, seconds))


def _service_text(body: bytes) -> str:
    """The ``text`` of a 400 body (a Python dict repr, or JSON), else the quoted body."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        for key in ("text", "message"):
            if isinstance(parsed.get(key), str):
                return " ".join(parsed[key].split())
    return quote_body(body)


def _canonical(value: object, allowed: Iterable[str], what: str) -> str:
    """``value`` spelled as in ``allowed`` (matched case-insensitively), or InputError."""
    allowed = tuple(allowed)
    if isinstance(value, str):
        for name in allowed:
            if value.strip().lower() == name.lower():
                return name
    raise InputError(f"invalid {what} {value!r}: expected one of {', '.join(allowed)}")


def _png_payload(options: Mapping[str, Any]) -> dict[str, Any]:
    """Check the PNG options and return them as sent; InputError on the first bad one."""
    unknown = sorted(set(options) - set(PNG_OPTIONS))
    if unknown:
        raise InputError(f"unknown PNG option(s) {unknown}: expected {', '.join(PNG_OPTIONS)}")
    payload: dict[str, Any] = {}
    if options.get("stretch") is not None:
        payload["stretch"] = _canonical(options["stretch"], STRETCHES, "stretch")
    if options.get("colormap") is not None:
        payload["colormap"] = _check_colormap(options["colormap"])
    if options.get("convolution_kernel") is not None:
        payload["convolution_kernel"] = _canonical(
            options["convolution_kernel"], CONVOLUTION_KERNELS, "convolution_kernel"
        )
    bounds = {}
    for name, default in zip(("pmin", "pmax"), _PMIN_PMAX_DEFAULTS, strict=True):
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, Real)):
            raise InputError(f"invalid {name} {value!r}: expected a number between 0 and 100")
        bounds[name] = default if value is None else float(value)
        if value is not None:
            payload[name] = bounds[name]
    if not 0 <= bounds["pmin"] < bounds["pmax"] <= 100:
        raise InputError(
            f"invalid percentiles pmin={bounds['pmin']}, pmax={bounds['pmax']}: "
            "expected 0 <= pmin < pmax <= 100"
        )
    return payload


def _check_colormap(name: object) -> str:
    import matplotlib  # heavy: only when a colormap is asked for

    if not isinstance(name, str) or name not in matplotlib.colormaps:
        raise InputError(
            f"invalid colormap {name!r}: expected a matplotlib colormap name, "
            "e.g. viridis, gray, magma (see matplotlib.colormaps)"
        )
    return name


def _check_number(name: str, value: object, *, positive: bool = False) -> None:
    """InputError unless ``value`` is a finite real number > 0 (``positive``) or >= 0."""
    number = float(value) if isinstance(value, Real) and not isinstance(value, bool) else None
    if number is None or not 0 <= number < float("inf") or (positive and number == 0):
        bound = "> 0" if positive else ">= 0"
        raise InputError(f"invalid {name} {value!r}: expected a finite number {bound}")


def _decode_png(content: bytes, *, source_id: int) -> bytes:
    if not content.strip():
        raise NotFoundError(f"no alert with diaSourceId {source_id}")
    if not content.startswith(_PNG_SIGNATURE):
        raise DecodeError(
            f"PNG cutout of diaSourceId {source_id} is not a PNG: {quote_body(content)}"
        )
    return content


def _open_fits(content: bytes, *, kind: str, source_id: int) -> HDUList:
    from astropy.io import fits

    decode_fits(content, kind=kind, source_id=source_id)  # checks the bytes, raises if bad
    return fits.open(io.BytesIO(content), ignore_missing_simple=True, lazy_load_hdus=False)


class FinkClient:
    """Client of the Fink LSST API (``/api/v1/sources`` and ``/api/v1/cutouts``).

    Parameters
    ----------
    url : str or None, optional
        The API's base URL (default: ``$FINKCUBE_URL``, else the public service).
    session : requests.Session or None, optional
        A session to use as is (and not close); by default the client makes one whose
        connection pool holds ``workers`` connections.
    workers : int, optional
        Most requests in flight at once from this client, and the size of the pool
        :meth:`map` runs on.
    timeout : float, optional
        Seconds to wait for a connection or for the next bytes of a reply.
    retries : int, optional
        How many times a failed request is asked again (5xx, 429, timeouts, dropped
        connections, truncated or undecodable replies); 400, other 4xx, "not found" and
        input errors are never retried.
    backoff, max_backoff : float, optional
        Retry ``n`` waits a random time in ``[0, min(max_backoff, backoff * 2**n)]`` (full
        jitter), or the server's ``Retry-After``, capped by ``max_backoff``.
    env : mapping, optional
        Environment read for ``FINKCUBE_URL`` (default: ``os.environ``).

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
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InputError(f"invalid workers {workers!r}: expected a positive integer")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InputError(f"invalid retries {retries!r}: expected an integer >= 0")
        _check_number("timeout", timeout, positive=True)
        _check_number("backoff", backoff)
        _check_number("max_backoff", max_backoff)
        self.url = resolve_url(url, env)
        self.workers = workers
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self._own_session = session is None
        self._session = self._make_session(workers) if session is None else session
        self._in_flight = threading.BoundedSemaphore(workers)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @staticmethod
    def _make_session(workers: int) -> requests.Session:
        session = requests.Session()
        # Our own retry loop handles failures; the adapter keeps `workers` live connections.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(workers, 10), max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def __repr__(self) -> str:
        return f"FinkClient({self.url!r}, workers={self.workers})"

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the :meth:`map` pool and close the session the client made."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
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
        """POST ``payload`` and return ``decode(body)``, retrying what can be retried."""
        url = self.url + path
        headers = {"User-Agent": _user_agent(), "Accept": "*/*"}
        last: Exception | None = None
        asked: float | None = None  # a Retry-After delay, in seconds
        internal = 0  # HTTP 500 replies: mostly deterministic (a null cutout, a bad value)
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self._delay(attempt - 1, asked)
                logger.info(
                    "%s: retry %d/%d in %.2f s after %s",
                    what, attempt, self.retries, delay, _one_line(last),  # type: ignore[arg-type]
                )  # fmt: skip
                time.sleep(delay)
            asked = None
            try:
                with self._in_flight:
                    reply = self._session.post(
                        url, json=payload, headers=headers, timeout=self.timeout
                    )
                    body = reply.content  # read inside: a dropped or short body raises here
            except requests.exceptions.SSLError as exc:
                raise TransportError(f"{what}: TLS failure with {url}: {_one_line(exc)}") from exc
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ) as exc:
                last = exc
                continue
            except requests.RequestException as exc:
                raise TransportError(f"{what}: request to {url} failed: {_one_line(exc)}") from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:  # anything requests let by
                last = exc
                continue
            status = reply.status_code
            if 200 <= status < 300:
                try:
                    return decode(body)
                except DecodeError as exc:
                    last = exc
                    continue
            if status == 400:
                raise BadRequestError(
                    f"{what}: the service refused the request: {_service_text(body)}",
                    status=status, url=url, body=body,
                )  # fmt: skip
            last = ServiceError(
                f"{what}: HTTP {status} from {url}: {quote_body(body)}",
                status=status, url=url, body=body,
            )  # fmt: skip
            if status != _TOO_MANY_REQUESTS and status < _RETRY_STATUS_MIN:
                raise last
            if status == _INTERNAL_ERROR:
                internal += 1
                if internal > min(self.retries, _INTERNAL_ERROR_RETRIES):
                    return self._give_up(what, url, last, attempt + 1)
            asked = _retry_after(reply.headers.get("Retry-After"), self.max_backoff)
        return self._give_up(what, url, last, self.retries + 1)

    def _delay(self, attempt: int, asked: float | None) -> float:
        """Seconds to wait before retry ``attempt`` (0-based): the server's, or full jitter."""
        if asked is not None:
            return asked
        return random.uniform(0.0, min(self.max_backoff, self.backoff * 2**attempt))

    def _give_up(self, what: str, url: str, last: Exception | None, tries: int) -> Any:
        attempts = f"{tries} attempt{'s' if tries > 1 else ''}"
        if isinstance(last, ServiceError):
            error = ServiceError(
                f"{what}: HTTP {last.status} from {url} after {attempts}: {last.body_start}",
                status=last.status, url=url,
            )  # fmt: skip
            error.body_start = last.body_start
            raise error from last
        if isinstance(last, DecodeError):
            raise ServiceError(
                f"{what}: undecodable reply from {url} after {attempts}: {last}",
                status=200, url=url,
            ) from last  # fmt: skip
        raise TransportError(
            f"{what}: no complete reply from {url} after {attempts}: {_one_line(last)}"  # type: ignore[arg-type]
        ) from last

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
        ids = self._object_ids(object_ids)
        payload: dict[str, Any] = {"diaObjectId": ",".join(str(i) for i in ids)}
        wanted = self._columns(columns)
        if wanted is not None:
            payload["columns"] = ",".join(wanted)
        label = "diaObjectId" if len(ids) == 1 else f"{len(ids)} diaObjectIds"
        what = f"sources of {label} {','.join(str(i) for i in ids[:3])}"
        what += "..." if len(ids) > 3 else ""
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
            names = list(self._columns(columns) or ())
        return _records_table(records, names)

    @staticmethod
    def _object_ids(object_ids: int | str | Iterable[int | str]) -> list[int]:
        if isinstance(object_ids, int | str | np.integer):
            return [parse_id(int(object_ids) if isinstance(object_ids, np.integer) else object_ids)]
        ids = parse_ids(object_ids)
        if not ids:
            raise InputError("no diaObjectId given: expected one id or more")
        return ids

    @staticmethod
    def _columns(columns: Iterable[str] | None) -> list[str] | None:
        if columns is None:
            return None
        names = columns.split(",") if isinstance(columns, str) else list(columns)
        if not names or not all(isinstance(c, str) and c.strip() for c in names):
            raise InputError(f"invalid columns {columns!r}: expected non-empty column names")
        return list(dict.fromkeys(rubin_column(c.strip()) for c in names))

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
        sid = parse_id(source_id, what="diaSourceId")
        kind = _canonical(kind, KIND_ARGS, "kind")
        fmt = _canonical(output_format, OUTPUT_FORMATS, "output_format")
        if kind == KIND_ALL and fmt != "array":
            raise InputError(f"kind='All' needs output_format='array', not {fmt!r}: ask one kind")
        if png_options and fmt != "PNG":
            raise InputError(
                f"PNG options {sorted(png_options)} given with output_format={fmt!r}: "
                "they apply to output_format='PNG' only"
            )
        payload = {"diaSourceId": str(sid), "kind": kind, "output-format": fmt}
        what = f"{kind} cutout of diaSourceId {sid} ({fmt})"
        if fmt == "PNG":
            payload.update(_png_payload(png_options))
            return self._post(CUTOUTS_PATH, payload, lambda b: _decode_png(b, source_id=sid), what)
        if fmt == "FITS":
            return self._post(
                CUTOUTS_PATH, payload, lambda b: _open_fits(b, kind=kind, source_id=sid), what
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
        sid = parse_id(source_id, what="diaSourceId")
        payload = {"diaSourceId": str(sid), "kind": KIND_ALL, "output-format": "array"}
        return self._post(
            CUTOUTS_PATH,
            payload,
            lambda b: stamps_from_arrays(sid, decode_cutout_arrays(b, source_id=sid)),
            f"cutouts of diaSourceId {sid} (array)",
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
        sid = parse_id(source_id, what="diaSourceId")
        stamps = [self._fits_stamp(sid, kind) for kind in KINDS]
        return stamps_from_fits(sid, stamps)

    def _fits_stamp(self, sid: int, kind: str) -> Stamp:
        payload = {"diaSourceId": str(sid), "kind": kind, "output-format": "FITS"}
        return self._post(
            CUTOUTS_PATH,
            payload,
            lambda body: decode_fits(body, kind=kind, source_id=sid),
            f"{kind} cutout of diaSourceId {sid} (FITS)",
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
        pool = self._executor()
        window = 2 * self.workers
        source = iter(items)
        pending: deque[Future[R]] = deque(
            pool.submit(fn, item) for _, item in zip(range(window), source, strict=False)
        )
        return _drain(pool, fn, source, pending)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="finkcube-client")
            return self._pool


def _drain(
    pool: ThreadPoolExecutor, fn: Callable[[T], R], source: Iterator[T], pending: deque[Future[R]]
) -> Iterator[R]:
    """Yield the results of ``pending`` in order, topping it up from ``source``."""
    try:
        while pending:
            result = pending.popleft().result()
            for item in source:
                pending.append(pool.submit(fn, item))
                break
            yield result
    finally:
        for future in pending:
            future.cancel()


def _records_table(records: list[dict[str, Any]], names: list[str]) -> Table:
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
