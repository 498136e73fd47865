"""Completeness: why each left-out source of a cube is missing, and when it was last asked.

A cube lists the sources it lacks in ``missing_diaSourceIds`` (decimal strings, sorted);
two attributes aligned with it say why and since when: ``missing_reasons`` (one of
:data:`REASONS`, or ``unknown`` for a cube written before reasons were kept) and
``missing_tried`` (when the source was last asked for, UTC, ISO 8601; ``""`` when not
known). They are plain lists of strings, so that they survive a netCDF export.

Every reason can be transient on the real service: cutouts are ingested by another
streaming job than sources (a listed source may have no cutout row yet: an empty 200), and
cutout rows point at nightly files that move after the nightly merge (a 500, or an HTML page
in a 200 for FITS). So :func:`~finkcube.update_store` asks again for the sources whose last
try is older than its ``retry_missing_after`` (:func:`due`), and fills them in place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from finkcube.errors import InputError
from finkcube.names import MISSING_ATTR

__all__ = [
    "DECODE_ERROR",
    "DEFAULT_RETRY_MISSING_AFTER",
    "NO_CUTOUT",
    "REASONS",
    "REASONS_ATTR",
    "SERVICE_ERROR",
    "TRIED_ATTR",
    "UNKNOWN_REASON",
    "LeftOut",
    "due",
    "left_out",
    "record_left_out",
    "retry_age",
]

#: The service had no cutout for the source: an empty 200 (no cutout row, or no such alert).
NO_CUTOUT: Final = "no_cutout"
#: The service failed on it: a 500, an error page in a 200, or retries spent on 5xx/timeouts.
SERVICE_ERROR: Final = "service_error"
#: Its reply did not decode, retries spent (a garbled body, kinds of different shapes).
DECODE_ERROR: Final = "decode_error"
#: Why a source is left out of a cube.
REASONS: Final = (NO_CUTOUT, SERVICE_ERROR, DECODE_ERROR)
#: The reason of a source a cube lists as missing without saying why (an older finkcube).
UNKNOWN_REASON: Final = "unknown"
#: The cube attributes aligned with ``missing_diaSourceIds``.
REASONS_ATTR: Final = "missing_reasons"
TRIED_ATTR: Final = "missing_tried"
#: How old the last try of a left-out source must be for an update to ask again: long
#: enough that an update run right after a build does not ask again what just failed,
#: short enough that an hourly or nightly update does.
DEFAULT_RETRY_MISSING_AFTER: Final = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class LeftOut:
    """One source a cube lacks: its diaSourceId, why, and when it was last asked for."""

    source_id: int
    reason: str
    tried: dt.datetime | None


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse(text: object) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def left_out(attrs: Mapping[str, Any]) -> list[LeftOut]:
    """The sources a cube lacks, from its attributes, in ``missing_diaSourceIds`` order.

    Examples
    --------
    >>> left_out({"missing_diaSourceIds": ["7"], "missing_reasons": ["no_cutout"],
    ...           "missing_tried": ["2026-01-02T03:04:05Z"]})[0].reason
    'no_cutout'
    >>> left_out({"missing_diaSourceIds": ["7"]})[0]
    LeftOut(source_id=7, reason='unknown', tried=None)
    """
    ids = [int(s) for s in attrs.get(MISSING_ATTR, [])]
    reasons = list(attrs.get(REASONS_ATTR, []))
    tried = list(attrs.get(TRIED_ATTR, []))
    if len(reasons) != len(ids) or len(tried) != len(ids):  # not recorded, or not aligned
        reasons, tried = [UNKNOWN_REASON] * len(ids), [""] * len(ids)
    return [LeftOut(s, str(r), _parse(t)) for s, r, t in zip(ids, reasons, tried, strict=True)]


def record_left_out(
    attrs: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    asked: Mapping[int, str],
    when: dt.datetime,
) -> dict[str, list[str]]:
    """The ``missing_reasons`` and ``missing_tried`` of a cube just made.

    Parameters
    ----------
    attrs : mapping
        The new cube's attributes (its ``missing_diaSourceIds``).
    previous : mapping or None
        The attributes of the cube it was merged into (an update), whose reasons and times
        are kept for the sources not asked again.
    asked : mapping of int to str
        The sources asked for this time and left out, with their reason.
    when : datetime
        When they were asked (aware).

    Returns
    -------
    dict
        The two attributes, aligned with ``attrs["missing_diaSourceIds"]``.
    """
    known = {o.source_id: o for o in left_out(previous or {})}
    reasons, tried = [], []
    for text in attrs.get(MISSING_ATTR, []):
        sid = int(text)
        old = known.get(sid)
        if sid in asked:
            reasons.append(asked[sid])
            tried.append(_iso(when))
        elif old is not None:
            reasons.append(old.reason)
            tried.append(_iso(old.tried) if old.tried is not None else "")
        else:  # made missing by the cube code itself (not fetched): no try to date
            reasons.append(UNKNOWN_REASON)
            tried.append("")
    return {REASONS_ATTR: reasons, TRIED_ATTR: tried}


def due(attrs: Mapping[str, Any], now: dt.datetime, after: dt.timedelta | None) -> set[int]:
    """The left-out sources of a cube whose last try is at least ``after`` old (None: none).

    A source with no recorded try (a cube of an older finkcube) is always due.

    Examples
    --------
    >>> import datetime as dt
    >>> attrs = {"missing_diaSourceIds": ["7", "8"], "missing_reasons": ["no_cutout"] * 2,
    ...          "missing_tried": ["2026-01-01T00:00:00Z", "2026-01-01T23:30:00Z"]}
    >>> sorted(due(attrs, dt.datetime(2026, 1, 2, tzinfo=dt.UTC), dt.timedelta(hours=1)))
    [7]
    """
    if after is None:
        return set()
    return {o.source_id for o in left_out(attrs) if o.tried is None or now - o.tried >= after}


def retry_age(value: dt.timedelta | float | None) -> dt.timedelta | None:
    """``retry_missing_after`` as a timedelta: a timedelta, hours as a number, or None.

    Examples
    --------
    >>> retry_age(1.5), retry_age(None)
    (datetime.timedelta(seconds=5400), None)
    """
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        age = value
    else:
        age = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                age = dt.timedelta(hours=float(value))
            except (OverflowError, ValueError):  # inf, nan, past 999,999,999 days
                age = None
    if age is None or age < dt.timedelta(0):
        raise InputError(f"invalid retry_missing_after {value!r}: expected hours (a number >= 0)")
    return age
