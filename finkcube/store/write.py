"""Writing a store: create it, write and delete cubes, and write its catalog at the end.

Every document and chunk is produced by xarray and zarr-python
(:mod:`finkcube.store.staging`) and uploaded here in the order that keeps a store readable
at every instant: a cube's group ``zarr.json``, which carries the complete mark, the
group's consolidated metadata and its catalog row, goes last; the root's documents are
replaced whole. The root's metadata is never consolidated: each group holds its own, so
that plain xarray opens one cube at the same cost in a store of any size.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np  # noqa: F401  (the examples use it)
import xarray as xr

from finkcube._version import __version__
from finkcube.errors import StoreRefusedError
from finkcube.names import KINDS, OBJECT_ID  # noqa: F401  (KINDS: the examples use it)
from finkcube.store.catalog import build_catalog, cube_row, read_catalog, write_catalog
from finkcube.store.encoding import check_attrs
from finkcube.store.failures import failures
from finkcube.store.layout import (
    CATALOG_ATTR,
    COMPLETE_ATTR,
    CONSOLIDATED,
    CURRENT,
    HIDDEN_ATTRS,
    LAYOUT_VERSION,
    STALE,
    STORE_ATTR,
    SUMMARY_ATTR,
    catalog_current,
    group_name,
    root_meta,
    store_meta,
)
from finkcube.store.location import META, Store, StoreLike, locate
from finkcube.store.put import put_cube
from finkcube.store.staging import root_document
from finkcube.store.versions import STAGING, delete_versions, repair

__all__ = [
    "check_store",
    "delete_cube",
    "finalize_store",
    "init_store",
    "repair_store",
    "write_cube",
]

logger = logging.getLogger(__name__)


def _unfinalize(where: Store, meta: dict[str, Any]) -> None:
    """Mark the catalog stale before a change makes it so (idempotent: one write per run).

    A root consolidated by an older finkcube loses its consolidated metadata too.
    """
    attrs = dict(meta.get("attributes", {}))
    if CONSOLIDATED in meta or attrs.get(CATALOG_ATTR) == CURRENT:
        logger.info("%s: the catalog is stale until finalize", where.url)
        where.replace(META, root_document({**attrs, CATALOG_ATTR: STALE}))


def _leftover(name: str) -> bool:
    """Whether a root entry is finkcube's own, left by a store creation cut short."""
    return name == STAGING or (name.startswith(f"{META}.") and name.endswith(".partial"))


def _target(where: Store, overwrite: bool) -> tuple[dict[str, Any] | None, bool]:
    """The root's metadata if a finkcube store is there, and whether anything is there.

    A folder holding only what a creation killed midway leaves (a root ``zarr.json`` written
    aside, not yet renamed) counts as empty: the same command then resumes. Raises
    StoreRefusedError for something other than a finkcube store unless ``overwrite``.
    """
    where.refuse_unusable()
    meta = store_meta(where)
    occupied = meta is not None or (
        where.exists() and not (where.is_folder() and all(map(_leftover, where.names_in(""))))
    )
    if meta is None and occupied and not overwrite:
        raise StoreRefusedError(
            f"{where.url} exists and is not a finkcube store; pass --overwrite "
            "(overwrite=True) to replace it"
        )
    return meta, occupied


def check_store(
    store: StoreLike,
    *,
    storage_options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> bool:
    """Tell whether a finkcube store is at ``store``, refusing what may not be written to.

    Reads only: a build calls it before it sends a request, and creates the store
    (:func:`init_store`) only once it has something to write.

    Parameters
    ----------
    store : str, path or Store
        A local path, an fsspec URL, or a store located by :func:`~finkcube.store.locate`.
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
    StoreRefusedError
        When ``store`` holds something else and ``overwrite`` is false, holds a store of a
        newer layout, or is a local path that can never be a store (under a regular file or
        a broken symbolic link, in a folder that is not writable).
    StoreError
        When the store cannot be read.

    Examples
    --------
    >>> check_store("memory://doc-check.zarr")
    False
    >>> init_store("memory://doc-check.zarr")
    >>> check_store("memory://doc-check.zarr")
    True
    """
    where = locate(store, storage_options)
    with failures(where.url, "checking the store"):
        meta, _ = _target(where, overwrite)
    return meta is not None


def init_store(
    store: StoreLike,
    *,
    storage_options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> None:
    """Create a finkcube store, or reuse the finkcube store already there (resume).

    The root group is written as ``zarr.create_group`` writes it, with the layout version
    in its ``finkcube_store`` attribute.

    Parameters
    ----------
    store : str, path or Store
        A local path or an fsspec URL (``s3://bucket/cubes.zarr``, ``memory://cubes``), or a
        located store.
    storage_options : mapping, optional
        Passed to fsspec for URLs.
    overwrite : bool
        Delete whatever else is at ``store`` first. Without it, anything that is neither
        absent, an empty directory nor a finkcube store is refused.

    Raises
    ------
    StoreRefusedError
        When ``store`` holds something else, or a store of a newer layout.
    StoreError
        When the store cannot be read or written.

    Examples
    --------
    >>> init_store("memory://doc-init.zarr")
    >>> init_store("memory://doc-init.zarr")  # a finkcube store is reused
    """
    where = locate(store, storage_options)
    with failures(where.url, "creating the store"):
        meta, occupied = _target(where, overwrite)
        if meta is not None and not overwrite:
            _unfinalize(where, meta)
            repair(where)
            return
        if occupied:
            logger.warning("%s: replacing what was there (overwrite)", where.url)
            if meta is not None:  # each cube's zarr.json first: readers see it go, not NaN
                where.remove_files(f"{name}/{META}" for name in where.children())
            where.clear()
        elif where.local and os.path.isdir(where.root):
            for name in where.names_in(""):  # what a creation cut short left
                if name == STAGING:
                    where.remove(name)
                else:
                    where.remove_files([name])
        where.replace(META, root_document({STORE_ATTR: LAYOUT_VERSION}))


def write_cube(
    ds: xr.Dataset,
    store: StoreLike,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Write one cube as the group of its object, replacing any older one.

    The store's catalog is marked stale first (until :func:`finalize_store`). xarray
    writes the cube with its chunks and codecs (:mod:`finkcube.store.encoding`) and zarr
    consolidates the group's metadata: in memory, then uploaded in one batch, or, for a
    large cube, a chunk at a time into a staged copy in the store (:mod:`finkcube.store.put`;
    a lazy cube is then computed a chunk at a time as it is written). The group's
    ``zarr.json``, which carries ``finkcube_complete``, the consolidated metadata and the
    cube's catalog row (``finkcube_summary``), lands last: an interrupted write never reads
    as complete. An existing cube is replaced through a staged copy
    (:mod:`finkcube.store.versions`): a crash at any point leaves it at its old or its new
    version, and readers never see a mix. Different
    objects of one store may be written at once from threads or processes; two writers of
    one object leave one of their versions (the last to finish).

    Parameters
    ----------
    ds : xarray.Dataset
        A cube (:func:`finkcube.cube.assemble_cube`); its ``diaObjectId`` names the group.
    store : str, path or Store
        A finkcube store (:func:`init_store`).
    storage_options : mapping, optional
        Passed to fsspec for URLs.

    Raises
    ------
    StoreRefusedError
        When ``store`` is not a finkcube store.
    InvalidIdError
        When the cube has no valid ``diaObjectId`` attribute.
    InputError
        When an attribute holds NaN or infinity (nothing is written).
    StoreError
        When the store fails, or files of the cube did not land (nothing reads as complete).

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
    with failures(where.url, f"writing cube {group}"):
        _unfinalize(where, root_meta(where))
        out = ds.drop_encoding()
        # The complete mark is in the group's zarr.json only, and that goes last, with the
        # cube's catalog row.
        out.attrs = {k: v for k, v in ds.attrs.items() if k not in HIDDEN_ATTRS}
        out.attrs[COMPLETE_ATTR] = True
        out.attrs[SUMMARY_ATTR] = cube_row(out)
        put_cube(where, group, out)
    logger.debug("%s: cube %s written", where.url, group)


def delete_cube(
    store: StoreLike,
    object_id: int | str,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Delete an object's group, complete or not, and any staged copy of it; nothing
    happens when there is none. Its ``zarr.json`` goes first: a reader sees it gone. The
    store's catalog is marked stale first (until :func:`finalize_store`).

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
    with failures(where.url, f"deleting cube {group}"):
        _unfinalize(where, root_meta(where))
        delete_versions(where, group)


def finalize_store(
    store: StoreLike,
    *,
    storage_options: Mapping[str, Any] | None = None,
    rebuild: bool = False,
) -> None:
    """Write the store's catalog, rebuilt from its groups: call once, at the end.

    Puts right what crashed writes left (:func:`repair_store`), then, unless the catalog is
    current (no write or delete since it was made, and it lists the groups there), rebuilds
    it from the groups' ``zarr.json`` (each holds its cube's row) and writes it, and marks
    it current in the root's attributes. Call it when no write is in flight (the builder
    does, at the end of a build, update or ingest); any later write or delete marks the
    catalog stale until the next call. Incomplete groups are left out of the catalog.

    The root's metadata is not consolidated (an older finkcube's consolidation is dropped):
    plain ``xarray.open_zarr(f"{store}/{ID}")`` opens one cube from its group's own
    consolidated metadata, at the same cost whatever the number of objects.

    Parameters
    ----------
    store : str, path or Store
        A finkcube store.
    storage_options : mapping, optional
        Passed to fsspec for URLs.
    rebuild : bool
        Rebuild and write the catalog even when it is current (``finkcube info --repair``).

    Examples
    --------
    >>> from finkcube.cube.assemble import assemble_cube
    >>> from finkcube.service.decode import stamps_from_arrays
    >>> cut = stamps_from_arrays(5, {k: np.ones((30, 30), np.float32) for k in KINDS})
    >>> rec = {"r:diaSourceId": 5, "r:midpointMjdTai": 60000.5, "r:band": "g"}
    >>> init_store("memory://doc-final.zarr")
    >>> write_cube(assemble_cube(8, [rec], {5: cut}), "memory://doc-final.zarr")
    >>> finalize_store("memory://doc-final.zarr")
    >>> xr.open_zarr("memory://doc-final.zarr/catalog").epochs.values.tolist()
    [1]
    >>> xr.open_zarr("memory://doc-final.zarr/8").cutout.dims
    ('time', 'kind', 'y', 'x', 'plane')
    """
    where = locate(store, storage_options)
    with failures(where.url, "finalizing the store"):
        root = root_meta(where)
        repair(where)
        if rebuild or read_catalog(where, root) is None:
            write_catalog(where, build_catalog(where))
            attrs = {**root.get("attributes", {}), CATALOG_ATTR: CURRENT}
            where.replace(META, root_document(attrs))
            logger.debug("%s: catalog written", where.url)
        # An Icechunk repository publishes the run here, in one commit.
        where.commit(f"finkcube {__version__}: finalize_store")


def repair_store(
    store: StoreLike,
    *,
    storage_options: Mapping[str, Any] | None = None,
    rebuild_catalog: bool = False,
) -> list[int]:
    """Put right what a crashed build or update left; return the objects it promoted.

    A rewrite stages the new version of a cube whole before it touches the live group
    (:mod:`finkcube.store.versions`). A crash while the live group was being replaced
    leaves a complete staged copy: it is promoted now. Every other staged copy (a crash
    before the live group was touched) is deleted. A store whose catalog is stale or
    missing (a crash before the end, or a store of an older finkcube) gets its catalog
    rebuilt from the groups (:func:`finalize_store`); with ``rebuild_catalog`` it is
    rebuilt in any case. Nothing is written when there is nothing to put right.
    :func:`init_store` (resume) and :func:`finalize_store` repair the staged copies; call
    it before planning an update, while no other write is in flight.

    Raises
    ------
    StoreRefusedError
        When ``store`` is not a finkcube store.
    StoreError
        When the store cannot be read or written.

    Examples
    --------
    >>> init_store("memory://doc-repair.zarr")
    >>> repair_store("memory://doc-repair.zarr")
    []
    """
    where = locate(store, storage_options)
    with failures(where.url, "repairing the store"):
        root = root_meta(where)
        promoted = [int(group) for group in repair(where)]
        stale = promoted or not catalog_current(root) or read_catalog(where, root) is None
    if stale or rebuild_catalog:
        finalize_store(where, rebuild=rebuild_catalog)
    return promoted
