"""A store seen through its catalog: :func:`open_store` and :class:`StoreView`.

Opening a store reads its catalog (:mod:`finkcube.store.catalog`), one small table whatever
the number of objects, and no cube: each cube is opened lazily when asked for
(``view[ID]``, :func:`~finkcube.store.open_cube`), or all the chosen ones at once as an
:class:`xarray.DataTree` (:meth:`StoreView.to_datatree`). Selections (:meth:`StoreView.where`)
are made on the catalog alone and give another view.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from finkcube.errors import InputError, NotFoundError
from finkcube.ids import parse_id
from finkcube.names import BAND
from finkcube.store.catalog import OBJECT, build_catalog, read_catalog
from finkcube.store.failures import failures
from finkcube.store.layout import CATALOG, root_meta
from finkcube.store.location import Store, StoreLike, locate
from finkcube.store.read import open_cube, open_cubes

__all__ = ["StoreView", "open_store"]

# Logged under the public module's name, where users set the store's log level.
logger = logging.getLogger("finkcube.store.write")


class StoreView:
    """The cubes of a store, through its catalog: a mapping of diaObjectId to lazy cube.

    Get one from :func:`open_store`. ``len(view)``, ``ID in view`` and ``for ID in view``
    (ascending ids) read the catalog only; ``view[ID]`` opens that cube lazily
    (:func:`~finkcube.store.open_cube`).

    Attributes
    ----------
    catalog : xarray.Dataset
        One row per cube along ``object`` (the diaObjectId): see
        :mod:`finkcube.store.catalog` for its columns.
    store : Store
        The located store.
    current : bool
        Whether the catalog was read from the store (else it was rebuilt from the groups,
        in memory, because the store's was stale or missing).
    """

    __slots__ = ("_catalog", "_chunks", "_current", "_store")

    def __init__(
        self, store: Store, catalog: xr.Dataset, *, current: bool, chunks: Any = None
    ) -> None:
        self._store, self._catalog, self._current, self._chunks = store, catalog, current, chunks

    @property
    def catalog(self) -> xr.Dataset:
        return self._catalog

    @property
    def store(self) -> Store:
        return self._store

    @property
    def current(self) -> bool:
        return self._current

    @property
    def ids(self) -> list[int]:
        """The diaObjectIds, ascending."""
        return [int(i) for i in self._catalog[OBJECT].values.tolist()]

    def __len__(self) -> int:
        return int(self._catalog.sizes[OBJECT])

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids)

    def __contains__(self, object_id: object) -> bool:
        try:
            oid = parse_id(object_id)
        except InputError:
            return False
        return oid in self._catalog.indexes[OBJECT]

    def __getitem__(self, object_id: int | str) -> xr.Dataset:
        """The cube of ``object_id``, opened lazily (dask-backed).

        Raises
        ------
        NotFoundError
            When the view has no such object (a ``LookupError``).
        """
        oid = parse_id(object_id)
        if oid not in self:
            raise NotFoundError(f"no cube of diaObjectId {oid} in this view of {self._store.url}")
        return open_cube(self._store, oid, chunks=self._chunks)

    def where(
        self,
        mask: Any = None,
        /,
        *,
        band: str | Sequence[str] | None = None,
        min_epochs: int | None = None,
        max_epochs: int | None = None,
        planes: str | None = None,
        complete: bool | None = None,
        start: float | None = None,
        stop: float | None = None,
    ) -> StoreView:
        """The objects that pass every condition given, as another view.

        Parameters
        ----------
        mask : array of bool, optional
            One value per row of :attr:`catalog` (a boolean ``DataArray`` along ``object``,
            such as ``view.catalog.ra > 150``, or a sequence).
        band : str or sequence of str, optional
            Objects with epochs in this band (in any of these bands).
        min_epochs, max_epochs : int, optional
            Bounds on the number of epochs, counted in ``band`` when it is given.
        planes : str, optional
            Cubes holding this plane (``"variance"``: built with ``planes="all"``).
        complete : bool, optional
            Cubes with (True) or without (False) every listed source.
        start, stop : float, optional
            Cubes with an epoch at or after ``start``, at or before ``stop`` (MJD, TAI).

        Examples
        --------
        >>> from finkcube.store.catalog import catalog_dataset
        >>> rows = {1: {"epochs": 3, "bands": {"g": 3}}, 2: {"epochs": 9, "bands": {"r": 9}}}
        >>> view = StoreView(locate("memory://doc-where.zarr"), catalog_dataset(rows), current=True)
        >>> list(view.where(band="g")), list(view.where(min_epochs=5)), list(view.where([True, False]))
        ([1], [2], [1])
        """  # noqa: E501
        cat = self._catalog
        keep = np.ones(cat.sizes[OBJECT], dtype=bool)
        if mask is not None:
            values = np.asarray(mask.values if isinstance(mask, xr.DataArray) else mask)
            if values.dtype != bool or values.shape != keep.shape:
                raise InputError(
                    f"the mask must hold one boolean per object ({keep.size}), not {values.shape}"
                )
            keep &= values
        counts = cat["epochs"].values
        if band is not None:
            wanted = [band] if isinstance(band, str) else list(band)
            known = [str(b) for b in cat[BAND].values]
            per_band = cat["band_epochs"].values[:, [known.index(b) for b in wanted if b in known]]
            counts = per_band.sum(axis=1)
            keep &= counts > 0
        if min_epochs is not None:
            keep &= counts >= min_epochs
        if max_epochs is not None:
            keep &= counts <= max_epochs
        if planes is not None:
            keep &= np.array([planes in str(p).split(",") for p in cat["planes"].values], bool)
        if complete is not None:
            keep &= cat["complete"].values == complete
        if start is not None:
            keep &= cat["last_time"].values >= start
        if stop is not None:
            keep &= cat["first_time"].values <= stop
        return StoreView(
            self._store, cat.isel({OBJECT: keep}), current=self._current, chunks=self._chunks
        )

    def to_datatree(self) -> xr.DataTree:
        """The view's cubes as a tree, laid out as the store: node ``"ID"`` per cube, the
        catalog as node ``"catalog"``, the store's attributes at the root.

        The cubes are opened lazily at once (:func:`~finkcube.store.open_cubes`): their
        arrays are read on access. (The catalog is not at the root: a tree's nodes inherit
        the root's coordinates, and the catalog's ``band`` is not a cube's.)
        """
        with failures(self._store.url, "opening the store"):
            attrs = dict(root_meta(self._store).get("attributes", {}))
        cubes = open_cubes(self._store, self.ids)
        tree = xr.DataTree(xr.Dataset(attrs=attrs))
        # Attached through ``children``: DataTree.from_dict would copy every node twice more.
        nodes = {str(oid): xr.DataTree(cube) for oid, cube in cubes.items()}
        tree.children = {**nodes, CATALOG: xr.DataTree(self._catalog)}
        return tree

    def __repr__(self) -> str:
        cat = self._catalog
        n = len(self)
        totals = cat["band_epochs"].values.sum(axis=0)
        bands = [str(b) for b, k in zip(cat[BAND].values, totals, strict=True) if k]
        state = "" if self._current else " (catalog rebuilt in memory: stale on disk)"
        lines = [
            f"<finkcube.StoreView {self._store.url!r}: {n} object{'s' * (n != 1)}, "
            f"{int(cat['epochs'].values.sum())} epochs{state}>"
        ]
        if n:
            first, last = np.nanmin(cat["first_time"].values), np.nanmax(cat["last_time"].values)
            lines.append(f"  bands: {','.join(bands) or '-'}; MJD (TAI) {first:.3f}..{last:.3f}")
            shown = ", ".join(str(i) for i in self.ids[:5])
            lines.append(f"  diaObjectId: {shown}{', ...' if n > 5 else ''}")
        return "\n".join(lines)


def open_store(
    store: StoreLike,
    *,
    storage_options: Mapping[str, Any] | None = None,
    chunks: Any = None,
) -> StoreView:
    """Open a store through its catalog: one small read, whatever the number of objects.

    A stale or missing catalog (a write since the last :func:`~finkcube.store.finalize_store`,
    a crashed build, a store of an older finkcube) is rebuilt in memory from the groups'
    metadata (one batch of reads), and logged: ``finkcube info --repair STORE`` writes it.

    Parameters
    ----------
    store : str, path or Store
        A finkcube store.
    storage_options : mapping, optional
        Passed to fsspec for URLs.
    chunks : optional
        Dask chunks of the cubes ``view[ID]`` opens, as for :func:`~finkcube.store.open_cube`.

    Returns
    -------
    StoreView
        The catalog (``.catalog``), the cubes by id (``view[ID]``), selections
        (``.where(...)``) and the tree (``.to_datatree()``).

    Raises
    ------
    StoreRefusedError
        When ``store`` is not a finkcube store.
    StoreError
        When the store cannot be read.

    Examples
    --------
    >>> import numpy as np
    >>> from finkcube.names import KINDS
    >>> from finkcube.cube.assemble import assemble_cube
    >>> from finkcube.service.decode import stamps_from_arrays
    >>> from finkcube.store.write import finalize_store, init_store, write_cube
    >>> cut = stamps_from_arrays(5, {k: np.ones((30, 30), np.float32) for k in KINDS})
    >>> rec = {"r:diaSourceId": 5, "r:midpointMjdTai": 60000.5, "r:band": "g"}
    >>> init_store("memory://doc-view.zarr")
    >>> write_cube(assemble_cube(42, [rec], {5: cut}), "memory://doc-view.zarr")
    >>> finalize_store("memory://doc-view.zarr")
    >>> view = open_store("memory://doc-view.zarr")
    >>> list(view), view.catalog.epochs.values.tolist(), view[42].cutout.dims
    ([42], [1], ('time', 'kind', 'y', 'x', 'plane'))
    >>> list(view.where(band="r"))
    []
    """
    where = locate(store, storage_options)
    with failures(where.url, "opening the store"):
        catalog = read_catalog(where, root_meta(where))
        current = catalog is not None
        if catalog is None:
            logger.info(
                "%s: the catalog is stale or missing: rebuilt in memory from the groups; "
                "`finkcube info --repair %s` writes it",
                where.url,
                where.url,
            )
            catalog = build_catalog(where)
    return StoreView(where, catalog, current=current, chunks=chunks)
