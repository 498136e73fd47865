"""What the client sends: request payloads, and the checks of their inputs (no socket).

The searches' checks (a cone's centre and radius, dates, counts) are here too, for
:mod:`finkcube.service.search`.

Every check raises :class:`~finkcube.errors.InputError` (or ``InvalidIdError``) before
anything is sent; the payloads carry the service's own spellings (``diaObjectId``,
``output-format``, the canonical kind, format, stretch and kernel names).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

import numpy as np

from finkcube._version import __version__
from finkcube.errors import InputError
from finkcube.ids import parse_id, parse_ids
from finkcube.names import (
    COLORMAP_OPTION,
    CONVOLUTION_KERNELS,
    KERNEL_OPTION,
    KIND_ALL,
    KIND_ARGS,
    MAX_CONE_RADIUS_ARCSEC,
    OBJECT_ID,
    OUTPUT_FORMATS,
    PMAX_OPTION,
    PMIN_OPTION,
    PNG_OPTIONS,
    SOURCE_ID,
    STRETCH_OPTION,
    STRETCHES,
    rubin_column,
)

__all__ = [
    "canonical",
    "check_count",
    "check_number",
    "cone_centre",
    "cone_radius",
    "cutout_payload",
    "cutout_request",
    "date_fields",
    "object_ids",
    "objects_request",
    "png_payload",
    "request_columns",
    "search_date",
    "sources_request",
    "user_agent",
]

#: Numbers at least this large are Julian Dates, smaller ones MJD (the service's rule).
_JD_FROM = 2_400_000
#: The service's defaults of ``pmin`` and ``pmax``.
_PMIN_PMAX_DEFAULTS = (0.5, 99.5)


def user_agent() -> str:
    """The ``User-Agent`` finkcube sends: ``finkcube/<version>``."""
    return f"finkcube/{__version__}"


def canonical(value: object, allowed: Iterable[str], what: str) -> str:
    """``value`` spelled as in ``allowed`` (matched case-insensitively), or InputError."""
    allowed = tuple(allowed)
    if isinstance(value, str):
        for name in allowed:
            if value.strip().lower() == name.lower():
                return name
    raise InputError(f"invalid {what} {value!r}: expected one of {', '.join(allowed)}")


def check_number(name: str, value: object, *, positive: bool = False) -> None:
    """InputError unless ``value`` is a finite real number > 0 (``positive``) or >= 0."""
    number = float(value) if isinstance(value, Real) and not isinstance(value, bool) else None
    if number is None or not 0 <= number < float("inf") or (positive and number == 0):
        bound = "> 0" if positive else ">= 0"
        raise InputError(f"invalid {name} {value!r}: expected a finite number {bound}")


def png_payload(options: Mapping[str, Any]) -> dict[str, Any]:
    """Check the PNG options and return them as sent; InputError on the first bad one."""
    unknown = sorted(set(options) - set(PNG_OPTIONS))
    if unknown:
        raise InputError(f"unknown PNG option(s) {unknown}: expected {', '.join(PNG_OPTIONS)}")
    payload: dict[str, Any] = {}
    if options.get(STRETCH_OPTION) is not None:
        payload[STRETCH_OPTION] = canonical(options[STRETCH_OPTION], STRETCHES, STRETCH_OPTION)
    if options.get(COLORMAP_OPTION) is not None:
        payload[COLORMAP_OPTION] = _check_colormap(options[COLORMAP_OPTION])
    if options.get(KERNEL_OPTION) is not None:
        payload[KERNEL_OPTION] = canonical(
            options[KERNEL_OPTION], CONVOLUTION_KERNELS, KERNEL_OPTION
        )
    bounds = {}
    for name, default in zip((PMIN_OPTION, PMAX_OPTION), _PMIN_PMAX_DEFAULTS, strict=True):
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, Real)):
            raise InputError(f"invalid {name} {value!r}: expected a number between 0 and 100")
        bounds[name] = default if value is None else float(value)
        if value is not None:
            payload[name] = bounds[name]
    if not 0 <= bounds[PMIN_OPTION] < bounds[PMAX_OPTION] <= 100:
        raise InputError(
            f"invalid percentiles pmin={bounds[PMIN_OPTION]}, pmax={bounds[PMAX_OPTION]}: "
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


def object_ids(values: int | str | Iterable[int | str]) -> list[int]:
    """One diaObjectId or several, validated; InputError when none is given."""
    if isinstance(values, int | str | np.integer):
        return [parse_id(int(values) if isinstance(values, np.integer) else values)]
    ids = parse_ids(values)
    if not ids:
        raise InputError(f"no {OBJECT_ID} given: expected one id or more")
    return ids


def request_columns(columns: Iterable[str] | None) -> list[str] | None:
    """The columns asked for, ``r:``-prefixed and without repeats (None: all of them)."""
    if columns is None:
        return None
    names = columns.split(",") if isinstance(columns, str) else list(columns)
    if not names or not all(isinstance(c, str) and c.strip() for c in names):
        raise InputError(f"invalid columns {columns!r}: expected non-empty column names")
    return list(dict.fromkeys(rubin_column(c.strip()) for c in names))


def objects_request(
    kind: str, values: int | str | Iterable[int | str], columns: Iterable[str] | None
) -> tuple[dict[str, Any], str]:
    """The payload of a request about one or many objects (``/sources``, ``/objects``,
    ``/fp``: comma-separated ids, ``r:``-prefixed columns), and what it asks for, as
    ``"{kind} of ..."`` (for messages)."""
    ids = object_ids(values)
    payload: dict[str, Any] = {OBJECT_ID: ",".join(str(i) for i in ids)}
    wanted = request_columns(columns)
    if wanted is not None:
        payload["columns"] = ",".join(wanted)
    label = OBJECT_ID if len(ids) == 1 else f"{len(ids)} {OBJECT_ID}s"
    what = f"{kind} of {label} {','.join(str(i) for i in ids[:3])}"
    what += "..." if len(ids) > 3 else ""
    return payload, what


def sources_request(
    values: int | str | Iterable[int | str], columns: Iterable[str] | None
) -> tuple[dict[str, Any], str]:
    """The payload of a ``/api/v1/sources`` request, and what it asks for (for messages)."""
    return objects_request("sources", values, columns)


def cutout_payload(source_id: int, kind: str, output_format: str) -> dict[str, Any]:
    """The payload of a ``/api/v1/cutouts`` request (already checked arguments)."""
    return {SOURCE_ID: str(source_id), "kind": kind, "output-format": output_format}


def cutout_request(
    source_id: int | str, kind: object, output_format: object, png_options: Mapping[str, Any]
) -> tuple[int, str, str, dict[str, Any]]:
    """Check a cutout request: its diaSourceId, kind and format, and its payload."""
    sid = parse_id(source_id, what=SOURCE_ID)
    kind = canonical(kind, KIND_ARGS, "kind")
    fmt = canonical(output_format, OUTPUT_FORMATS, "output_format")
    if kind == KIND_ALL and fmt != "array":
        raise InputError(f"kind='All' needs output_format='array', not {fmt!r}: ask one kind")
    if png_options and fmt != "PNG":
        raise InputError(
            f"PNG options {sorted(png_options)} given with output_format={fmt!r}: "
            "they apply to output_format='PNG' only"
        )
    payload = cutout_payload(sid, kind, fmt)
    if fmt == "PNG":
        payload.update(png_payload(png_options))
    return sid, kind, fmt, payload


# -- the searches (conesearch, tags) ----------------------------------------------------


def check_count(name: str, value: object) -> int:
    """``value`` as an integer >= 1, or InputError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"invalid {name} {value!r}: expected an integer >= 1")
    return value


def search_date(name: str, value: object) -> str | None:
    """A date as every search endpoint reads it: ISO text (UTC); None stays None.

    ISO text as astropy reads it, or a number: a JD if at least 2,400,000, else an MJD.
    """
    if value is None:
        return None
    from astropy.time import Time

    try:
        if isinstance(value, Real) and not isinstance(value, bool):
            number = float(value)
            if not math.isfinite(number):
                raise ValueError("not finite")
            return str(Time(number, format="jd" if number // _JD_FROM else "mjd").iso)
        if isinstance(value, str) and value.strip():
            try:
                return str(Time(value.strip()).iso)
            except ValueError:
                return search_date(name, float(value))
    except (ValueError, TypeError, OverflowError):
        pass
    raise InputError(f"invalid {name} {value!r}: expected an ISO date (2026-01-31), an MJD or a JD")


def date_fields(fields: dict[str, Any], startdate: object, stopdate: object) -> None:
    """Add the checked ``startdate``/``stopdate`` (ISO) to a search's fields."""
    start, stop = search_date("startdate", startdate), search_date("stopdate", stopdate)
    if start is not None and stop is not None and start > stop:
        raise InputError(f"invalid dates: startdate {start} is after stopdate {stop}")
    fields.update({k: v for k, v in (("startdate", start), ("stopdate", stop)) if v})


def _degrees(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        unit = "arcsec" if name == "radius" else "degrees"
        raise InputError(f"invalid {name} {value!r}: expected a finite number of {unit}")
    return float(value)


def cone_centre(ra: object, dec: object) -> tuple[float, float]:
    """A cone's centre in degrees: ``ra``/``dec`` degrees, or a SkyCoord as ``ra``."""
    from astropy.coordinates import SkyCoord

    if isinstance(ra, SkyCoord):
        if dec is not None:
            raise InputError("give the centre as a SkyCoord alone, or as ra and dec degrees")
        if not ra.isscalar:
            raise InputError("invalid centre: expected one position, not an array of them")
        icrs = ra.icrs
        ra, dec = float(icrs.ra.deg), float(icrs.dec.deg)
    if dec is None:
        raise InputError("no dec given: pass ra and dec in degrees, or a SkyCoord")
    ra_deg, dec_deg = _degrees("ra", ra), _degrees("dec", dec)
    if not 0.0 <= ra_deg < 360.0:
        raise InputError(f"invalid ra {ra!r}: expected 0 <= ra < 360 degrees")
    if not -90.0 <= dec_deg <= 90.0:
        raise InputError(f"invalid dec {dec!r}: expected -90 <= dec <= 90 degrees")
    return ra_deg, dec_deg


def cone_radius(radius: object) -> float:
    """A cone's radius in arcsec (from arcsec or an angle), in (0, 18000]."""
    import astropy.units as u

    if isinstance(radius, u.Quantity):
        if not radius.isscalar or radius.unit.physical_type != "angle":
            raise InputError(f"invalid radius {radius!r}: expected one angle")
        radius = float(radius.to_value(u.arcsec))
    value = _degrees("radius", radius)
    if not 0.0 < value <= MAX_CONE_RADIUS_ARCSEC:
        raise InputError(
            f"invalid radius {radius!r}: expected 0 < radius <= {MAX_CONE_RADIUS_ARCSEC:g} "
            "arcsec (5 degrees, the service's largest cone)"
        )
    return value
