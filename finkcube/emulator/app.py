"""The endpoints of the Fink LSST API, as a pure function of the request.

:func:`handle` turns ``(method, path, query, body)`` into a :class:`Reply` the way the
service's Flask-RESTX app does, quirks included, so that a client meets here the replies
it will meet there:

* the query string wins over the JSON body; a GET without parameters answers the
  namespace's plain-text description;
* a missing required field is a 400 whose body is a Python dict repr, not JSON;
* a value the service chokes on (an id sent as a JSON integer, an unknown ``kind``,
  ``kind=All`` without ``output-format``, a null cutout, a bad PNG option) is a 500 with
  ``{"message": "Internal Server Error"}``;
* an unknown diaSourceId is a 200 with an empty body, an unknown object ``[]``;
* when the internal cutout store fails, a FITS request gets a 200 whose body is the
  store's error text (the ``store_error`` object), array and PNG requests a 500.

The endpoints that find objects (``objects``, ``fp``, ``conesearch``, ``tags``,
``resolver``) compute their rows in :mod:`~.search`, and are written here like the sources;
a GET of ``/api/v1/tags`` without parameters lists the tags (a JSON object of descriptions).

Deviations, documented: ``parquet`` answers 501 when pyarrow is missing; ``midpointMjdTai``
keeps the sources within 1e-6 day of the value; at most the newest 10,000 rows per object.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from finkcube.emulator.catalog import Catalog
from finkcube.emulator.outages import CUTOUT_ERROR_PAGE, GARBLED_BODY, pandas2_rows
from finkcube.emulator.render import render_png
from finkcube.emulator.search import (
    TAG_DESCRIPTIONS,
    Refused,
    ServerFailure,
    conesearch,
    forced_photometry,
    objects,
    resolve,
    tag_alerts,
)
from finkcube.emulator.tables import CONTENT_TYPES, parquet_available, write_table
from finkcube.names import (
    CONESEARCH_PATH,
    CUTOUTS_PATH,
    FP_PATH,
    KIND_ALL,
    KIND_ARGS,
    KINDS,
    OBJECT_ID,
    OBJECTS_PATH,
    OUTPUT_FORMATS,
    RESOLVER_PATH,
    SOURCE_ID,
    SOURCE_OUTPUT_FORMATS,
    SOURCES_PATH,
    TAGS_PATH,
    cutout_key,
)

__all__ = ["DESCRIPTIONS", "MAX_ROWS_PER_OBJECT", "Reply", "handle"]

logger = logging.getLogger(__name__)

#: The plain text a GET without parameters answers (the Flask-RESTX namespace description).
DESCRIPTIONS = {
    SOURCES_PATH: "Get diaSource data based on Rubin diaObjectId",
    CUTOUTS_PATH: "Get cutout data based on Rubin diaSourceId",
    OBJECTS_PATH: "Get diaObject data based on Rubin diaObjectId",
    FP_PATH: "Get forced photometry data based on Rubin diaObjectId",
    CONESEARCH_PATH: "Get Rubin alerts data based on coordinates",
    TAGS_PATH: "Get latest Rubin alerts by tags",
    RESOLVER_PATH: "Resolve astronomical names to LSST IDs, and vice-versa",
}
#: The service returns at most this many rows per object (no pagination).
MAX_ROWS_PER_OBJECT = 10_000
#: ``midpointMjdTai`` keeps the sources this close (days) to the value asked.
TIME_TOLERANCE_DAYS = 1e-6
_HELP_URL = "https://api.fink-portal.org"
_REQUIRED = {
    SOURCES_PATH: (OBJECT_ID,),
    CUTOUTS_PATH: (SOURCE_ID, "kind"),
    OBJECTS_PATH: (OBJECT_ID,),
    FP_PATH: (OBJECT_ID,),
    CONESEARCH_PATH: ("ra", "dec", "radius"),
    TAGS_PATH: ("tag",),
    RESOLVER_PATH: ("resolver", "name_or_id"),
}
#: The endpoints whose rows :mod:`~.search` computes.
_SEARCHES = {
    OBJECTS_PATH: objects,
    FP_PATH: forced_photometry,
    CONESEARCH_PATH: conesearch,
    TAGS_PATH: tag_alerts,
    RESOLVER_PATH: resolve,
}
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP reply: status, body, Content-Type and extra headers."""

    status: int
    body: bytes
    content_type: str = _JSON
    headers: tuple[tuple[str, str], ...] = ()


class _ServerFailure(Exception):
    """What the service would hit as an uncaught exception: a 500."""


def internal_error() -> Reply:
    """The 500 the service answers when an exception escapes its handler."""
    return Reply(500, b'{"message": "Internal Server Error"}\n')


def _message(status: int, text: str) -> Reply:
    return Reply(status, (json.dumps({"message": text}) + "\n").encode())


def _repr_error(text: str, status: int = 400) -> Reply:
    body = str({"status": "error", "text": text})
    return Reply(status, body.encode(), "text/html; charset=utf-8")


def _payload(
    method: str, query: Mapping[str, str], body: bytes, content_type: str | None
) -> Reply | Any:
    """The request's fields: the query string if any, else the JSON body."""
    if query:
        return dict(query)
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime != _JSON and not mime.endswith("+json"):
        return _message(
            415,
            "Did not attempt to load JSON data because the request Content-Type was not "
            "'application/json'.",
        )
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _message(
            400, "The browser (or proxy) sent a request that this server could not understand."
        )


def _check_args(path: str, payload: Any) -> Reply | None:
    if not isinstance(payload, dict | list | str):
        raise _ServerFailure("payload is not a container")
    for name in _REQUIRED[path]:
        if name not in payload:
            return _repr_error(f"A value for `{name}` is required. See {_HELP_URL} \n")
    if not isinstance(payload, dict):
        raise _ServerFailure("payload is not a mapping")
    return None


def _as_id(text: str) -> int | None:
    """The id a row-key lookup would find, or None when it can match nothing."""
    text = text.strip()
    if not text.isdecimal() or len(text) > 19:
        return None
    return int(text)


def _sources(catalog: Catalog, payload: dict[str, Any]) -> Reply:
    ids = payload[OBJECT_ID]
    if not isinstance(ids, str):
        raise _ServerFailure("the service slices diaObjectId as a string")
    columns = payload.get("columns")
    if columns is not None and not isinstance(columns, str):
        raise _ServerFailure("the service calls str.replace on columns")
    wanted = [c for c in (columns or "*").replace(" ", "").split(",") if c]
    several = "," in ids
    object_ids = list(dict.fromkeys(i for i in map(_as_id, ids.split(",")) if i is not None))
    rows: list[dict[str, Any]] = []
    for object_id in object_ids:  # the oldest 10,000 (records are newest first)
        rows.extend(catalog.served_records(object_id)[-MAX_ROWS_PER_OBJECT:])
    if several:
        rows.sort(key=lambda r: -float(r.get("r:midpointMjdTai") or 0.0))
    elif "midpointMjdTai" in payload:
        try:
            when = float(payload["midpointMjdTai"])
        except (TypeError, ValueError) as exc:
            raise _ServerFailure("midpointMjdTai is not a number") from exc
        rows = [
            r
            for r in rows
            if abs(float(r.get("r:midpointMjdTai") or 0.0) - when) <= TIME_TOLERANCE_DAYS
        ]
    if wanted != ["*"]:
        kept = [c for c in dict.fromkeys(wanted) if any(r.get(c) is not None for r in rows)]
        rows = [{c: r.get(c) for c in kept} for r in rows]
    if catalog.pandas2:
        rows = pandas2_rows(rows)
    return _send_table(rows, payload)


def _send_table(rows: list[dict[str, Any]], payload: dict[str, Any]) -> Reply:
    """Write rows in the ``output-format`` asked (json by default), as the service does."""
    output_format = payload.get("output-format", "json")
    if output_format not in SOURCE_OUTPUT_FORMATS:
        return _repr_error(
            f"Output format `{output_format}` is not supported. "
            "Choose among json, csv, votable, or parquet\n"
        )
    if output_format == "parquet" and not parquet_available():
        return _repr_error(
            "The finkcube emulator cannot write parquet: pyarrow is not installed.\n", 501
        )
    return Reply(200, write_table(rows, output_format), CONTENT_TYPES[output_format])


def _cutouts(catalog: Catalog, payload: dict[str, Any]) -> Reply:
    kind = payload["kind"]
    if not isinstance(kind, str) or kind not in KIND_ARGS:
        raise _ServerFailure("assert kind in [Science, Template, Difference, All]")
    if kind == KIND_ALL:
        if "output-format" not in payload:
            raise _ServerFailure("KeyError: 'output-format'")
        if payload["output-format"] != "array":
            return _repr_error(
                "The option `kind=All` is only compatible with `output-format=array`.\n"
            )
    output_format = payload.get("output-format", "PNG")
    if output_format not in OUTPUT_FORMATS:
        return _repr_error("output-format must be one of: PNG, FITS, or array.\n")
    raw_id = payload[SOURCE_ID]
    if not isinstance(raw_id, str):
        raise _ServerFailure("the service slices diaSourceId as a string")
    source_id = _as_id(raw_id)
    if source_id is None or not catalog.knows_source(source_id):
        return Reply(200, b"", "image/png")
    outage = catalog.outages.take(source_id)
    if outage is not None:
        return _outage(outage, output_format)
    if catalog.is_null(source_id):
        if output_format == "FITS":  # the cutout service's page, with status 200
            return Reply(200, CUTOUT_ERROR_PAGE, "text/html; charset=utf-8")
        raise _ServerFailure(f"a cutout of diaSource {source_id} is null")
    filename = f"{catalog.owner(source_id)}_{kind}"
    if catalog.store_fails(source_id) and output_format != "FITS":
        raise _ServerFailure(f"the cutout store failed on diaSource {source_id}")
    if output_format == "FITS":
        body = catalog.fits(source_id, kind)
        assert body is not None
        disposition = ("Content-Disposition", f"attachment; filename={filename}.fits")
        return Reply(200, body, "application/octet-stream", (disposition,))
    if output_format == "array":
        kinds = sorted(KINDS) if kind == KIND_ALL else [kind]
        parts = [
            b'"%s":%s' % (cutout_key(k).encode(), catalog.array_json(source_id, k)) for k in kinds
        ]
        return Reply(200, b"{" + b",".join(parts) + b"}\n")
    try:
        png = render_png(catalog.array(source_id, kind), payload)
    except Exception as exc:
        raise _ServerFailure(f"PNG rendering failed: {exc}") from exc
    disposition = ("Content-Disposition", f"attachment; filename={filename}.png")
    return Reply(200, png, "image/png", (disposition,))


def _outage(reply: str, output_format: str) -> Reply:
    """The reply of a cutout request failed on purpose (:meth:`Catalog.fail_cutouts`)."""
    if reply == "empty":
        return Reply(200, b"", "image/png")
    if reply == "html" or (reply == "null" and output_format == "FITS"):
        return Reply(200, CUTOUT_ERROR_PAGE, "text/html; charset=utf-8")
    if reply == "garbled":
        return Reply(200, GARBLED_BODY, "application/octet-stream")
    return internal_error()


def handle(
    catalog: Catalog,
    method: str,
    path: str,
    query: Mapping[str, str],
    body: bytes = b"",
    content_type: str | None = None,
) -> Reply:
    """Answer one request the way the Fink LSST API does.

    Parameters
    ----------
    catalog : Catalog
        What is served.
    method : str
        ``GET`` or ``POST`` (anything else: 405).
    path : str
        The URL path: ``/api/v1/`` and ``sources``, ``cutouts``, ``objects``, ``fp``,
        ``conesearch``, ``tags`` or ``resolver`` (anything else: 404).
    query : mapping
        The query-string fields (first value of each).
    body : bytes, optional
        The request body (read only when ``query`` is empty).
    content_type : str, optional
        The request's Content-Type.

    Returns
    -------
    Reply

    Examples
    --------
    >>> from finkcube.emulator.catalog import Catalog
    >>> catalog = Catalog()
    >>> handle(catalog, "POST", "/api/v1/sources", {}, b"{}", "application/json").body
    b"{'status': 'error', 'text': 'A value for `diaObjectId` is required. See https://api.fink-portal.org \\\\n'}"
    >>> handle(catalog, "POST", "/api/v1/sources", {"diaObjectId": "1"}).body
    b'[]'
    """  # noqa: E501
    if path not in DESCRIPTIONS:
        return _message(
            404,
            "The requested URL was not found on the server. If you entered the URL manually "
            "please check your spelling and try again.",
        )
    if method not in ("GET", "POST"):
        return _message(405, "The method is not allowed for the requested URL.")
    if method == "GET" and not query and path == TAGS_PATH:
        return Reply(200, json.dumps(TAG_DESCRIPTIONS).encode() + b"\n")
    if method == "GET" and not query:
        return Reply(200, DESCRIPTIONS[path].encode(), "text/html; charset=utf-8")
    payload = _payload(method, query, body, content_type)
    if isinstance(payload, Reply):
        return payload
    try:
        refused = _check_args(path, payload)
        if refused is not None:
            return refused
        if path == SOURCES_PATH:
            return _sources(catalog, payload)
        if path in _SEARCHES:
            return _send_table(_SEARCHES[path](catalog, payload), payload)
        return _cutouts(catalog, payload)
    except Refused as exc:
        return Reply(exc.status, exc.text.encode(), "text/html; charset=utf-8")
    except (_ServerFailure, ServerFailure) as exc:
        logger.debug("answering 500 like the service would: %s", exc)
        return internal_error()
