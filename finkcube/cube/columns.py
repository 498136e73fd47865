"""Per-epoch source columns of a cube: typed, encoded as coordinates, and decoded back.

A column typed ``int``, ``bool`` or ``float`` with nulls is stored as float64 with NaN (an
int column with nulls and values beyond 2**53 as decimal strings), a ``str`` column with
``""`` for null, a list or dict column as JSON text. The cube's attribute
``source_columns`` records each column's coordinate name and JSON type
(``int float bool str json null``), so that :func:`decode_columns` gives the records back
exactly. A column whose bare name would clash with a name of the cube (``x``, ``y``, ...)
keeps its family as a prefix (``r_x``). A column whose name is not a plain identifier
(``r:..``, ``r:a/b``, ``r:zarr.json``: a name the server chose, that would become a path in
the store) is left out, with one warning.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from finkcube.names import (
    ALIGNED_DIMS,
    ALIGNED_PSF_VAR,
    ALIGNED_VAR,
    BAND,
    COLUMNS_ATTR,
    CROPPED,
    CUTOUT_VAR,
    DIMS,
    EDGE,
    NAN_FRACTION,
    OBJECT_ID,
    OFFSET_X,
    OFFSET_Y,
    PSF_DIMS,
    PSF_SIDE,
    PSF_VAR,
    SIDE,
    SOURCE_ID,
    TIME_COLUMN,
    WCS_VAR,
    bare_column,
    rubin_column,
)

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "BAND_KEY",
    "ID_KEY",
    "OBJECT_KEY",
    "TIME_KEY",
    "as_str",
    "column_attrs",
    "decode_columns",
    "encode_columns",
    "is_null",
]

#: The wire keys (``r:`` names) of the columns every cube needs.
ID_KEY, TIME_KEY, BAND_KEY, OBJECT_KEY = (
    rubin_column(c) for c in (SOURCE_ID, TIME_COLUMN, BAND, OBJECT_ID)
)
TIME = DIMS[0]
#: A column's wire key that may become an array name: an identifier, maybe ``family:``-prefixed.
_SAFE_KEY = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*:)?[A-Za-z_][A-Za-z0-9_]*")

logger = logging.getLogger(__name__)
#: Names of the cube a column's coordinate must not take.
_RESERVED = {*DIMS, *PSF_DIMS, CUTOUT_VAR, PSF_VAR, WCS_VAR, SIDE, CROPPED, PSF_SIDE, OBJECT_ID,
             *ALIGNED_DIMS, ALIGNED_VAR, ALIGNED_PSF_VAR, NAN_FRACTION, OFFSET_X, OFFSET_Y,
             EDGE}  # fmt: skip


def is_null(value: Any) -> bool:
    """Tell whether a record's value is a null (None or a float NaN).

    Examples
    --------
    >>> is_null(None), is_null(float("nan")), is_null(0)
    (True, True, False)
    """
    return value is None or (isinstance(value, float) and math.isnan(value))


def as_str(values: Any) -> np.ndarray:
    """Return strings of any kind (object, numpy ``StringDType``, ``U``) as a ``U`` array.

    Examples
    --------
    >>> as_str(np.array(["g", "r"], dtype=object)).dtype.kind
    'U'
    """
    return np.array([str(v) for v in np.asarray(values).ravel()], dtype=str)


def _encode_column(values: list[Any]) -> tuple[np.ndarray, str]:
    """Return a column as an array and its JSON type (``int float bool str json null``)."""
    present = [v for v in values if not is_null(v)]
    nulls = len(present) < len(values)
    if not present:
        return np.full(len(values), np.nan), "null"
    if all(isinstance(v, bool | np.bool_) for v in present):
        if not nulls:
            return np.array(values, dtype=bool), "bool"
        return np.array([np.nan if is_null(v) else float(v) for v in values]), "bool"
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in present):
        if not nulls and all(-(2**63) <= v < 2**63 for v in present):
            return np.array(values, dtype=np.int64), "int"
        if all(abs(v) <= 2**53 for v in present):
            return np.array([np.nan if is_null(v) else float(v) for v in values]), "int"
        return np.array(["" if is_null(v) else str(v) for v in values], dtype=object), "int"
    if all(isinstance(v, numbers.Real) for v in present):
        return np.array([np.nan if is_null(v) else float(v) for v in values]), "float"
    if any(isinstance(v, list | dict) for v in present):
        texts = ["" if is_null(v) else json.dumps(v) for v in values]
        return np.array(texts, dtype=object), "json"
    return np.array(["" if is_null(v) else str(v) for v in values], dtype=object), "str"


def _decode_column(array: np.ndarray, kind: str) -> list[Any]:
    """Undo :func:`_encode_column` (``str`` nulls come back as ``""``)."""
    if array.dtype.kind == "f":
        cast = {"int": int, "bool": bool}.get(kind, float)
        return [None if math.isnan(v) else cast(v) for v in array.tolist()]
    if array.dtype.kind in "biu":
        return array.tolist()
    texts = [str(v) for v in array.tolist()]
    if kind == "int":
        return [int(t) if t else None for t in texts]
    if kind == "json":
        return [json.loads(t) if t else None for t in texts]
    return texts


def _coordinate_names(keys: Sequence[str]) -> dict[str, str]:
    """Map wire keys to coordinate names: bare, unless that clashes (then ``r_x``)."""
    bare = [bare_column(k) for k in keys]
    return {
        key: name if name not in _RESERVED and bare.count(name) == 1 else key.replace(":", "_")
        for key, name in zip(keys, bare, strict=True)
    }


#: Units of Rubin's diaSource columns, by the end of their name (the DPDD's conventions).
_UNIT_SUFFIXES = (("FluxErr", "nJy"), ("Flux", "nJy"), ("FluxDiff", "nJy"), ("FluxDiffErr", "nJy"))
_DEGREE_COLUMNS = {"ra", "dec", "raErr", "decErr", "trailRa", "trailDec", "trailRaErr",
                   "trailDecErr", "trailAngle", "dipoleAngle"}  # fmt: skip


def column_attrs(name: str) -> dict[str, str]:
    """Return the attributes of a per-epoch coordinate: its ``units`` when Rubin's are known.

    Examples
    --------
    >>> column_attrs("psfFluxErr"), column_attrs("ra"), column_attrs("snr")
    ({'units': 'nJy'}, {'units': 'deg'}, {})
    """
    bare = bare_column(name)
    if bare in _DEGREE_COLUMNS:
        return {"units": "deg"}
    for suffix, unit in _UNIT_SUFFIXES:
        if bare.endswith(suffix):
            return {"units": unit}
    return {}


def encode_columns(
    records: Sequence[Mapping[str, Any]], keys: Iterable[str]
) -> tuple[dict[str, tuple[str, str]], dict[str, np.ndarray]]:
    """Encode the columns ``keys`` of the records of a cube's epochs as coordinate arrays.

    Parameters
    ----------
    records : sequence of mapping
        One record per epoch, in the order of the ``time`` axis (``r:`` keys).
    keys : iterable of str
        The wire keys to keep; ``midpointMjdTai`` and ``band`` always are, ``diaObjectId``
        never is (it is an attribute of the cube).

    Returns
    -------
    columns : dict of str to (str, str)
        Wire key -> (coordinate name, JSON type): the cube's ``source_columns`` attribute.
        ``diaSourceId`` comes first, as ``("diaSourceId", "int")``; its coordinate is the
        cube's own (the epochs' ids), so it is not among ``arrays``; nor is the time
        column, which is the ``time`` axis.
    arrays : dict of str to numpy.ndarray
        Coordinate name -> one value per epoch.

    Examples
    --------
    >>> columns, arrays = encode_columns(
    ...     [{"r:midpointMjdTai": 6e4, "r:band": "g", "r:x": 1}], ["r:x"])
    >>> columns["r:x"], arrays["r_x"].tolist(), list(arrays)
    (('r_x', 'int'), [1], ['band', 'r_x'])
    """
    columns: dict[str, tuple[str, str]] = {ID_KEY: (SOURCE_ID, "int")}
    arrays: dict[str, np.ndarray] = {}
    wanted = [k for k in dict.fromkeys((TIME_KEY, BAND_KEY, *keys)) if k not in columns]
    unsafe = [k for k in wanted if not (isinstance(k, str) and _SAFE_KEY.fullmatch(k))]
    if unsafe:
        logger.warning(
            "source columns %s left out: a column name must be an identifier "
            "(letters, digits, underscores)",
            ", ".join(repr(k) for k in unsafe),
        )
        wanted = [k for k in wanted if k not in unsafe]
    for key, name in _coordinate_names([k for k in wanted if k != OBJECT_KEY]).items():
        name = TIME if key == TIME_KEY else name
        values = [record.get(key) for record in records]
        array, kind = _encode_column(values)
        if key == BAND_KEY:
            array, kind = np.array(["" if is_null(v) else str(v) for v in values], object), "str"
        columns[key] = (name, kind)
        if name != TIME:
            arrays[name] = array
    return columns, arrays


def decode_columns(ds: xr.Dataset) -> list[dict[str, Any]]:
    """Return the records of a cube's epochs, in time order, as :func:`encode_columns` got them.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube with a ``source_columns`` attribute.

    Returns
    -------
    list of dict
        One record per epoch, with ``r:`` keys (``r:diaObjectId`` excepted). A column of
        nulls only comes back absent, a ``str`` column's nulls as ``""``.
    """
    records: list[dict[str, Any]] = [{} for _ in range(ds.sizes[TIME])]
    for key, (name, kind) in ds.attrs[COLUMNS_ATTR].items():
        if kind == "null":
            continue
        for record, value in zip(records, _decode_column(ds[name].values, kind), strict=True):
            record[key] = value
    return records
