"""The files of a cube's Zarr v3 group, encoded without zarr-python or xarray's writer.

:func:`finkcube.store.write_cube` used to stage every cube with xarray's ``to_zarr`` into a
``MemoryStore``: some 45 round trips through zarr's event loop and thread pool, 50-75 ms
for a 400-epoch cube, several times what encoding its bytes costs. For the plain layout
finkcube writes (one regular chunk grid per array, ``/`` chunk keys, little-endian numbers,
booleans and UTF-8 strings, at most one Zstd or Blosc compressor, NaN fill for floats),
:func:`group_files` writes the same ``zarr.json`` documents and the same chunk bytes itself:
xarray's encoding (``_FillValue``, the ``coordinates`` attribute, ``dimension_names``) and
zarr's (default Zstd level 0, ``vlen-utf8`` strings, chunks equal to the fill value left
unwritten, edge chunks padded with it). Tests check the result equal to xarray's and
zarr's own on every kind of cube finkcube makes. Anything else (a datetime, a CF encoding
attribute, a non-JSON attribute, a 0-d or empty array, another codec) gets ``None``, and
the caller goes through xarray. :func:`check_attrs` refuses, before anything is written,
the NaN or infinite attributes that neither writer can put in JSON metadata.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import xarray as xr

from finkcube.errors import InputError

__all__ = ["Blosc", "check_attrs", "group_files", "zarr_encoding"]

#: Attributes through which xarray would encode the values: left to xarray.
_CF_ATTRS = frozenset(
    {"_FillValue", "missing_value", "scale_factor", "add_offset", "dtype", "_Unsigned",
     "calendar", "coordinates", "_ARRAY_DIMENSIONS"}
)  # fmt: skip
#: zarr's default compressor for numbers and strings (``array.v3_default_compressors``).
_ZSTD = {"name": "zstd", "configuration": {"level": 0, "checksum": False}}
#: xarray's ``_FillValue`` attribute of a float NaN fill (base64 of a float64 NaN).
_NAN_ATTR = base64.standard_b64encode(np.array(np.nan, "<f8").tobytes()).decode()
_META = "zarr.json"
_SHUFFLES = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


@dataclass(frozen=True, slots=True)
class Blosc:
    """An array's Blosc compressor, named without importing zarr (see :func:`zarr_encoding`)."""

    cname: Literal["lz4", "lz4hc", "blosclz", "snappy", "zlib", "zstd"] = "lz4"
    clevel: int = 5
    shuffle: Literal["noshuffle", "shuffle", "bitshuffle"] = "noshuffle"
    blocksize: int = 0


def zarr_encoding(encoding: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``encoding`` for xarray's ``to_zarr``: each :class:`Blosc` made zarr's ``BloscCodec``."""
    from zarr.codecs import BloscCodec

    out = {}
    for name, spec in encoding.items():
        given = spec.get("compressors")
        if isinstance(given, list | tuple):
            given = tuple(
                BloscCodec(cname=c.cname, clevel=c.clevel, shuffle=c.shuffle, blocksize=c.blocksize)
                if isinstance(c, Blosc)
                else c
                for c in given
            )
            spec = {**spec, "compressors": given}
        out[name] = dict(spec)
    return out


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, allow_nan=False).encode()


def _is_json(value: Any) -> bool:
    """Whether an attribute value is plain JSON (as zarr would write it unchanged)."""
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def _compressor(spec: Mapping[str, Any], itemsize: int) -> dict[str, Any] | bool | None:
    """The compressor's codec document (None for none), or False when not understood."""
    if "compressors" not in spec:
        return _ZSTD
    given = spec["compressors"]
    if given is None or given == ():
        return None
    if not isinstance(given, list | tuple) or len(given) != 1:
        return False
    codec = given[0]
    if not isinstance(codec, Blosc) or codec.shuffle not in _SHUFFLES:
        return False
    config = {
        "typesize": itemsize,
        "cname": codec.cname,
        "clevel": codec.clevel,
        "shuffle": codec.shuffle,
        "blocksize": codec.blocksize,
    }
    return {"name": "blosc", "configuration": config}


def _encoder(doc: dict[str, Any] | None) -> Any:
    """The numcodecs codec of a compressor document (the library zarr's codecs wrap)."""
    if doc is None:
        return None
    import numcodecs

    config = doc["configuration"]
    if doc["name"] == "zstd":
        return numcodecs.Zstd(level=config["level"], checksum=config["checksum"])
    return numcodecs.Blosc(
        cname=config["cname"],
        clevel=config["clevel"],
        shuffle=_SHUFFLES[config["shuffle"]],
        blocksize=config["blocksize"],
        typesize=config["typesize"],
    )


def _strings(values: np.ndarray) -> np.ndarray | None:
    """Strings as an object array of ``str`` (stored ``vlen-utf8``), or None.

    Fixed-width ``U`` arrays are stored as variable-length strings too: zarr-python would
    write them with a data type that has no Zarr v3 specification (and warns).
    """
    if values.dtype.kind in "UT":
        return values.astype(object)
    if values.dtype.kind == "O" and all(isinstance(v, str) for v in values.flat):
        return values
    return None


def _coordinates(ds: xr.Dataset) -> dict[Hashable, str]:
    """xarray's ``coordinates`` attribute of each data variable."""
    extra = [name for name in ds.coords if name not in ds.dims]
    out = {}
    for name, var in ds.data_vars.items():
        names = sorted(str(c) for c in extra if set(ds[c].dims) <= set(var.dims))
        if names:
            out[name] = " ".join(names)
    return out


def _array_files(
    name: str, var: xr.Variable, spec: Mapping[str, Any], coordinates: str | None
) -> dict[str, bytes] | None:
    """The metadata and chunk files of one array, keyed from the group, or None."""
    values = np.asarray(var.values)
    shape = tuple(int(n) for n in values.shape)
    if not shape or 0 in shape or not _is_json(dict(var.attrs)):
        return None
    if _CF_ATTRS & set(var.attrs) or (coordinates and "coordinates" in var.attrs):
        return None
    chunks = tuple(int(n) for n in (spec.get("chunks") or shape))
    if len(chunks) != len(shape) or not all(chunks):
        return None
    attrs: dict[str, Any] = dict(var.attrs)
    if coordinates:
        attrs["coordinates"] = coordinates
    kind = values.dtype.kind
    strings = _strings(values) if kind in "OUT" else None
    compressor: Any
    if strings is not None:
        if "compressors" in spec:
            return None
        data_type = "string"
        fill: Any = ""
        json_fill: Any = ""
        codecs: list[dict[str, Any]] = [{"name": "vlen-utf8", "configuration": {}}, _ZSTD]
        compressor = _ZSTD
        values = strings
    elif kind in "biuf" and values.dtype.itemsize <= 8 and values.dtype != np.float16:
        compressor = _compressor(spec, values.dtype.itemsize)
        if compressor is False:
            return None
        data_type = values.dtype.name
        if kind == "f":
            fill, json_fill = values.dtype.type(np.nan), "NaN"
            attrs["_FillValue"] = _NAN_ATTR
        else:
            fill = json_fill = False if kind == "b" else 0
        endian: dict[str, Any] = {"name": "bytes"}
        if values.dtype.itemsize > 1:
            endian["configuration"] = {"endian": "little"}
        codecs = [endian] + ([compressor] if compressor else [])
        values = values.astype(values.dtype.newbyteorder("<"), copy=False)
    else:
        return None
    meta = {
        "shape": list(shape),
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": json_fill,
        "codecs": codecs,
        "attributes": attrs,
        "dimension_names": [str(d) for d in var.dims],
        "zarr_format": 3,
        "node_type": "array",
        "storage_transformers": [],
    }
    files = {f"{name}/{_META}": _json(meta)}
    files.update(_chunk_files(name, values, chunks, fill, data_type, compressor))
    return files


def _all_fill(chunk: np.ndarray, fill: Any) -> bool:
    """Whether a chunk holds only the fill value (NaN equal to NaN), as zarr tests it."""
    first = chunk.flat[0]
    if chunk.dtype.kind == "f":  # the fill of floats is NaN
        return bool(np.isnan(first)) and bool(np.isnan(chunk).all())
    return bool(first == fill) and bool((chunk == fill).all())


def _chunk_files(
    name: str,
    values: np.ndarray,
    chunks: tuple[int, ...],
    fill: Any,
    data_type: str,
    compressor: dict[str, Any] | None,
) -> dict[str, bytes]:
    """Encode every chunk not equal to the fill value; edge chunks padded with it."""
    codec = _encoder(compressor)
    files = {}
    grid = [range(math.ceil(n / c)) for n, c in zip(values.shape, chunks, strict=True)]
    for index in itertools.product(*grid):
        box = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, chunks, strict=True))
        chunk = values[box]
        if _all_fill(chunk, fill):
            continue
        if chunk.shape != chunks:
            padded = np.full(chunks, fill, values.dtype)
            padded[tuple(slice(0, n) for n in chunk.shape)] = chunk
            chunk = padded
        if data_type == "string":
            import numcodecs

            raw: Any = numcodecs.VLenUTF8().encode(np.ascontiguousarray(chunk).ravel())
        else:
            raw = np.ascontiguousarray(chunk)
        data = bytes(codec.encode(raw)) if codec is not None else raw.tobytes()
        files["/".join((name, "c", *map(str, index)))] = data
    return files


def group_files(
    ds: xr.Dataset, encoding: Mapping[str, Mapping[str, Any]]
) -> dict[str, bytes] | None:
    """The files of ``ds`` as one Zarr v3 group, keyed from the group, or None.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube in memory, its encoding dropped.
    encoding : mapping
        Per variable: ``chunks``, and ``compressors`` (None, or one :class:`Blosc`; absent:
        zarr's default Zstd), as :func:`zarr_encoding` turns into ``to_zarr``'s.

    Returns
    -------
    dict of str to bytes, or None
        ``zarr.json`` and each array's ``NAME/zarr.json`` and ``NAME/c/...`` chunk files
        (the group's own document first); None when some variable or attribute is outside
        the plain layout, for xarray's writer to handle.
    """
    if not _is_json(dict(ds.attrs)) or "coordinates" in ds.attrs:
        return None
    coordinates = _coordinates(ds)
    if any(c in ds.data_vars for c in ds.coords if c not in ds.dims):
        return None
    extra = {str(c) for c in ds.coords if c not in ds.dims}
    if extra - {w for text in coordinates.values() for w in text.split()}:
        return None  # xarray would write a global "coordinates" attribute
    files = {_META: _json({"attributes": dict(ds.attrs), "zarr_format": 3, "node_type": "group"})}
    for name, var in ds.variables.items():
        if not isinstance(name, str) or "/" in name or name.startswith("."):
            return None
        found = _array_files(name, var, encoding.get(name, {}), coordinates.get(name))
        if found is None:
            return None
        files.update(found)
    return files


def _non_finite(value: Any) -> bool:
    if isinstance(value, float | np.floating):
        return not np.isfinite(value)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return not np.isfinite(value).all()
    if isinstance(value, Mapping):
        value = list(value.values())
    return isinstance(value, list | tuple) and any(_non_finite(v) for v in value)


def check_attrs(ds: xr.Dataset) -> None:
    """InputError for a NaN or infinite attribute: Zarr metadata is JSON, which has neither."""
    owners = [("the cube", ds.attrs), *((repr(n), v.attrs) for n, v in ds.variables.items())]
    for owner, attrs in owners:
        bad = [key for key, value in attrs.items() if _non_finite(value)]
        if bad:
            raise InputError(
                f"attribute {bad[0]!r} of {owner} holds NaN or infinity, which Zarr metadata "
                "(JSON) cannot store: drop it or store it as a string"
            )
