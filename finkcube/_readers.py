"""Reading a store: which cubes it holds, and opening them lazily.

:func:`list_objects` and :func:`is_complete` read the groups' metadata only.
:func:`open_cube` opens one group with xarray (dask-backed, small per-epoch coordinates
held in memory). :func:`open_store` opens every complete group; with ``chunks=None`` it
builds each node from the group's consolidated metadata and one read of its ``time``
index, the arrays being read on first access (:class:`LazyArray`), and falls back to
xarray for a group it is unsure of. All four are re-exported by :mod:`finkcube.store`.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from finkcube._layout import (
    COMPLETE_ATTR,
    CONSOLIDATED,
    checked_group,
    group_name,
    marked_complete,
    object_groups,
    root_meta,
)
from finkcube._types import KINDS, PLANES
from finkcube._zarrio import META, Where, locate

__all__ = ["LazyArray", "is_complete", "list_objects", "open_cube", "open_group", "open_store"]

# Logged under the public module's name, where users set the store's log level.
logger = logging.getLogger("finkcube.store")

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


def is_complete(
    store: str | os.PathLike[str],
    object_id: int | str,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> bool:
    """Tell whether the object's cube was completely written.

    Examples
    --------
    >>> from finkcube.store import init_store
    >>> init_store("memory://doc-complete.zarr")
    >>> is_complete("memory://doc-complete.zarr", 12)
    False
    """
    return marked_complete(locate(store, storage_options).read_json(group_name(object_id), META))


def list_objects(
    store: str | os.PathLike[str],
    *,
    complete_only: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> list[int]:
    """Return the diaObjectIds of the store's cubes, ascending.

    Parameters
    ----------
    complete_only : bool
        Leave out cubes whose write did not finish (default).

    Raises
    ------
    StoreError
        When ``store`` is not a finkcube store.
    """
    where = locate(store, storage_options)
    root_meta(where)
    groups = object_groups(where)
    return [int(g) for g, meta in groups.items() if not complete_only or marked_complete(meta)]


def open_group(where: Where, group: str, chunks: Any) -> xr.Dataset:
    """Open one group with xarray (lazily indexed with ``chunks=None``, else dask)."""
    import zarr
    from xarray.backends import ZarrStore

    zgroup = zarr.open_group(where.zarr(read_only=True), path=group, mode="r")
    ds = xr.open_dataset(where.path(group), engine="zarr", store=ZarrStore(zgroup), chunks=chunks)
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


def open_cube(
    store: str | os.PathLike[str],
    object_id: int | str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    chunks: Any = None,
) -> xr.Dataset:
    """Open one object's cube lazily (dask-backed); nothing is read but metadata and indexes.

    Parameters
    ----------
    store : str or path
        A finkcube store.
    object_id : int or str
        The diaObjectId.
    storage_options : mapping, optional
        Passed to fsspec for URLs.
    chunks : optional
        Dask chunks, as for :func:`xarray.open_zarr` (default: the stored chunks).

    Returns
    -------
    xarray.Dataset
        The cube as written (ids int64, ``band`` str).

    Raises
    ------
    NotFoundError
        When the store has no cube of that object.
    IncompleteCubeError
        When its write never finished.
    StoreError
        When ``store`` is not a finkcube store.

    Examples
    --------
    >>> from finkcube.cube import assemble_cube
    >>> from finkcube.decode import stamps_from_arrays
    >>> from finkcube.store import init_store, write_cube
    >>> cut = stamps_from_arrays(5, {k: np.ones((30, 30), np.float32) for k in KINDS})
    >>> rec = {"r:diaSourceId": 5, "r:midpointMjdTai": 60000.5, "r:band": "g"}
    >>> init_store("memory://doc-open.zarr")
    >>> write_cube(assemble_cube(42, [rec], {5: cut}), "memory://doc-open.zarr")
    >>> cube = open_cube("memory://doc-open.zarr", 42)
    >>> cube.cutout.shape, cube.diaSourceId.values.tolist()
    ((1, 3, 30, 30, 1), [5])
    """
    where = locate(store, storage_options)
    group, _ = checked_group(where, object_id)
    return open_group(where, group, {} if chunks is None else chunks)


class LazyArray(xr.backends.BackendArray):
    """One Zarr array, opened on first read (xarray's backend-array protocol)."""

    def __init__(self, where: Where, path: str, shape: tuple[int, ...], dtype: Any) -> None:
        self.where, self.path, self.shape, self.dtype = where, path, shape, dtype
        self._array: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"where": self.where, "path": self.path, "shape": self.shape, "dtype": self.dtype}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def __getitem__(self, key: Any) -> np.ndarray:
        from xarray.core import indexing

        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read
        )

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        if self._array is None:
            import zarr

            self._array = zarr.open_array(self.where.zarr(read_only=True), path=self.path, mode="r")
        return np.asarray(self._array[key])


def _dtype(data_type: Any) -> np.dtype[Any] | None:
    if data_type == "string":
        return np.dtypes.StringDType()
    try:
        return np.dtype(data_type) if isinstance(data_type, str) else None
    except TypeError:
        return None


def _nan_fill(value: Any, dtype: np.dtype[Any]) -> bool:
    """True for a float array whose ``_FillValue`` (base64 of a float) is NaN."""
    try:
        raw = base64.b64decode(value)
        return dtype.kind == "f" and bool(np.isnan(np.frombuffer(raw, f"<f{len(raw)}")[0]))
    except (ValueError, TypeError, IndexError):
        return False


def _raw_time(meta: Mapping[str, Any]) -> bool:
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


def _fast_cube(
    where: Where, group: str, meta: Mapping[str, Any], time: bytes | None
) -> xr.Dataset | None:
    """Build a lazy cube from its group's consolidated metadata alone, or None if unsure."""
    from xarray.core import indexing

    members = meta.get(CONSOLIDATED, {}).get("metadata", {})
    if time is None or not members or "time" not in members:
        return None
    coord_names = set()
    specs = {}
    for name, array in members.items():
        dtype = _dtype(array.get("data_type"))
        attrs = dict(array.get("attributes", {}))
        coord_names.update(str(attrs.pop("coordinates", "")).split())
        fill = attrs.pop("_FillValue", None)
        if (
            dtype is None
            or _CODED_ATTRS & attrs.keys()
            or _time_units(attrs.get("units"))
            or (fill is not None and not _nan_fill(fill, dtype))
        ):
            return None
        specs[name] = (tuple(array["dimension_names"]), tuple(array["shape"]), dtype, attrs)
    dims = {d for spec in specs.values() for d in spec[0]}
    n_planes = specs.get("plane", ((), (0,)))[1][0]
    if specs.get("kind", ((), (0,)))[1] != (len(KINDS),) or not 0 < n_planes <= len(PLANES):
        return None
    coords: dict[str, Any] = {
        "kind": ("kind", np.array(KINDS, dtype=np.dtypes.StringDType())),
        "plane": ("plane", np.array(PLANES[:n_planes], dtype=np.dtypes.StringDType())),
        "time": ("time", np.frombuffer(time, "<f8").astype(np.float64), specs["time"][3]),
    }
    data_vars: dict[str, Any] = {}
    for name, (var_dims, shape, dtype, attrs) in specs.items():
        if name in coords:
            continue
        lazy = indexing.LazilyIndexedArray(LazyArray(where, f"{group}/{name}", shape, dtype))
        target = coords if name in coord_names or name in dims else data_vars
        target[name] = xr.Variable(var_dims, lazy, attrs)
    attrs = {k: v for k, v in meta.get("attributes", {}).items() if k != COMPLETE_ATTR}
    return xr.Dataset(data_vars, coords, attrs)


def open_store(
    store: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    chunks: Any = None,
) -> xr.DataTree:
    """Open every complete cube of a store lazily, one node per object.

    Incomplete cubes are left out (logged). With ``chunks=None`` the variables are lazily
    indexed arrays read on access, and opening costs one small read per object; pass
    ``chunks={}`` (or dask chunks) for dask-backed nodes like :func:`open_cube`'s.

    Parameters
    ----------
    store : str or path
        A finkcube store.
    storage_options : mapping, optional
        Passed to fsspec for URLs.
    chunks : optional
        None (lazy, not dask) or dask chunks.

    Returns
    -------
    xarray.DataTree
        The root holds the store's attributes; node ``"ID"`` the cube of diaObjectId ID.

    Raises
    ------
    StoreError
        When ``store`` is not a finkcube store.

    Examples
    --------
    >>> from finkcube.cube import assemble_cube
    >>> from finkcube.decode import stamps_from_arrays
    >>> from finkcube.store import init_store, write_cube
    >>> cut = stamps_from_arrays(5, {k: np.ones((30, 30), np.float32) for k in KINDS})
    >>> rec = {"r:diaSourceId": 5, "r:midpointMjdTai": 60000.5, "r:band": "g"}
    >>> init_store("memory://doc-tree.zarr")
    >>> write_cube(assemble_cube(42, [rec], {5: cut}), "memory://doc-tree.zarr")
    >>> tree = open_store("memory://doc-tree.zarr")
    >>> list(tree.children), tree["42"].cutout.dims
    (['42'], ('time', 'kind', 'y', 'x', 'plane'))
    """
    where = locate(store, storage_options)
    root = root_meta(where)
    groups = object_groups(where)
    incomplete = [g for g, meta in groups.items() if not marked_complete(meta)]
    if incomplete:
        logger.info("%s: %d incomplete cube(s) left out: %s", where.url, len(incomplete),
                    ", ".join(incomplete))  # fmt: skip
    complete = {g: meta for g, meta in groups.items() if g not in incomplete and meta}
    nodes: dict[str, xr.Dataset] = {}
    if chunks is None:
        times = where.read_many(
            f"{g}/time/c/0"
            for g, meta in complete.items()
            if _raw_time(meta.get(CONSOLIDATED, {}).get("metadata", {}).get("time", {}))
        )
        for group, meta in complete.items():
            fast = _fast_cube(where, group, meta, times.get(f"{group}/time/c/0"))
            nodes[group] = fast if fast is not None else open_group(where, group, None)
    else:
        nodes = {group: open_group(where, group, chunks) for group in complete}
    attrs = {k: v for k, v in root.get("attributes", {}).items()}
    return xr.DataTree.from_dict({"/": xr.Dataset(attrs=attrs), **nodes})
