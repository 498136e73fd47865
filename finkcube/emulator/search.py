"""The endpoints that find objects: ``objects``, ``fp``, ``conesearch``, ``tags``, ``resolver``.

Each handler takes the request's fields (already checked for the required ones by
:func:`~.app.handle`) and returns the rows to send, as the service's code computes them,
quirks included:

* ids are strings; a comma-separated list is split and stripped, a single id is not;
  an unknown id gives no row;
* ``columns`` keeps the columns asked for that hold a value, and the rows that hold one;
  rows that carry ``r:midpointMjdTai`` come newest first, others in row-key order
  (``objects``: by ``{last 3 digits}_{id}``);
* ``conesearch``: ``radius`` over 18,000 arcsec is a 400; ``ra``/``dec`` are read by
  astropy (degrees, or sexagesimal text) and an unreadable one is a 400 quoting the error;
  a number that is not one (``radius``, ``n``) is a 500. One row per object, its latest
  alert, inside the cone by true angular separation, with ``v:separation_degree`` (the
  service's own column), sorted by it; ``r:ra``/``r:dec`` are always sent. ``startdate``
  keeps the objects first detected since then (``f:firstDiaSourceMjdTaiFink``), ``window``
  (days after ``startdate``) and ``stopdate`` those whose latest alert is not later (the
  service's code); dates are ISO, JD or MJD; with ``columns``, a date filter whose column is
  not asked for is a 500 (the service's ``KeyError``);
* ``tags``: a tag other than :data:`~finkcube.names.TAGS` is a 400 in plain text ("only
  available from the Livestream service"); ``startdate``/``stopdate`` go to astropy's
  ``Time`` as they are, so an MJD number is a 500 there: send ISO dates;
* ``resolver``: ``tns`` looks the name up case-insensitively as a row-key prefix,
  ``reverse`` (only a JSON ``true``: a query string's ``"True"`` is not) finds the names
  whose row key holds ``_{name_or_id}``; an empty name lists the table; rows carry
  ``d:fullname``, ``d:internalname`` (the diaObjectId as text), ``d:diaObjectId``,
  ``d:ra``, ``d:declination``, ``d:type``. ``simbad`` reverse gives the object's
  ``r:diaObjectId``, ``f:xm_simbad_otype``, ``r:ra``, ``r:dec``; ``simbad`` forward (CDS
  Sesame) and ``ssodnet`` give no row here; another resolver is a 500.

Deviations, documented: ``n`` of ``conesearch`` keeps the n nearest (the service limits its
database scan before the cone is cut); ``tags`` without ``stopdate`` has no upper bound (the
service stops at now, and generated alerts may lie in the future).
"""

from __future__ import annotations

from typing import Any

from finkcube.emulator.catalog import Catalog
from finkcube.emulator.sky import parse_date, separations_deg
from finkcube.names import MAX_CONE_RADIUS_ARCSEC, SEPARATION_COLUMN, TAGS, TIME_COLUMN

__all__ = [
    "TAG_DESCRIPTIONS",
    "Refused",
    "ServerFailure",
    "conesearch",
    "forced_photometry",
    "objects",
    "resolve",
    "tag_alerts",
]

#: What a GET of ``/api/v1/tags`` without fields lists: tag -> description.
TAG_DESCRIPTIONS = {
    "extragalactic_lt20mag_candidate": "Extragalactic candidates brighter than magnitude 20",
    "extragalactic_new_candidate": "New extragalactic candidates (first detections)",
    "hostless_candidate": "Transients without an apparent host galaxy",
    "in_tns": "Alerts of objects reported to the Transient Name Server",
    "most_likely_sn": "Alerts whose classifiers favour a supernova",
    "sn_near_galaxy_candidate": "Supernova candidates close to a known galaxy",
}
assert tuple(TAG_DESCRIPTIONS) == TAGS
_TIME = "r:" + TIME_COLUMN
_FIRST = "f:firstDiaSourceMjdTaiFink"
_OBJECT = "r:diaObjectId"
_HELP_URL = "https://api.lsst.fink-portal.org"


class Refused(Exception):
    """A refusal the service answers with a text body (a 400, unless told)."""

    def __init__(self, text: str, status: int = 400) -> None:
        super().__init__(text)
        self.text = text
        self.status = status


class ServerFailure(Exception):
    """What the service would hit as an uncaught exception: a 500."""


def _repr_refusal(text: object) -> Refused:
    return Refused(str({"status": "error", "text": text}))


def _number(value: Any, kind: type[int] | type[float], name: str) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ServerFailure(f"{name} is not a number: {value!r}") from exc


def _object_ids(payload: dict[str, Any]) -> list[int]:
    raw = payload["diaObjectId"]
    if not isinstance(raw, str):
        raise ServerFailure("the service slices diaObjectId as a string")
    parts = [p.strip() for p in raw.split(",")] if "," in raw else [raw]
    ids = [int(p) for p in parts if p.isdecimal() and len(p) <= 19]
    return list(dict.fromkeys(ids))


def _wanted(payload: dict[str, Any]) -> list[str] | None:
    columns = payload.get("columns")
    if columns is None:
        return None
    if not isinstance(columns, str):
        raise ServerFailure("the service calls str.replace on columns")
    return [c for c in dict.fromkeys(columns.replace(" ", "").split(",")) if c]


def _select(
    rows: list[dict[str, Any]], wanted: list[str] | None, *, by_time: bool = True
) -> list[dict[str, Any]]:
    """Keep the columns asked for that hold a value somewhere, and the rows holding one.

    Rows with ``r:midpointMjdTai`` then come newest first, unless ``by_time`` is False.
    """
    if wanted is None:
        rows = [dict(r) for r in rows]
    else:
        kept = [c for c in wanted if any(r.get(c) is not None for r in rows)]
        rows = [{c: r.get(c) for c in kept} for r in rows]
        rows = [r for r in rows if any(v is not None for v in r.values())]
    if by_time and rows and _TIME in rows[0]:
        rows.sort(key=lambda r: -float(r.get(_TIME) or 0.0))
    return rows


def _row_key(object_id: int) -> str:
    text = str(object_id)
    return f"{text[-3:]}_{text}"


def objects(catalog: Catalog, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """``/api/v1/objects``: the diaObject aggregates of each known object, row-key order."""
    ids = sorted(_object_ids(payload), key=_row_key)
    rows = [row for row in map(catalog.object_row, ids) if row is not None]
    return _select(rows, _wanted(payload))


def forced_photometry(catalog: Catalog, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """``/api/v1/fp``: one row per visit of each known object."""
    rows = [
        row for oid in sorted(_object_ids(payload), key=_row_key) for row in catalog.fp_rows(oid)
    ]
    return _select(rows, _wanted(payload))


def _centre(payload: dict[str, Any]) -> tuple[float, float]:
    """Read ``ra``/``dec`` as the service does (astropy); a 400 quoting the error if not."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    ra, dec = payload["ra"], payload["dec"]
    try:
        if "h" in str(ra):
            coord = SkyCoord(ra, dec, frame="icrs")
        elif ":" in str(ra) or " " in str(ra):
            coord = SkyCoord(ra, dec, frame="icrs", unit=(u.hourangle, u.deg))
        else:
            coord = SkyCoord(ra, dec, frame="icrs", unit="deg")
    except ValueError as exc:
        raise _repr_refusal(exc) from exc
    except Exception as exc:  # what else astropy raises reaches the service as a 500
        raise ServerFailure(f"SkyCoord failed: {exc}") from exc
    return float(coord.ra.deg), float(coord.dec.deg)


def _date(value: Any) -> float:
    try:
        return parse_date(value)
    except (TypeError, ValueError) as exc:
        raise ServerFailure(f"unreadable date {value!r}") from exc


def conesearch(catalog: Catalog, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """``/api/v1/conesearch``: each object's latest alert inside the cone, nearest first."""
    wanted = _wanted(payload)
    if wanted is not None:
        wanted += [c for c in ("r:ra", "r:dec") if c not in wanted]
    n = _number(payload.get("n", 1000), int, "n")
    radius = _number(payload["radius"], float, "radius")
    if radius > MAX_CONE_RADIUS_ARCSEC:
        raise _repr_refusal("`radius` cannot be bigger than 18,000 arcseconds (5 degrees).\n")
    ra, dec = _centre(payload)
    records = [
        r
        for r in catalog.latest_records()
        if r.get("r:ra") is not None and r.get("r:dec") is not None
    ]
    needs = {"startdate": _FIRST, "window": _TIME, "stopdate": _TIME}
    for field, column in needs.items():
        if field in payload and wanted is not None and column not in wanted:
            raise ServerFailure(f"KeyError: {column!r}")
    if "startdate" in payload:
        start = _date(payload["startdate"])
        records = [r for r in records if r[_FIRST] >= start]
        if "window" in payload:
            stop = start + _number(payload["window"], float, "window")
            records = [r for r in records if float(r[_TIME]) <= stop]
    if "stopdate" in payload:
        stop = _date(payload["stopdate"])
        records = [r for r in records if float(r[_TIME]) <= stop]
    if not records:
        return []
    seps = separations_deg(ra, dec, [r["r:ra"] for r in records], [r["r:dec"] for r in records])
    inside = sorted(
        ((float(s), i) for i, s in enumerate(seps.tolist()) if s <= radius / 3600.0),
    )[: max(n, 0)]
    rows = [records[i] | {SEPARATION_COLUMN: sep} for sep, i in inside]
    return _select(rows, None if wanted is None else [*wanted, SEPARATION_COLUMN], by_time=False)


def _position(row: dict[str, Any]) -> dict[str, Any]:
    return {"r:ra": row["r:ra"], "r:dec": row["r:dec"]}


def _livestream_only(tag: object) -> Refused:
    return Refused(
        f"\n        {tag} is only available from the Livestream service (no API support "
        "defined).\n        And you can always retrieve available tags and their API support "
        f"at {_HELP_URL}/api/v1/tags\n        "
    )


def _tag_date(value: Any) -> float:
    from astropy.time import Time

    try:
        return float(Time(value).mjd)
    except (TypeError, ValueError) as exc:
        raise ServerFailure(f"Time({value!r}) failed") from exc


def tag_alerts(catalog: Catalog, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """``/api/v1/tags``: the newest ``n`` alerts of a tag, within the dates."""
    tag = payload["tag"]
    if not isinstance(tag, str) or tag not in TAGS:
        raise _livestream_only(tag)
    n = _number(payload.get("n", 10), int, "n")
    start = _tag_date(payload["startdate"]) if "startdate" in payload else float("-inf")
    stop = _tag_date(payload["stopdate"]) if "stopdate" in payload else float("inf")
    rows = [r for r in catalog.tag_rows(tag) if start <= float(r[_TIME]) <= stop]
    return _select(rows[: max(n, 0)], _wanted(payload))


def resolve(catalog: Catalog, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """``/api/v1/resolver``: a name to diaObjectIds, or back (``reverse``)."""
    resolver, name = payload["resolver"], payload["name_or_id"]
    nmax = _number(payload.get("nmax", 10), int, "nmax")
    reverse = payload.get("reverse") is True
    if not isinstance(name, str):
        raise ServerFailure("name_or_id is not a string")
    if resolver == "tns":
        table = catalog.tns_rows()
        if name == "":
            rows = [row for _, row in table]
        elif reverse:
            rows = [row for key, row in table if f"_{name}" in key]
        else:
            prefix = f"{name.lower()[-1]}_{name.lower()}"
            rows = [row for key, row in table if key.startswith(prefix)]
        return rows[: max(nmax, 0)]
    if resolver == "simbad":
        if not reverse or not name.isdecimal():
            return []  # forward: the service asks CDS Sesame, which the emulator cannot
        row = catalog.object_row(int(name))
        if row is None:
            return []
        latest = catalog.records(int(name))[0]
        otype = latest.get("f:xm_simbad_otype")
        return [{_OBJECT: row[_OBJECT], "f:xm_simbad_otype": otype} | _position(row)]
    if resolver == "ssodnet":
        return []  # no solar-system object has a diaObject here
    raise ServerFailure(f"UnboundLocalError: resolver {resolver!r}")
