"""Zarr v3 storage of cubes: one group per object, visible as complete only once written.

Layout: the root group carries ``finkcube_store`` (the layout version, 1); each object is a
group named by its decimal diaObjectId, written by :func:`write_cube` as xarray writes it,
with ``finkcube_complete = true`` and its consolidated metadata in its own ``zarr.json``,
the very last file of the cube to be written. The life of a store:

1. :func:`init_store` creates the root, or reuses a finkcube store (resume);
2. :func:`write_cube` / :func:`delete_cube`, from any number of threads or processes, for
   different objects: each touches only its object's group (and, if the store had been
   finalised, first drops the root's consolidated metadata, an idempotent write);
3. :func:`finalize_store`, by the one orchestrator once no write is in flight, consolidates
   the metadata of the *complete* groups at the root, so that plain
   ``xarray.open_zarr(store, group=ID)`` and ``xarray.open_datatree(store, engine="zarr")``
   open without a warning and never see an incomplete group.

Every public function takes a local path, an fsspec URL (with ``storage_options``) or a
:class:`Store` located once by :func:`locate`, to pass down instead of a URL re-resolved at
every call. A failure of the store or the file system is a
:class:`~finkcube.errors.StoreError` (``finkcube`` exits 1); a path the user must change (not
a finkcube store, a newer layout, a path that can never be a store) is a
:class:`~finkcube.errors.StoreRefusedError` (exit 2).

Reading: :func:`open_cube` and :func:`open_store` build cubes from each group's
consolidated metadata and read the arrays on access. Plain
``xarray.open_zarr(store, group=ID)`` on a finalised store parses the consolidated
metadata of *every* object at the root, so prefer :func:`open_cube` for big stores, and
:func:`iter_cutouts` to stream every pixel.

The code: :mod:`~finkcube.store.write` writes (the bytes produced by xarray and zarr in
memory, :mod:`~finkcube.store.staging`, with the chunks and codecs of
:mod:`~finkcube.store.encoding`); :mod:`~finkcube.store.read` lists and opens cubes (lazy
nodes from :mod:`~finkcube.store.nodes`, chunk files read by :mod:`~finkcube.store.chunks`),
:mod:`~finkcube.store.stream` streams them, :mod:`~finkcube.store.summary` summarises them,
:mod:`~finkcube.store.layout` reads what the root and groups say,
:mod:`~finkcube.store.location` holds the fsspec/Zarr plumbing and
:mod:`~finkcube.store.failures` the errors. Everything public is importable from here.
"""

from finkcube.store.layout import COMPLETE_ATTR, LAYOUT_VERSION, STORE_ATTR
from finkcube.store.location import Store, locate
from finkcube.store.read import (
    cube_attributes,
    is_complete,
    list_objects,
    open_cube,
    open_cubes,
    open_store,
)
from finkcube.store.stream import iter_cutouts
from finkcube.store.summary import CubeSummary, StoreSummary, cube_summary, store_summary
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
    "Store",
    "StoreSummary",
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
