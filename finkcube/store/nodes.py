"""Lazy cube nodes built from a group's consolidated metadata alone, for :func:`open_store`.

Opening hundreds of cubes with xarray's zarr backend is slow: each open reads and parses
metadata and builds default indexes. A finkcube group's ``zarr.json`` already holds every
array's metadata (its consolidated metadata), and its ``time`` index is one uncompressed
chunk, so :func:`fast_cube` builds the ``xarray.Dataset`` from those alone, with ready-made
indexes, each variable a :class:`LazyArray` read on first access. Whatever it is unsure of
(coded attributes, CF time units, an unknown data type) it declines, and the caller opens
that group with xarray. (This reader is kept apart here, in the store's own package, so
that it can give way to zarr-python's once that opens many groups as quickly.)
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from finkcube.names import KINDS, PLANES
from finkcube.store.chunks import ChunkReader, simple_layout
from finkcube.store.failures import failures
from finkcube.store.layout import COMPLETE_ATTR, CONSOLIDATED, object_groups
from finkcube.store.location import Store
from finkcube.store.versions import check_unchanged

__all__ = ["LazyArray", "fast_cube", "groups_metadata", "open_group", "raw_time"]

#: The codecs of the ``time`` array as write_cube stores it: one uncompressed chunk.
_RAW_TIME_CODECS = [{"name": "bytes", "configuration": {"endian": "little"}}]
#: Attributes that would need xarray's decoding; an array carrying one is opened by xarray.
#: (``units`` only when they are CF time units: ``nJy`` and ``deg`` decode to nothing.)
_CODED_ATTRS = {"calendar", "scale_factor", "add_offset", "dtype", "_Unsigned",
                "missing_value", "_Encoding"}  # fmt: skip
_TIME_UNITS = {"days", "hours", "minutes", "seconds", "milliseconds", "microseconds",
               "nanoseconds"}  # fmt: skip


def _time_units(units: object) -> bool:
    """Whether xarray would decode ``units`` as times (``days since ...``, ``seconds``)."""
    return isinstance(units, str) and (" since " in units or units in _TIME_UNITS)


class LazyArray(xr.backends.BackendArray):
    """One Zarr array, read on access (xarray's backend-array protocol).

    An array of the plain layout finkcube writes is read straight from its chunk files
    (:mod:`finkcube.store.chunks`); any other through zarr, opened on first read. Zarr strings
    come back as Python ``str`` objects, as in :func:`open_cube`. With ``check`` (see
    :attr:`finkcube.store.versions.Version.check`), every read is followed by a read of the
    group's ``zarr.json``: a cube rewritten meanwhile raises
    :class:`~finkcube.store.versions.CubeChangedError` instead of returning a mix of versions.
    """

    def __init__(
        self,
        where: Store,
        path: str,
        meta: Mapping[str, Any],
        boolean: bool = False,
        check: tuple[str, str, bytes] | None = None,
    ) -> None:
        self.where, self.path, self.meta, self.boolean = where, path, meta, boolean
        self.check = check
        self.shape = tuple(int(n) for n in meta["shape"])
        self.dtype = np.dtype(bool) if boolean else _dtype(meta.get("data_type"))
        self._reader: ChunkReader | None = None
        self._array: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"where": self.where, "path": self.path, "meta": self.meta,
                "boolean": self.boolean, "check": self.check}  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def __getitem__(self, key: Any) -> np.ndarray:
        from xarray.core import indexing

        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read
        )

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        with failures(self.where.url, f"reading {self.path}"):
            try:
                values = self._read_unchecked(key)
            except Exception:
                if self.check is not None:  # a file replaced midway: say so, not why
                    check_unchanged(self.where, self.check)
                raise
            if self.check is not None:
                check_unchanged(self.where, self.check)
        return values.astype(bool) if self.boolean else values

    def _read_unchecked(self, key: tuple[Any, ...]) -> np.ndarray:
        if self._reader is None and self._array is None:
            layout = simple_layout(self.meta)
            if layout is not None:
                self._reader = ChunkReader(self.where, self.path, layout)
        if self._reader is not None:
            return self._reader.read(key)
        if self._array is None:
            import zarr

            self._array = zarr.open_array(self.where.zarr(read_only=True), path=self.path, mode="r")
        values = np.asarray(self._array[key])
        return values.astype(object) if values.dtype.kind in "TU" else values


def _dtype(data_type: Any) -> np.dtype[Any] | None:
    if data_type == "string":
        return np.dtype(object)
    try:
        return np.dtype(data_type) if isinstance(data_type, str) else None
    except TypeError:
        return None


def _nan_fill(value: Any, dtype: np.dtype[Any]) -> bool:
    """True for a float array whose ``_FillValue`` (base64 of a float) is NaN."""
    return dtype.kind == "f" and isinstance(value, str) and _nan_base64(value)


def _nan_base64(value: str) -> bool:
    try:
        raw = base64.b64decode(value)
        return bool(np.isnan(np.frombuffer(raw, f"<f{len(raw)}")[0]))
    except (ValueError, TypeError, IndexError):
        return False


def raw_time(meta: Mapping[str, Any]) -> bool:
    """True when the time array is one uncompressed little-endian chunk (write_cube's)."""
    grid = meta.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape", [0])
    keys = meta.get("chunk_key_encoding", {})
    return (
        meta.get("codecs") == _RAW_TIME_CODECS
        and meta.get("data_type") == "float64"
        and grid[0] >= meta["shape"][0]
        and keys.get("name") == "default"
        and keys.get("configuration", {}).get("separator", "/") == "/"
    )


def _label_index(dim: str, labels: tuple[str, ...]) -> tuple[xr.Variable, Any]:
    """A string dimension coordinate (Python ``str`` objects) and its index."""
    import pandas as pd

    values = np.array(labels, dtype=object)
    return xr.Variable(dim, values), xr.indexes.PandasIndex(pd.Index(values), dim)


def fast_cube(
    where: Store,
    group: str,
    meta: Mapping[str, Any],
    time: bytes | None,
    check: tuple[str, str, bytes] | None = None,
) -> xr.Dataset | None:
    """Build a lazy cube from its group's consolidated metadata alone, or None if unsure.

    ``group`` is the folder of the version read (the group, or a staged copy of it);
    ``check`` is passed to each :class:`LazyArray`.

    The indexes (``time``, ``kind``, ``plane``) are handed to xarray ready-made: building a
    default index per cube is most of what a plain ``xr.Dataset(...)`` would cost here.
    """
    import pandas as pd
    from xarray.core import indexing

    members = (meta.get(CONSOLIDATED) or {}).get("metadata", {})
    if time is None or not members or "time" not in members:
        return None
    coord_names = set()
    specs = {}
    for name, array in members.items():
        dtype = _dtype(array.get("data_type"))
        attrs = dict(array.get("attributes", {}))
        # xarray before 2026.9 stores a boolean array as int8 with the attribute dtype=bool.
        boolean = dtype == np.dtype(np.int8) and attrs.get("dtype") == "bool"
        if boolean:
            del attrs["dtype"]
        coord_names.update(str(attrs.pop("coordinates", "")).split())
        fill = attrs.pop("_FillValue", None)
        if (
            dtype is None
            or _CODED_ATTRS & attrs.keys()
            or _time_units(attrs.get("units"))
            or (fill is not None and not _nan_fill(fill, dtype))
            or not isinstance(array.get("dimension_names"), list)
        ):
            return None
        specs[name] = (tuple(array["dimension_names"]), array, attrs, boolean)
    dims = {d for spec in specs.values() for d in spec[0]}
    n_planes = int(specs.get("plane", ((), {"shape": [0]}))[1]["shape"][0])
    if specs.get("kind", ((), {"shape": [0]}))[1]["shape"] != [len(KINDS)] or not (
        0 < n_planes <= len(PLANES)
    ):
        return None
    times = np.frombuffer(time, "<f8").astype(np.float64)
    if times.shape != (int(specs["time"][1]["shape"][0]),):
        return None  # not this version's time index (rewritten meanwhile)
    kind, plane = _label_index("kind", KINDS), _label_index("plane", PLANES[:n_planes])
    coords: dict[str, Any] = {
        "time": xr.Variable("time", times, specs["time"][2]),
        "kind": kind[0],
        "plane": plane[0],
    }
    indexes = {
        "time": xr.indexes.PandasIndex(pd.Index(times), "time"),
        "kind": kind[1],
        "plane": plane[1],
    }
    data_vars: dict[str, Any] = {}
    for name, (var_dims, array, attrs, boolean) in specs.items():
        if name in coords:
            continue
        array_ = LazyArray(where, f"{group}/{name}", array, boolean, check)
        lazy = indexing.LazilyIndexedArray(array_)
        target = coords if name in coord_names or name in dims else data_vars
        target[name] = xr.Variable(var_dims, lazy, attrs)
    attrs = {k: v for k, v in meta.get("attributes", {}).items() if k != COMPLETE_ATTR}
    return xr.Dataset(data_vars, xr.Coordinates(coords, indexes), attrs)


def groups_metadata(where: Store, root: Mapping[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Each object group's metadata, from the root's consolidated metadata when finalised.

    A finalised root lists the complete groups only, and no write leaves it stale (every
    write first drops it); otherwise each group's ``zarr.json`` is read.
    """
    flat = (root.get(CONSOLIDATED) or {}).get("metadata")
    if not flat:
        return object_groups(where)
    groups: dict[str, dict[str, Any] | None] = {}
    members: dict[str, dict[str, Any]] = {}
    for path, node in flat.items():
        group, _, name = path.partition("/")
        if not name:
            groups[group] = node
        elif "/" not in name:
            members.setdefault(group, {})[name] = node
    for group, node in groups.items():
        if node is not None:
            block = {"kind": "inline", "must_understand": False, "metadata": members.get(group, {})}
            groups[group] = {**node, CONSOLIDATED: block}
    return groups


def open_group(where: Store, group: str, chunks: Any) -> xr.Dataset:
    """Open one group with xarray (lazily indexed with ``chunks=None``, else dask).

    ``group`` is the folder of the version read: the group, or a staged copy of it.
    """
    import zarr
    from xarray.backends import ZarrStore

    zgroup = zarr.open_group(where.zarr(read_only=True), path=group, mode="r")
    # The group's full URL (protocol included) names it for dask's tokens: a bare path of a
    # memory:// or s3:// store would be taken for a local file by older xarray.
    name = where.fs.unstrip_protocol(where.path(group))
    ds = xr.open_dataset(name, engine="zarr", store=ZarrStore(zgroup), chunks=chunks)
    ds.attrs.pop(COMPLETE_ATTR, None)
    if chunks is None:
        return ds
    return _eager_epoch_coords(ds, zgroup)


def _eager_epoch_coords(ds: xr.Dataset, zgroup: Any) -> xr.Dataset:
    """Hold the small per-epoch coordinates in memory, strings as Python ``str`` objects.

    They are a few bytes per epoch, read straight from Zarr (no dask compute, so a
    ``distributed`` client never sees it). In memory, ``ds.band == "g"``, ``groupby("band")``
    and ``.values.astype(str)`` work as on a cube fresh from :func:`~finkcube.build_cube`;
    the pixels stay lazy.
    """
    loaded = {}
    for name, coord in ds.coords.items():
        if name in ds.indexes or coord.chunks is None:
            if coord.dtype.kind == "T":  # numpy's StringDType: refuses .astype(str)
                loaded[name] = coord.variable.copy(data=coord.values.astype(object))
            continue
        values = np.asarray(zgroup[str(name)][...])
        if values.dtype.kind in "OTU":
            values = values.astype(object)
        loaded[name] = xr.Variable(coord.dims, values, coord.attrs, coord.encoding)
    return ds.assign_coords(loaded)
