"""Zarr v3 storage of cubes: one group per object, visible as complete only once written.

Layout: the root group carries ``finkcube_store`` (the layout version, 1); each object is a
group named by its decimal diaObjectId, written by :func:`write_cube` as xarray writes it
and then marked ``finkcube_complete = true`` in its own ``zarr.json``, the very last write.
Each group also holds its consolidated metadata (one read opens it). The life of a store:

1. :func:`init_store` creates the root, or reuses a finkcube store (resume);
2. :func:`write_cube` / :func:`delete_cube`, from any number of threads or processes, for
   different objects: each touches only its object's group (and, if the store had been
   finalised, first drops the root's consolidated metadata, an idempotent write);
3. :func:`finalize_store`, by the one orchestrator once no write is in flight, consolidates
   the metadata of the *complete* groups at the root, so that plain
   ``xarray.open_zarr(store, group=ID)`` and ``xarray.open_datatree(store, engine="zarr")``
   open without a warning and never see an incomplete group.

Chunking: ``cutout`` is chunked along ``time`` only, about 4 MiB of raw canvas per chunk
(97 epochs of one plane on a 60 px canvas, 48 of two), so that a whole cube is a few
objects in an object store and one epoch still reads quickly; ``psf`` alike. Sharding (one
shard per variable, 8-epoch inner chunks) cut one-epoch reads from 7 to 3 ms but doubled
whole-cube reads, so it is not used.

Compression: Blosc LZ4, level 5, no shuffle, chosen for reads. Float32 sky noise hardly
compresses; what any codec removes is mostly the NaN padding, so speed matters more than
ratio. Measured on the real sample object, a 1,200-epoch object, a 30-102 px object and 200
objects of the benchmark store, LZ4-5 stores 4.1 / 5.1 / 19.0 / 5.1 kB per stamp where
Blosc zstd-1 with shuffle stores 3.8 / 4.8 / 17.7 / 4.8 kB (+6-8 %; raw canvas 6.7 / 6.4 /
41.6 / 6.4 kB), but encodes 8x faster (1.2 GB/s against 0.15) and decodes 10x faster
(5-7.5 GB/s against 0.5-0.6): streaming a store went from 2 % to about 60 % of the rate of
a plain ``.npy`` (``benchmarks/run.py``, B3c). Shuffle made both codecs larger here. The
``time`` coordinate is one uncompressed chunk, which lets :func:`open_store` read every
object's index with one plain read each; the other per-epoch coordinates are one chunk each.

Opening (local disk, 2 cores): :func:`open_cube` about 15 ms; :func:`open_store` of 500
objects about 0.6 s. Plain ``xarray.open_zarr(store, group=ID)`` parses the root's
consolidated metadata of *every* object (about 7 kB each): 1.3 s with 500 objects, so
prefer :func:`open_cube` for big stores, and :func:`iter_cutouts` to stream every pixel.

The code: this module writes (the chunking and codecs above, the complete mark, the root's
consolidated metadata; :mod:`finkcube.store.groupfiles` encodes a cube's files, the documents
and chunk bytes of xarray's ``to_zarr`` without its cost); :mod:`finkcube.store.read` lists
and opens cubes (lazy nodes from :mod:`finkcube.store.nodes`, chunk files read by
:mod:`finkcube.store.chunks`),
:mod:`finkcube.store.stream` streams them, :mod:`finkcube.store.summary` summarises them,
:mod:`finkcube.store.layout` reads what the root and groups say and :mod:`finkcube.store.location`
holds the fsspec/Zarr plumbing. Everything public is importable from here.
"""

from finkcube.store.layout import COMPLETE_ATTR, LAYOUT_VERSION, STORE_ATTR
from finkcube.store.read import is_complete, list_objects, open_cube, open_cubes, open_store
from finkcube.store.stream import iter_cutouts
from finkcube.store.summary import CubeSummary, StoreSummary, cube_summary, store_summary
from finkcube.store.write import check_store, delete_cube, finalize_store, init_store, write_cube

__all__ = [
    "COMPLETE_ATTR",
    "LAYOUT_VERSION",
    "STORE_ATTR",
    "CubeSummary",
    "StoreSummary",
    "check_store",
    "cube_summary",
    "delete_cube",
    "finalize_store",
    "init_store",
    "is_complete",
    "iter_cutouts",
    "list_objects",
    "open_cube",
    "open_cubes",
    "open_store",
    "store_summary",
    "write_cube",
]
