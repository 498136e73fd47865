"""Reading a store: which cubes it holds, and opening them lazily.

:func:`list_objects` and :func:`is_complete` read the groups' metadata only.
:func:`open_store` and :func:`open_cubes` build each cube from its group's consolidated
metadata and one read of its ``time`` index, the arrays being read on first access
straight from their chunk files (:mod:`finkcube.store.nodes`); a group they are unsure of is
opened with xarray. :func:`open_cube` builds its cube the same way, then makes the data
dask arrays in the stored chunks and reads the small per-epoch coordinates into memory,
several times faster than xarray's zarr backend opens a group.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from finkcube.store.failures import failures
from finkcube.store.layout import (
    COMPLETE_ATTR,
    CONSOLIDATED,
    checked_group,
    complete_meta,
    group_name,
    loads_or_none,
    marked_complete,
    object_groups,
    root_meta,
)
from finkcube.store.location import META, Store, StoreLike, locate
from finkcube.store.nodes import fast_cube, groups_metadata, raw_time

__all__ = ["is_complete", "list_objects", "open_cube", "open_cubes", "open_group", "open_store"]

# Logged under the public module's name, where users set the store's log level.
logger = logging.getLogger("finkcube.store.write")


def is_complete(
    store: StoreLike,
    object_id: int | str,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> bool:
    """Tell whether the object's cube was completely written.

    Examples
    --------
    >>> from finkcube.store.write import init_store
    >>> init_store("memory://doc-complete.zarr")
    >>> is_complete("memory://doc-complete.zarr", 12)
    False
    """
    group = group_name(object_id)
    where = locate(store, storage_options)
    with failures(where.url, f"reading cube {group}"):
        found = where.read_many([f"{group}/{META}"]).get(f"{group}/{META}")
    # A document cut short reads as an interrupted write, as in list_objects.
    return marked_complete(loads_or_none(found))


def list_objects(
    store: StoreLike,
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
    with failures(where.url, "listing the cubes"):
        root_meta(where)
        groups = object_groups(where)
    return [int(g) for g, meta in groups.items() if not complete_only or marked_complete(meta)]


def cube_attributes(
    store: StoreLike,
    object_ids: Iterable[int | str] | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[int, dict[str, Any]]:
    """Return the attributes of the store's complete cubes (how each was built), by id.

    Reads each group's metadata document only, no array: the cheap way to learn the
    ``planes``, ``size`` or ``api_url`` of many cubes.

    Parameters
    ----------
    object_ids : iterable, optional
        Only these objects (those without a complete cube are left out); default: all.

    Raises
    ------
    StoreError
        When ``store`` is not a finkcube store.

    Examples
    --------
    >>> import numpy as np
    >>> from finkcube.names import KINDS
    >>> from finkcube.cube import assemble_cube
    >>> from finkcube.service.decode import stamps_from_arrays
    >>> from finkcube.store import init_store, write_cube
    >>> cut = stamps_from_arrays(5, {k: np.ones((30, 30), np.float32) for k in KINDS})
    >>> rec = {"r:diaSourceId": 5, "r:midpointMjdTai": 60000.5, "r:band": "g"}
    >>> init_store("memory://doc-attrs.zarr")
    >>> write_cube(assemble_cube(42, [rec], {5: cut}, size=40), "memory://doc-attrs.zarr")
    >>> cube_attributes("memory://doc-attrs.zarr")[42]["size"]
    40
    """
    where = locate(store, storage_options)
    with failures(where.url, "reading the cubes' attributes"):
        root_meta(where)
        if object_ids is None:
            groups = object_groups(where)
        else:
            names = [group_name(oid) for oid in object_ids]
            raw = where.read_many(f"{name}/{META}" for name in names)
            groups = {name: loads_or_none(raw.get(f"{name}/{META}")) for name in names}
    found = {}
    for group, meta in groups.items():
        if marked_complete(meta):
            attrs = dict(meta.get("attributes", {}))  # type: ignore[union-attr]
            attrs.pop(COMPLETE_ATTR, None)
            found[int(group)] = attrs
    return found


def open_group(where: Store, group: str, chunks: Any) -> xr.Dataset:
    """Open one group with xarray (lazily indexed with ``chunks=None``, else dask)."""
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


def open_cube(
    store: StoreLike,
    object_id: int | str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    chunks: Any = None,
) -> xr.Dataset:
    """Open one object's cube lazily (dask-backed): only metadata, indexes and the small
    per-epoch coordinates are read.

    Parameters
    ----------
    store : str, path or Store
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
    >>> import numpy as np
    >>> from finkcube.names import KINDS
    >>> from finkcube.cube.assemble import assemble_cube
    >>> from finkcube.service.decode import stamps_from_arrays
    >>> from finkcube.store.write import init_store, write_cube
    >>> cut = stamps_from_arrays(5, {k: np.ones((30, 30), np.float32) for k in KINDS})
    >>> rec = {"r:diaSourceId": 5, "r:midpointMjdTai": 60000.5, "r:band": "g"}
    >>> init_store("memory://doc-open.zarr")
    >>> write_cube(assemble_cube(42, [rec], {5: cut}), "memory://doc-open.zarr")
    >>> cube = open_cube("memory://doc-open.zarr", 42)
    >>> cube.cutout.shape, cube.diaSourceId.values.tolist()
    ((1, 3, 30, 30, 1), [5])
    """
    where = locate(store, storage_options)
    with failures(where.url, f"opening cube {object_id}"):
        group, meta = checked_group(where, object_id)
        if chunks is None:
            fast = _lazy_cubes(where, {group: meta}, fallback=False).get(group)
            if fast is not None:
                return _dask_backed(fast, meta)
        return open_group(where, group, {} if chunks is None else chunks)


def _dask_backed(ds: xr.Dataset, meta: Mapping[str, Any]) -> xr.Dataset:
    """A lazy node as :func:`open_cube` gives it: data as dask in the stored chunks, the small
    per-epoch coordinates read into memory (straight from their chunk files, not by dask)."""
    members = (meta.get(CONSOLIDATED) or {}).get("metadata", {})
    loaded, chunked = {}, {}
    for name, var in ds.variables.items():
        if name in ds.indexes:
            continue
        if name in ds.coords:
            loaded[name] = var.copy(data=np.asarray(var.values))
        else:
            grid = members[name]["chunk_grid"]["configuration"]["chunk_shape"]
            chunked[name] = var.chunk(dict(zip(var.dims, grid, strict=True)))
    return ds.assign_coords(loaded).assign(chunked)


def open_store(
    store: StoreLike,
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
    store : str, path or Store
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
    >>> import numpy as np
    >>> from finkcube.names import KINDS
    >>> from finkcube.cube.assemble import assemble_cube
    >>> from finkcube.service.decode import stamps_from_arrays
    >>> from finkcube.store.write import init_store, write_cube
    >>> cut = stamps_from_arrays(5, {k: np.ones((30, 30), np.float32) for k in KINDS})
    >>> rec = {"r:diaSourceId": 5, "r:midpointMjdTai": 60000.5, "r:band": "g"}
    >>> init_store("memory://doc-tree.zarr")
    >>> write_cube(assemble_cube(42, [rec], {5: cut}), "memory://doc-tree.zarr")
    >>> tree = open_store("memory://doc-tree.zarr")
    >>> list(tree.children), tree["42"].cutout.dims
    (['42'], ('time', 'kind', 'y', 'x', 'plane'))
    """
    where = locate(store, storage_options)
    with failures(where.url, "opening the store"):
        root = root_meta(where)
        groups = groups_metadata(where, root) if chunks is None else object_groups(where)
        incomplete = [g for g, meta in groups.items() if not marked_complete(meta)]
        if incomplete:
            logger.info("%s: %d incomplete cube(s) left out: %s", where.url, len(incomplete),
                        ", ".join(incomplete))  # fmt: skip
        complete = {g: meta for g, meta in groups.items() if g not in incomplete and meta}
        return _tree(where, root, complete, chunks)


def _lazy_cubes(
    where: Store, complete: Mapping[str, Any], *, fallback: bool = True
) -> dict[str, xr.Dataset]:
    """Lazy cubes of complete groups, from their metadata and one read of each time index.

    A group :func:`fast_cube` is unsure of is opened by xarray, or left out without
    ``fallback``.
    """
    times = where.read_many(
        f"{g}/time/c/0"
        for g, meta in complete.items()
        if raw_time((meta.get(CONSOLIDATED) or {}).get("metadata", {}).get("time", {}))
    )
    nodes = {}
    for group, meta in complete.items():
        fast = fast_cube(where, group, meta, times.get(f"{group}/time/c/0"))
        if fast is not None:
            nodes[group] = fast
        elif fallback:
            nodes[group] = open_group(where, group, None)
    return nodes


def open_cubes(
    store: StoreLike,
    object_ids: Iterable[int | str],
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[int, xr.Dataset]:
    """Open many cubes lazily at once: the nodes of :func:`open_store`, for chosen objects.

    Each cube is built from metadata alone and its arrays are read on access, straight
    from their chunk files (no dask): the way to hold many cubes open, as
    :class:`~finkcube.CubeDataset` does. Each object is checked as :func:`open_cube` does.

    Raises
    ------
    NotFoundError, IncompleteCubeError
        When an object has no cube in the store, or an incomplete one.
    StoreError
        When ``store`` is not a finkcube store.
    """
    where = locate(store, storage_options)
    wanted = [group_name(oid) for oid in object_ids]
    with failures(where.url, "opening cubes"):
        root = root_meta(where)
        # A finalised root lists the complete cubes; any other is read from its group.
        finalised = (root.get(CONSOLIDATED) or {}).get("metadata")
        groups = groups_metadata(where, root) if finalised else {}
        unlisted = [g for g in wanted if groups.get(g) is None]
        raw = where.read_many(f"{g}/{META}" for g in unlisted)
        groups.update({g: loads_or_none(raw.get(f"{g}/{META}")) for g in unlisted})
        complete = {g: complete_meta(where, g, groups.get(g)) for g in wanted}
        return {int(g): node for g, node in _lazy_cubes(where, complete).items()}


def _tree(
    where: Store, root: Mapping[str, Any], complete: Mapping[str, Any], chunks: Any
) -> xr.DataTree:
    """The tree of the complete groups' cubes (see :func:`open_store`)."""
    if chunks is None:
        nodes = _lazy_cubes(where, complete)
    else:
        nodes = {group: open_group(where, group, chunks) for group in complete}
    # Attached through ``children``: DataTree.from_dict would copy every node twice more.
    tree = xr.DataTree(xr.Dataset(attrs=dict(root.get("attributes", {}))))
    tree.children = {group: xr.DataTree(node) for group, node in nodes.items()}
    return tree
