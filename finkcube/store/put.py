"""How one cube's files get into a store: encoded whole in memory, or chunk by chunk.

A cube of up to :data:`STREAM_BYTES` is encoded whole in memory by xarray
(:func:`~finkcube.store.staging.cube_files`) and uploaded in one batch, its group
``zarr.json`` last (:func:`~finkcube.store.versions.promote`, or a staged rewrite).

A larger cube is never held encoded: xarray writes it straight into a staged copy of its
group inside the store (``.finkcube-staging/<ID>.<time>-<random>/``, as any rewrite is
staged: :mod:`finkcube.store.versions`), a chunk at a time; a lazy cube
(:func:`finkcube.cube.assemble_cube` with ``lazy=True``) is computed as it is written, so a
build holds its stamps and a few chunks, never its whole cube. The staged group's
``zarr.json`` is written by xarray without the complete mark, rewritten by zarr's
consolidation, and rewritten once more by zarr with the complete mark and the catalog row:
only then does the staged copy read as complete. It is then promoted by copying its files
into the live group (hard links on local disk, server-side copies on object stores),
``zarr.json`` last (:func:`~finkcube.store.versions.promote_staged`), and deleted.
An Icechunk repository always takes the first way (its commit publishes a cube whole).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from finkcube.names import CHUNK_BYTES
from finkcube.store.encoding import chunk_encoding
from finkcube.store.layout import COMPLETE_ATTR, SUMMARY_ATTR
from finkcube.store.location import STAGING, Store
from finkcube.store.staging import consolidate, cube_files, with_variables, zarr_ready
from finkcube.store.versions import (
    discard_older,
    promote,
    promote_staged,
    rewrite,
    stage_name,
)

__all__ = ["STREAM_BYTES", "put_cube"]

#: The size in memory (``Dataset.nbytes``) above which a cube is written chunk by chunk.
STREAM_BYTES = 4 * CHUNK_BYTES

#: The attributes written last, once the cube's files are all there.
_MARKS = (COMPLETE_ATTR, SUMMARY_ATTR)


def _chunked_as_stored(ds: xr.Dataset, encoding: dict[str, dict[str, Any]]) -> xr.Dataset:
    """``ds`` with each variable of several chunks, and each dask-backed one, chunked as
    the store chunks it: xarray then writes it a chunk at a time (a numpy variable is
    written whole, all its chunks encoded at once), and a dask chunk covers whole chunks
    of the store, as xarray requires. Text goes as ``StringDType``, which xarray writes
    without first copying it whole to fixed-width strings (the same ``string`` on disk)."""
    chunked = {}
    for name, var in ds.variables.items():
        chunks = encoding.get(str(name), {}).get("chunks")
        if chunks and (var.chunks is not None or tuple(chunks) != var.shape):
            if var.dtype == object:  # text: xarray writes a StringDType a chunk at a time
                var = var.astype(np.dtypes.StringDType())
            chunked[name] = var.chunk(dict(zip(var.dims, chunks, strict=True)))
    return with_variables(ds, chunked)


def _stream(where: Store, group: str, ds: xr.Dataset) -> None:
    """Write ``ds`` chunk by chunk into a new staged copy of ``group``, then promote it."""
    import zarr

    name = stage_name(group)
    prefix = f"{STAGING}/{name}"
    target = where.zarr(read_only=False, key=prefix)
    marks = {key: ds.attrs[key] for key in _MARKS}
    unmarked = zarr_ready(ds).copy(deep=False)  # the caller's attributes left alone
    unmarked.attrs = {k: v for k, v in ds.attrs.items() if k not in _MARKS}
    encoding = chunk_encoding(unmarked)
    writes = _chunked_as_stored(unmarked, encoding).to_zarr(
        target, mode="w", zarr_format=3, consolidated=False, encoding=encoding, compute=False
    )
    writes.compute(scheduler="synchronous")
    consolidate(target, "")
    zarr.open_group(target, mode="r+", zarr_format=3).update_attributes(marks)
    promote_staged(where, group, prefix, existed=where.exists(group))
    discard_older(where, group, name)


def put_cube(where: Store, group: str, ds: xr.Dataset) -> None:
    """Write ``ds``, whose attributes carry the complete mark and its catalog row, as the
    group ``group``, replacing any older version (see the module docstring)."""
    if where.streams and ds.nbytes > STREAM_BYTES:
        _stream(where, group, ds)
        return
    if any(var.chunks is not None for var in ds.variables.values()):
        # Here, on threads (not on a dask.distributed cluster that runs this write as one of
        # its tasks); before anything is deleted: a lazy cube may read from the group it
        # replaces.
        ds = ds.compute(scheduler="threads")
    files = cube_files(group, ds)
    if where.exists(group):
        rewrite(where, group, files)
    else:
        promote(where, group, files, existed=False)
