"""Reading a store: which cubes it holds, and opening them lazily.

:func:`list_objects` and :func:`is_complete` read the groups' metadata only.
:func:`open_store` and :func:`open_cubes` build each cube from its group's consolidated
metadata and one read of its ``time`` index, the arrays being read on first access
straight from their chunk files (:mod:`finkcube.store.nodes`); a group they are unsure of is
opened with xarray. :func:`open_cube` builds its cube the same way, then makes the data
dask arrays in the stored chunks and reads the small per-epoch coordinates into memory,
several times faster than xarray's zarr backend opens a group.

Each reads the version of a cube its group's ``zarr.json`` describes, or, while a rewrite
is being promoted, the complete staged copy (:mod:`finkcube.store.versions`). Every read
of a cube's files is checked against that document afterwards: a cube rewritten while it
is read is opened again (up to :data:`~finkcube.store.versions.RETRIES` times), and a lazy
cube opened before a rewrite and read after it raises
:class:`~finkcube.store.versions.CubeChangedError` ("open it again"), never a mix.
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
from finkcube.store.nodes import fast_cube, groups_metadata, open_group, raw_time
from finkcube.store.versions import Version, check_unchanged, fingerprint, retrying, settle

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
        meta = loads_or_none(found)
        return marked_complete(meta) or (
            where.fs.exists(where.path(group)) and group in settle(where, {group: meta})
        )


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
        if not complete_only:
            return [int(g) for g in groups]
        return [int(g) for g in sorted(settle(where, groups), key=int)]


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
        versions = settle(where, groups)
    found = {}
    for group in groups:
        if group in versions:
            attrs = dict(versions[group].meta.get("attributes", {}))
            attrs.pop(COMPLETE_ATTR, None)
            found[int(group)] = attrs
    return found


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
    group = group_name(object_id)
    with failures(where.url, f"opening cube {object_id}"):
        return retrying(lambda: _open_version(where, group, chunks))


def _version(where: Store, group: str) -> Version:
    """The version a group reads as, or the error that says why there is none."""
    meta = where.read_json(group, META)
    found = settle(where, {group: meta}) if meta is None or not marked_complete(meta) else {}
    if group in found:
        return found[group]
    group, meta = checked_group(where, group)
    return Version(group, group, meta)


def _open_version(where: Store, group: str, chunks: Any) -> xr.Dataset:
    """:func:`open_cube` once: CubeChangedError when the cube changed while being opened."""
    version = _version(where, group)
    if chunks is None:
        fast = _lazy_cubes(where, {group: version}, fallback=False).get(group)
        if fast is not None:
            return _dask_backed(fast, version.meta)
    ds = open_group(where, version.prefix, {} if chunks is None else chunks)
    check_unchanged(where, version.check)
    return ds


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
        return retrying(lambda: _open_tree(where, chunks))


def _open_tree(where: Store, chunks: Any) -> xr.DataTree:
    """:func:`open_store` once: CubeChangedError when a cube changed while being opened."""
    root = root_meta(where)
    groups = groups_metadata(where, root) if chunks is None else object_groups(where)
    complete = settle(where, groups)
    incomplete = [g for g in groups if g not in complete]
    if incomplete:
        logger.info("%s: %d incomplete cube(s) left out: %s", where.url, len(incomplete),
                    ", ".join(incomplete))  # fmt: skip
    return _tree(where, root, complete, chunks)


def _lazy_cubes(
    where: Store, complete: Mapping[str, Version], *, fallback: bool = True
) -> dict[str, xr.Dataset]:
    """Lazy cubes of complete versions, from their metadata and one read of each time index.

    The groups' ``zarr.json`` are read again after the time indexes: CubeChangedError when
    one changed meanwhile. A group :func:`fast_cube` is unsure of is opened by xarray, or
    left out without ``fallback``.
    """
    keys = {
        g: f"{v.prefix}/time/c/0"
        for g, v in complete.items()
        if raw_time((v.meta.get(CONSOLIDATED) or {}).get("metadata", {}).get("time", {}))
    }
    times = where.read_many(keys.values())
    heads = where.read_many(v.head for v in complete.values())
    for version in complete.values():
        if fingerprint(loads_or_none(heads.get(version.head))) != fingerprint(version.meta):
            check_unchanged(where, version.check)  # raises, naming the group
    nodes = {}
    for group, version in complete.items():
        fast = fast_cube(
            where, version.prefix, version.meta, times.get(keys.get(group, "")), version.check
        )
        if fast is not None:
            nodes[group] = fast
        elif fallback:
            nodes[group] = open_group(where, version.prefix, None)
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

    def once() -> dict[int, xr.Dataset]:
        root = root_meta(where)
        # A finalised root lists the complete cubes; any other is read from its group.
        finalised = (root.get(CONSOLIDATED) or {}).get("metadata")
        groups = groups_metadata(where, root) if finalised else {}
        unlisted = [g for g in wanted if groups.get(g) is None]
        raw = where.read_many(f"{g}/{META}" for g in unlisted)
        groups.update({g: loads_or_none(raw.get(f"{g}/{META}")) for g in unlisted})
        complete = settle(where, {g: groups.get(g) for g in wanted})
        for g in wanted:
            if g not in complete:
                complete_meta(where, g, groups.get(g))  # raises, saying why
        return {int(g): node for g, node in _lazy_cubes(where, complete).items()}

    with failures(where.url, "opening cubes"):
        return retrying(once)


def _tree(
    where: Store, root: Mapping[str, Any], complete: Mapping[str, Version], chunks: Any
) -> xr.DataTree:
    """The tree of the complete groups' cubes (see :func:`open_store`)."""
    if chunks is None:
        nodes = _lazy_cubes(where, complete)
    else:
        nodes = {group: open_group(where, v.prefix, chunks) for group, v in complete.items()}
        for version in complete.values():
            check_unchanged(where, version.check)
    # Attached through ``children``: DataTree.from_dict would copy every node twice more.
    tree = xr.DataTree(xr.Dataset(attrs=dict(root.get("attributes", {}))))
    tree.children = {group: xr.DataTree(node) for group, node in nodes.items()}
    return tree
