"""Pure decoding of the Fink LSST API's replies: bytes in, numpy planes and records out.

Nothing here opens a socket. :mod:`finkcube.service.client` hands the reply bodies to these
functions; :mod:`finkcube.cube.assemble` stacks the value objects they return.

This module decodes the JSON replies (source records, ``output-format=array`` cutouts) and
is the one place to import decoding from: it re-exports the value objects and their
constructors (:class:`Stamp`, :class:`SourceCutouts`, from :mod:`finkcube.cutouts`) and the
FITS decoding (:func:`decode_fits`, :func:`looks_like_fits`, from :mod:`finkcube.service.fitsfile`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import orjson

from finkcube.cutouts import SourceCutouts, Stamp, stamps_from_arrays, stamps_from_fits
from finkcube.errors import DecodeError, NotFoundError, quote_body
from finkcube.names import KINDS, MAX_SIDE, cutout_key

# The FITS extension names stay importable from here, as before fitsfile.py existed.
from finkcube.names import MASK_EXTNAME as MASK_EXTNAME
from finkcube.names import PSF_EXTNAME as PSF_EXTNAME
from finkcube.names import UNCERT_EXTNAME as UNCERT_EXTNAME
from finkcube.service.fitsfile import decode_fits, looks_like_fits
from finkcube.service.limits import OversizeReplyError

__all__ = [
    "SourceCutouts",
    "Stamp",
    "decode_cutout_arrays",
    "decode_fits",
    "decode_json",
    "decode_source_records",
    "looks_like_fits",
    "stamps_from_arrays",
    "stamps_from_fits",
]

_NATIVE_F32 = np.dtype(np.float32)


def decode_json(content: bytes | str) -> Any:
    """Parse a JSON reply, accepting the bare ``NaN`` / ``Infinity`` tokens the API writes.

    Parameters
    ----------
    content : bytes or str
        The reply body.

    Returns
    -------
    object
        The parsed value; integers stay exact Python ints.

    Raises
    ------
    DecodeError
        When the body is not JSON, quoting its start, or nests too deep to parse.

    Examples
    --------
    >>> decode_json(b'{"a": [NaN, 1.5, 313761043604045880]}')
    {'a': [nan, 1.5, 313761043604045880]}
    """
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    # orjson is strict JSON; the standard library accepts NaN, Infinity and -Infinity.
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"reply is not JSON ({exc}): {quote_body(content)}") from exc
    except RecursionError:  # orjson stops at 1024 levels; the standard library overflows
        raise DecodeError(
            f"reply is JSON nested too deep to parse: {quote_body(content)}"
        ) from None


def decode_source_records(
    content: bytes | str, *, max_records: int | None = None
) -> list[dict[str, Any]]:
    """Decode a ``/api/v1/sources`` JSON reply into its records.

    Parameters
    ----------
    content : bytes or str
        The reply body: a JSON array of objects (``[]`` for an unknown object).
    max_records : int, optional
        The most records a real reply can hold (10,000 per object asked); a body that may
        hold more (more ``{`` than that: records are flat) is refused before it is parsed.

    Returns
    -------
    list of dict
        One dict per source, keys as served (``r:diaSourceId``, ...); 64-bit ids are exact
        Python ints; ``null``, and the text ``"nan"`` a server on pandas 2 writes for a null
        text or boolean cell, are ``None``.

    Raises
    ------
    DecodeError
        When the body is not a JSON array of objects.
    OversizeReplyError
        When it holds more than ``max_records`` records.

    Examples
    --------
    >>> decode_source_records(b'[{"r:diaSourceId": 313761043604045881, "r:band": null}]')
    [{'r:diaSourceId': 313761043604045881, 'r:band': None}]
    >>> decode_source_records(b"[]")
    []
    >>> decode_source_records(b'[{"r:band": "nan", "r:isDipole": "nan", "r:snr": null}]')
    [{'r:band': None, 'r:isDipole': None, 'r:snr': None}]
    """
    raw = content.encode() if isinstance(content, str) else content
    if max_records is not None and raw.count(b"{") > max_records:
        raise OversizeReplyError(
            f"sources reply holds more than {max_records} records, the most the service "
            f"returns for the objects asked: {quote_body(raw)}"
        )
    records = decode_json(raw)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DecodeError(f"sources reply is not a JSON array of records: {quote_body(content)}")
    return [_null_nan_text(r) for r in records]


#: What a server on pandas 2 writes for a null cell of a text or boolean column.
_PANDAS2_NULL = "nan"


def _null_nan_text(record: dict[str, Any]) -> dict[str, Any]:
    """The record with pandas 2's null text ``"nan"`` as None (a null of pandas >= 3).

    A string or boolean column that is null in some rows arrives as the string ``"nan"`` in
    those rows from a server on pandas 2 (floats are ``null`` either way): left as it is, a
    cube would keep a band ``"nan"`` or a flag that is a string.
    """
    if _PANDAS2_NULL not in record.values():
        return record
    return {k: (None if v == _PANDAS2_NULL else v) for k, v in record.items()}


def _is_empty(content: bytes | str | None) -> bool:
    return content is None or not content.strip()


def decode_cutout_arrays(
    content: bytes | str, *, source_id: int, kinds: Iterable[str] = KINDS
) -> dict[str, np.ndarray]:
    """Decode an ``output-format=array`` cutout reply into float32 planes.

    Parameters
    ----------
    content : bytes or str
        The reply body: ``{"b:cutoutScience": [[...], ...], ...}``, keys in any order, bare
        ``NaN`` tokens for blank pixels.
    source_id : int
        The ``diaSourceId`` asked for (used in error messages).
    kinds : iterable of str, optional
        The kinds the reply must hold (default: all three).

    Returns
    -------
    dict of str to numpy.ndarray
        ``kind -> 2-D float32 array`` (native byte order), in the order of ``kinds``.

    Raises
    ------
    NotFoundError
        For an empty body: the service's way of saying "no such alert".
    DecodeError
        When the body is not JSON, lacks a kind, or holds a value that is not a square 2-D
        list of numbers of side at most :data:`~finkcube.names.MAX_SIDE` (checked before
        any array is built).

    Examples
    --------
    >>> arrays = decode_cutout_arrays(b'{"b:cutoutScience": [[NaN, 1.5], [2.0, 3.0]]}',
    ...                               source_id=1, kinds=["Science"])
    >>> arrays["Science"]
    array([[nan, 1.5],
           [2. , 3. ]], dtype=float32)
    """
    if _is_empty(content):
        raise NotFoundError(f"no alert with diaSourceId {source_id}")
    raw = content.encode() if isinstance(content, str) else content
    # Fast path: orjson is strict JSON, so blank pixels written as NaN become null (which
    # numpy casts back to NaN). Only the b:cutout* keys are strings in this reply, so the
    # replacement cannot touch anything else. Anything orjson still refuses (Infinity)
    # goes through the standard library.
    try:
        reply = orjson.loads(raw.replace(b"NaN", b"null") if b"NaN" in raw else raw)
    except orjson.JSONDecodeError:
        reply = decode_json(raw)
    if not isinstance(reply, dict):
        raise DecodeError(
            f"cutout reply for diaSourceId {source_id} is not a JSON object: {quote_body(raw)}"
        )
    arrays: dict[str, np.ndarray] = {}
    for kind in kinds:
        key = cutout_key(kind)
        if key not in reply:
            raise DecodeError(
                f"cutout reply for diaSourceId {source_id} lacks {key!r} "
                f"(keys: {sorted(reply)}): {quote_body(raw)}"
            )
        arrays[kind] = _float32_plane(reply[key], key=key, source_id=source_id, raw=raw)
    return arrays


def _float32_plane(value: Any, *, key: str, source_id: int, raw: bytes) -> np.ndarray:
    """Return a 2-D list of numbers as a float32 array, or raise :class:`DecodeError`."""
    if isinstance(value, list) and (
        len(value) > MAX_SIDE or any(isinstance(r, list) and len(r) > MAX_SIDE for r in value)
    ):
        raise DecodeError(
            f"{key} of diaSourceId {source_id} is larger than a cutout can be "
            f"(side at most {MAX_SIDE}): {quote_body(raw)}"
        )
    try:
        with np.errstate(over="raise"):
            plane = np.array(value, dtype=_NATIVE_F32)
    except (ValueError, TypeError, FloatingPointError) as exc:
        raise DecodeError(
            f"{key} of diaSourceId {source_id} is not a rectangular list of float32 numbers "
            f"({exc}): {quote_body(raw)}"
        ) from exc
    if plane.ndim != 2 or plane.size == 0 or plane.shape[0] != plane.shape[1]:
        raise DecodeError(
            f"{key} of diaSourceId {source_id} is not a non-empty square 2-D array "
            f"(shape {plane.shape}): {quote_body(raw)}"
        )
    return plane
