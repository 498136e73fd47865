"""Reading a store: which cubes it holds, and opening them lazily with xarray.

:func:`list_objects`, :func:`is_complete` and :func:`cube_attributes` read the groups'
metadata only. :func:`open_cube` and :func:`open_cubes` open each cube with xarray's zarr
backend at its own group, from the group's consolidated metadata (its ``zarr.json``), as
plain ``xr.open_zarr(f"{store}/{ID}")`` does: one cube costs the same whatever the size of
the store. Every chunk is read and decoded by zarr-python; finkcube only wraps each array
in a :class:`CheckedArray` (xarray's backend-array protocol), which checks the cube after
each read.

Each reads the version of a cube its group's ``zarr.json`` describes, or, while a rewrite
is being promoted, the complete staged copy (:mod:`finkcube.store.versions`). Every read
of a cube's files is checked against that document afterwards: a cube rewritten while it
is opened is opened again (up to :data:`~finkcube.store.versions.RETRIES` times), and a
lazy cube opened before a rewrite and read after it raises
:class:`~finkcube.store.versions.CubeChangedError` ("open it again"), never a mix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing
from xarray.indexes import PandasIndex

from finkcube.store.failures import failures
from finkcube.store.layout import (
    CONSOLIDATED,
    HIDDEN_ATTRS,
    complete_meta,
    group_name,
    loads_or_none,
    marked_complete,
    object_groups,
    root_meta,
)
from finkcube.store.location import META, Store, StoreLike, locate
from finkcube.store.versions import Version, check_unchanged, retrying, settle

__all__ = [
    "CheckedArray",
    "cube_attributes",
    "is_complete",
    "list_objects",
    "open_cube",
    "open_cubes",
]


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
            where.exists(group) and group in settle(where, {group: meta})
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
        names = None if object_ids is None else [group_name(oid) for oid in object_ids]
        groups = object_groups(where, names)
        versions = settle(where, groups)
    found = {}
    for group in groups:
        if group in versions:
            attrs = versions[group].meta.get("attributes", {})
            found[int(group)] = {k: v for k, v in attrs.items() if k not in HIDDEN_ATTRS}
    return found


class CheckedArray(BackendArray):
    """One variable of a cube as xarray's zarr backend opened it, checked after every read.

    Reads go through the variable (zarr-python reads and decodes, xarray applies its CF
    decoding); each is followed by
    :func:`~finkcube.store.versions.check_unchanged`, so that a cube rewritten since it was
    opened raises :class:`~finkcube.store.versions.CubeChangedError` instead of returning
    another version's values (or a mix). Strings come back as Python ``str`` objects.

    Parameters
    ----------
    where : Store
        The store.
    source : xarray.Variable
        The lazily indexed variable of xarray's zarr backend.
    check : tuple
        :attr:`finkcube.store.versions.Version.check` of the version opened.
    """

    def __init__(self, where: Store, source: xr.Variable, check: tuple[str, str, bytes]) -> None:
        self.where, self.source, self.check = where, source, check
        self.shape = tuple(source.shape)
        self.dtype = np.dtype(object) if source.dtype.kind in "TU" else source.dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._read
        )

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        with failures(self.where.url, f"reading cube {self.check[0]}"):
            try:
                values = _plain(np.asarray(self.source[key].values))
            except Exception:
                check_unchanged(self.where, self.check)  # a file replaced midway: say so
                raise
            check_unchanged(self.where, self.check)
        return values


def _plain(values: np.ndarray) -> np.ndarray:
    """Strings as Python ``str`` objects (numpy's StringDType refuses ``.astype(str)``)."""
    return values.astype(object) if values.dtype.kind in "TU" else values


def _lazy(where: Store, zstore: Any, version: Version, eager: bool) -> xr.Dataset:
    """One version opened by xarray's zarr backend at its folder, its variables checked.

    The indexes are read at the open (xarray builds them); with ``eager`` the other
    coordinates are read too (through zarr, not dask), then the version is checked once.
    xarray's in-memory cache is off: a cube held open keeps no pixels it has read.
    """
    from zarr.storage import StorePath

    folder = StorePath(zstore, version.prefix)
    with failures(where.url, f"opening cube {version.group}"):
        try:
            # A StorePath is one of zarr's store-likes, which xarray passes to zarr.
            ds = xr.open_dataset(
                folder,  # type: ignore[arg-type]
                engine="zarr",
                # none for a group plain xarray wrote; never on a store that refuses them
                consolidated=where.consolidates and CONSOLIDATED in version.meta,
                chunks=None,
                cache=False,
            )
            variables: dict[str, xr.Variable] = {}
            indexes = dict(ds.xindexes)
            for key, var in ds.variables.items():
                name = str(key)
                if name in indexes:
                    if var.dtype.kind in "TU":  # kind, plane: Python strings, as built
                        var = var.copy(data=_plain(var.values))
                        indexes[name] = PandasIndex(pd.Index(var.values, dtype=object), name)
                elif eager and name in ds.coords:
                    var = var.copy(data=_plain(np.asarray(var.values)))
                else:
                    lazy = indexing.LazilyIndexedArray(CheckedArray(where, var, version.check))
                    var = xr.Variable(var.dims, lazy, var.attrs, var.encoding)
                variables[name] = var
        except Exception:
            check_unchanged(where, version.check)  # rewritten meanwhile: say so, not why
            raise
        check_unchanged(where, version.check)
    # Handed the indexes xarray built at the open: a new Dataset would build them again.
    coords = xr.Coordinates({n: variables.pop(str(n)) for n in ds.coords}, indexes=indexes)
    attrs = {k: v for k, v in ds.attrs.items() if k not in HIDDEN_ATTRS}
    return xr.Dataset(variables, coords, attrs)


def _dask_backed(ds: xr.Dataset, where: Store, version: Version, chunks: Any) -> xr.Dataset:
    """Every data variable as a dask array, in the stored chunks or those asked for.

    ``chunks`` as for :func:`xarray.open_zarr`: None or ``{}`` for the stored chunks, a
    mapping (dimensions left out keep the stored chunks), or one value for every
    dimension. Each dask name carries the store, the version's folder, its fingerprint and
    the chunks: two versions of a cube never share a dask key.
    """
    from dask.base import tokenize

    chunked = {}
    for name, array in ds.data_vars.items():
        var = array.variable
        want: Any = dict(zip(var.dims, var.encoding.get("chunks") or var.shape, strict=True))
        if isinstance(chunks, Mapping):
            want.update({dim: size for dim, size in chunks.items() if dim in var.dims})
        elif chunks is not None:
            want = chunks
        token = tokenize(where.url, version.prefix, version.check[2], name, want)
        chunked[name] = var.chunk(want, name=f"{name}-{token}")
    return ds.assign(chunked)


def open_cube(
    store: StoreLike,
    object_id: int | str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    chunks: Any = None,
) -> xr.Dataset:
    """Open one object's cube lazily (dask-backed): only metadata, indexes and the small
    per-epoch coordinates are read.

    Opened with xarray's zarr backend at the object's group, from the group's own
    consolidated metadata; its data variables are dask arrays in the stored chunks, and
    its per-epoch coordinates are read into memory (straight from Zarr, not by dask), so
    that ``cube.band == "g"`` and ``groupby("band")`` need no compute.

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

    def once() -> xr.Dataset:
        with failures(where.url, f"opening cube {object_id}"):
            version = _version(where, group)
        lazy = _lazy(where, where.zarr(read_only=True), version, True)
        return _dask_backed(lazy, where, version, chunks)

    return retrying(once)


def _version(where: Store, group: str) -> Version:
    """The version a group reads as, or the error that says why there is none."""
    meta = where.read_json(group, META)
    found = settle(where, {group: meta}) if meta is None or not marked_complete(meta) else {}
    if group in found:
        return found[group]
    return Version(group, group, complete_meta(where, group, meta))


def open_cubes(
    store: StoreLike,
    object_ids: Iterable[int | str],
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[int, xr.Dataset]:
    """Open many cubes lazily at once, by id, in the order asked.

    Each cube is opened as :func:`open_cube` opens it and checked the same way, but its
    variables (per-epoch coordinates included) stay lazily indexed arrays read on access,
    with no dask: the way to hold many cubes open, as :class:`~finkcube.CubeDataset` does.

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
        with failures(where.url, "opening cubes"):
            root_meta(where)
            groups = object_groups(where, wanted)
            complete = settle(where, groups)
            for g in wanted:
                if g not in complete:
                    complete_meta(where, g, groups.get(g))  # raises, saying why
            zstore = where.zarr(read_only=True)
        return {int(g): _lazy(where, zstore, complete[g], False) for g in wanted}

    return retrying(once)
