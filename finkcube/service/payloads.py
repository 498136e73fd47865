"""What the client sends: request payloads, and the checks of their inputs (no socket).

Every check raises :class:`~finkcube.errors.InputError` (or ``InvalidIdError``) before
anything is sent; the payloads carry the service's own spellings (``diaObjectId``,
``output-format``, the canonical kind, format, stretch and kernel names).
"""

from __future__ import annotations

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
    "check_number",
    "cutout_payload",
    "cutout_request",
    "object_ids",
    "png_payload",
    "request_columns",
    "sources_request",
    "user_agent",
]

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


def sources_request(
    values: int | str | Iterable[int | str], columns: Iterable[str] | None
) -> tuple[dict[str, Any], str]:
    """The payload of a ``/api/v1/sources`` request, and what it asks for (for messages)."""
    ids = object_ids(values)
    payload: dict[str, Any] = {OBJECT_ID: ",".join(str(i) for i in ids)}
    wanted = request_columns(columns)
    if wanted is not None:
        payload["columns"] = ",".join(wanted)
    label = OBJECT_ID if len(ids) == 1 else f"{len(ids)} {OBJECT_ID}s"
    what = f"sources of {label} {','.join(str(i) for i in ids[:3])}"
    what += "..." if len(ids) > 3 else ""
    return payload, what


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
