"""Zarr v3 storage of cubes: one group per object, visible as complete only once written.

Layout: the root group carries ``finkcube_store`` (the layout version, 1) and
``finkcube_catalog`` (whether the catalog is current); each object is a group named by its
decimal diaObjectId, written by :func:`write_cube` as xarray writes it, with
``finkcube_complete = true``, its consolidated metadata and its catalog row
(``finkcube_summary``) in its own ``zarr.json``, the very last file of the cube to be
written; the group ``catalog`` holds one row per complete cube (:mod:`~finkcube.store.catalog`).
The root's metadata is not consolidated: plain ``xarray.open_zarr(f"{store}/{ID}")`` opens
one cube from its group's own ``zarr.json``, at the same cost whatever the number of objects.
The life of a store:

1. :func:`init_store` creates the root, or reuses a finkcube store (resume);
2. :func:`write_cube` / :func:`delete_cube`, from any number of threads or processes, for
   different objects: each touches only its object's group (and, if the catalog was
   current, first marks it stale in the root's attributes, an idempotent write);
3. :func:`finalize_store`, by the one orchestrator once no write is in flight, rebuilds the
   catalog from the *complete* groups' documents and marks it current.

Every public function takes a local path, an fsspec URL (with ``storage_options``) or a
:class:`Store` located once by :func:`locate`, to pass down instead of a URL re-resolved at
every call. A failure of the store or the file system is a
:class:`~finkcube.errors.StoreError` (``finkcube`` exits 1); a path the user must change (not
a finkcube store, a newer layout, a path that can never be a store) is a
:class:`~finkcube.errors.StoreRefusedError` (exit 2).

Reading: :func:`open_store` reads the catalog (rebuilt in memory when stale) and gives a
:class:`StoreView`, which opens cubes lazily by id; :func:`open_cube` opens one cube and
:func:`open_cubes` many; :func:`iter_cutouts` streams every pixel.

The code: :mod:`~finkcube.store.write` writes (the bytes produced by xarray and zarr in
memory, :mod:`~finkcube.store.staging`, with the chunks and codecs of
:mod:`~finkcube.store.encoding`); :mod:`~finkcube.store.catalog` makes and reads the
catalog, :mod:`~finkcube.store.view` opens a store through it; :mod:`~finkcube.store.read`
lists and opens cubes, :mod:`~finkcube.store.stream` streams them,
:mod:`~finkcube.store.summary` summarises them, :mod:`~finkcube.store.layout` reads what the
root and groups say, :mod:`~finkcube.store.location` holds the fsspec/Zarr plumbing and
:mod:`~finkcube.store.failures` the errors, and :mod:`~finkcube.store.icechunk` makes an
Icechunk repository (``icechunk://PATH``) a store whose every run is one commit. Everything
public is importable from here.
"""

# Importing IcechunkStore makes it a kind of store that locate() recognises.
from finkcube.store.icechunk import IcechunkStore
from finkcube.store.layout import COMPLETE_ATTR, LAYOUT_VERSION, STORE_ATTR
from finkcube.store.location import Store, locate
from finkcube.store.read import (
    cube_attributes,
    is_complete,
    list_objects,
    open_cube,
    open_cubes,
)
from finkcube.store.stream import iter_cutouts
from finkcube.store.summary import CubeSummary, StoreSummary, cube_summary, store_summary
from finkcube.store.view import StoreView, open_store
from finkcube.store.write import (
    check_store,
    delete_cube,
    finalize_store,
    init_store,
    repair_store,
    write_cube,
)

__all__ = [
    "COMPLETE_ATTR",
    "LAYOUT_VERSION",
    "STORE_ATTR",
    "CubeSummary",
    "IcechunkStore",
    "Store",
    "StoreSummary",
    "StoreView",
    "check_store",
    "cube_attributes",
    "cube_summary",
    "delete_cube",
    "finalize_store",
    "init_store",
    "is_complete",
    "iter_cutouts",
    "list_objects",
    "locate",
    "open_cube",
    "open_cubes",
    "open_store",
    "repair_store",
    "store_summary",
    "write_cube",
]
