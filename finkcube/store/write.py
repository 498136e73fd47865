"""Writing a store: create it, write and delete cubes, consolidate its metadata at the end."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
import xarray as xr

from finkcube.errors import StoreError, StoreRefusedError
from finkcube.names import (
    CUTOUT_VAR,
    KINDS,  # noqa: F401  (the examples use it)
    OBJECT_ID,
    PSF_VAR,
)
from finkcube.store.groupfiles import Blosc, check_attrs
from finkcube.store.layout import (
    COMPLETE_ATTR,
    CONSOLIDATED,
    LAYOUT_VERSION,
    STORE_ATTR,
    consolidated,
    group_name,
    marked_complete,
    object_groups,
    root_meta,
    store_meta,
)
from finkcube.store.location import META, Where, locate, upload

__all__ = ["check_store", "delete_cube", "finalize_store", "init_store", "write_cube"]

logger = logging.getLogger(__name__)

#: Raw bytes of canvas per chunk of ``cutout`` and ``psf``.
CHUNK_BYTES = 4 * 2**20


def _unfinalize(where: Where, meta: dict[str, Any]) -> None:
    """Drop the root's consolidated metadata before a change makes it stale (idempotent)."""
    if CONSOLIDATED in meta:
        logger.info("%s: dropping the root's consolidated metadata until finalize", where.url)
        meta = {k: v for k, v in meta.items() if k != CONSOLIDATED}
        where.write_json(meta, META)


def _target(where: Where, overwrite: bool) -> tuple[dict[str, Any] | None, bool]:
    """The root's metadata if a finkcube store is there, and whether anything is there.

    Raises StoreError for something other than a finkcube store unless ``overwrite``.
    """
    meta = store_meta(where)
    occupied = meta is not None or (
        where.fs.exists(where.root)
        and not (where.fs.isdir(where.root) and not where.fs.ls(where.root, detail=False))
    )
    if meta is None and occupied and not overwrite:
        raise StoreRefusedError(
            f"{where.url} exists and is not a finkcube store; pass --overwrite "
            "(overwrite=True) to replace it"
        )
    return meta, occupied


def check_store(
    store: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> bool:
    """Tell whether a finkcube store is at ``store``, refusing what may not be written to.

    Reads only: a build calls it before it sends a request, and creates the store
    (:func:`init_store`) only once it has something to write.

    Parameters
    ----------
    store : str or path
        A local path or an fsspec URL.
    storage_options : mapping, optional
        Passed to fsspec for URLs.
    overwrite : bool
        Whether whatever is there may be replaced.

    Returns
    -------
    bool
        True when a finkcube store is there; False when nothing (or an empty directory) is,
        or, with ``overwrite``, something that would be replaced.

    Raises
    ------
    StoreError
        When ``store`` holds something else and ``overwrite`` is false, or holds a store of
        a newer layout.

    Examples
    --------
    >>> check_store("memory://doc-check.zarr")
    False
    >>> init_store("memory://doc-check.zarr")
    >>> check_store("memory://doc-check.zarr")
    True
    """
    meta, _ = _target(locate(store, storage_options), overwrite)
    return meta is not None


def init_store(
    store: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> None:
    """Create a finkcube store, or reuse the finkcube store already there (resume).

    Parameters
    ----------
    store : str or path
        A local path or an fsspec URL (``s3://bucket/cubes.zarr``, ``memory://cubes``).
    storage_options : mapping, optional
        Passed to fsspec for URLs.
    overwrite : bool
        Delete whatever else is at ``store`` first. Without it, anything that is neither
        absent, an empty directory nor a finkcube store is refused.

    Raises
    ------
    StoreError
        When ``store`` holds something else, or a store of a newer layout.

    Examples
    --------
    >>> init_store("memory://doc-init.zarr")
    >>> init_store("memory://doc-init.zarr")  # a finkcube store is reused
    """
    where = locate(store, storage_options)
    meta, occupied = _target(where, overwrite)
    if meta is not None and not overwrite:
        _unfinalize(where, meta)
        return
    if occupied:
        logger.warning("%s: replacing what was there (overwrite)", where.url)
        where.fs.rm(where.root, recursive=True)
    # The root group's zarr.json, as zarr.create_group writes it (without importing zarr).
    if where.local:
        os.makedirs(where.root, exist_ok=True)
    root = {"attributes": {STORE_ATTR: LAYOUT_VERSION}, "zarr_format": 3, "node_type": "group"}
    where.write_json(root, META)


def _encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Chunks and codecs per variable (see the module docstring for the numbers)."""
    blosc = Blosc(cname="lz4", clevel=5, shuffle="noshuffle")
    encoding: dict[str, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        shape = tuple(var.shape)
        if name == "time":
            encoding[str(name)] = {"chunks": shape, "compressors": None}
        elif name in (CUTOUT_VAR, PSF_VAR):
            epoch = var.dtype.itemsize * int(np.prod(shape[1:]))
            steps = max(1, min(shape[0], CHUNK_BYTES // max(epoch, 1)))
            encoding[str(name)] = {"chunks": (steps, *shape[1:]), "compressors": (blosc,)}
        else:
            encoding[str(name)] = {"chunks": shape or None}
    return encoding


def write_cube(
    ds: xr.Dataset,
    store: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Write one cube as the group of its object, replacing any older one.

    A lazy (dask-backed) cube is computed first, as it may read from the group it replaces.
    Then the group is deleted, the dataset written, and one last write of the group's
    ``zarr.json`` adds its consolidated metadata and ``finkcube_complete``: an interrupted
    write never reads as complete. Different objects of one store may be written at once
    from threads or processes.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube (:func:`finkcube.cube.assemble_cube`); its ``diaObjectId`` names the group.
    store : str or path
        A finkcube store (:func:`init_store`).
    storage_options : mapping, optional
        Passed to fsspec for URLs.

    Raises
    ------
    StoreError
        When ``store`` is not a finkcube store.
    InvalidIdError
        When the cube has no valid ``diaObjectId`` attribute.
    InputError
        When an attribute holds NaN or infinity (nothing is written).

    Examples
    --------
    >>> from finkcube.cube.assemble import assemble_cube
    >>> from finkcube.service.decode import stamps_from_arrays
    >>> cut = stamps_from_arrays(5, {k: np.ones((30, 30), np.float32) for k in KINDS})
    >>> rec = {"r:diaSourceId": 5, "r:midpointMjdTai": 60000.5, "r:band": "g"}
    >>> init_store("memory://doc-write.zarr")
    >>> write_cube(assemble_cube(42, [rec], {5: cut}), "memory://doc-write.zarr")
    >>> from finkcube.store import list_objects
    >>> list_objects("memory://doc-write.zarr")
    [42]
    """
    group = group_name(ds.attrs.get(OBJECT_ID))
    check_attrs(ds)
    where = locate(store, storage_options)
    _unfinalize(where, root_meta(where))
    out = ds.drop_encoding()
    if any(var.chunks is not None for var in out.variables.values()):
        # A lazy cube may read from the very group it replaces: read it before deleting.
        out = out.compute()
    out.attrs = {k: v for k, v in ds.attrs.items() if k != COMPLETE_ATTR}
    encoding = _encoding(out)
    _remove(where, group)
    upload(where, group, out, encoding)  # encoded in memory, then put all at once
    names = [str(name) for name in out.variables]
    found = where.read_many(f"{group}/{name}/{META}" for name in names)
    if len(found) != len(names):
        raise StoreError(f"{where.url}: cube {group} lost arrays while being written")
    meta = where.read_json(group, META) or {}
    meta["attributes"] = {**meta.get("attributes", {}), COMPLETE_ATTR: True}
    meta[CONSOLIDATED] = consolidated(
        {name: orjson.loads(found[f"{group}/{name}/{META}"]) for name in names}
    )
    where.write_json(meta, group, META)
    logger.debug("%s: cube %s written", where.url, group)


def _remove(where: Where, group: str) -> None:
    path = where.path(group)
    if where.fs.exists(path):
        where.fs.rm(path, recursive=True)


def delete_cube(
    store: str | os.PathLike[str],
    object_id: int | str,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Delete an object's group, complete or not; nothing happens when there is none.

    Examples
    --------
    >>> from finkcube.cube.assemble import assemble_cube
    >>> from finkcube.service.decode import stamps_from_arrays
    >>> cut = stamps_from_arrays(5, {k: np.ones((30, 30), np.float32) for k in KINDS})
    >>> rec = {"r:diaSourceId": 5, "r:midpointMjdTai": 60000.5, "r:band": "g"}
    >>> init_store("memory://doc-delete.zarr")
    >>> write_cube(assemble_cube(7, [rec], {5: cut}), "memory://doc-delete.zarr")
    >>> delete_cube("memory://doc-delete.zarr", 7)
    >>> from finkcube.store import list_objects
    >>> list_objects("memory://doc-delete.zarr")
    []
    """
    group = group_name(object_id)
    where = locate(store, storage_options)
    _unfinalize(where, root_meta(where))
    _remove(where, group)


def finalize_store(
    store: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
) -> None:
    """Consolidate the metadata of the complete cubes at the root: call once, at the end.

    Afterwards plain ``xarray.open_zarr(store, group=ID)`` and
    ``xarray.open_datatree(store, engine="zarr")`` read the store without a warning, and
    do not see incomplete groups. Call it when no write is in flight (the builder does, at
    the end of a build or update); any later write or delete undoes it until the next call.
    The cost is one read per object (each group holds its own consolidated metadata).

    Examples
    --------
    >>> from finkcube.cube.assemble import assemble_cube
    >>> from finkcube.service.decode import stamps_from_arrays
    >>> cut = stamps_from_arrays(5, {k: np.ones((30, 30), np.float32) for k in KINDS})
    >>> rec = {"r:diaSourceId": 5, "r:midpointMjdTai": 60000.5, "r:band": "g"}
    >>> init_store("memory://doc-final.zarr")
    >>> write_cube(assemble_cube(8, [rec], {5: cut}), "memory://doc-final.zarr")
    >>> finalize_store("memory://doc-final.zarr")
    >>> xr.open_datatree("memory://doc-final.zarr", engine="zarr")["8"].cutout.dims
    ('time', 'kind', 'y', 'x', 'plane')
    """
    where = locate(store, storage_options)
    meta = root_meta(where)
    flat: dict[str, Any] = {}
    for group, group_meta in object_groups(where).items():
        if group_meta is None or not marked_complete(group_meta):
            logger.info("%s: incomplete cube %s left out of the consolidated metadata",
                        where.url, group)  # fmt: skip
            continue
        members = group_meta.get(CONSOLIDATED, {}).get("metadata")
        if not members:
            raise StoreError(f"{where.url}: cube {group} has no consolidated metadata")
        flat[group] = {**group_meta, CONSOLIDATED: consolidated({})}
        flat.update({f"{group}/{name}": member for name, member in members.items()})
    meta[CONSOLIDATED] = consolidated(flat)
    where.write_json(meta, META)
