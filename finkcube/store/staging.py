"""Zarr documents and chunks produced by xarray and zarr-python in memory, for upload.

finkcube never writes a ``zarr.json`` or a chunk itself: xarray's ``Dataset.to_zarr``,
``zarr.create_group`` and ``zarr.consolidate_metadata`` write them into a zarr
``MemoryStore``, and :mod:`finkcube.store.write` uploads the bytes they produced. This is
what lets a write land in the order that makes it safe (a cube's group document last) and
in one concurrent batch on an object store, where zarr's own writes are several sequential
round trips per array.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Hashable, Mapping
from typing import Any

import xarray as xr

from finkcube.store.encoding import chunk_encoding
from finkcube.store.location import META

__all__ = ["consolidate", "cube_files", "root_document", "with_variables", "zarr_ready"]

#: One consolidation at a time: see :func:`consolidate`.
_CONSOLIDATING = threading.Lock()


def consolidate(staged: Any, path: str) -> None:
    """``zarr.consolidate_metadata`` of ``path`` in a zarr store, without zarr's notice.

    zarr warns, at every call, that consolidated metadata is not yet part of the Zarr v3
    specification. finkcube consolidates on purpose (it is what lets plain xarray open a
    store in one read and quietly), so that one notice is silenced around the call; the
    lock keeps concurrent writes from restoring each other's warning filters.
    """
    import zarr

    # A UserWarning: newer zarr raises it as its subclass zarr.errors.ZarrUserWarning.
    with _CONSOLIDATING, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Consolidated metadata is currently", UserWarning)
        zarr.consolidate_metadata(staged, path=path, zarr_format=3)


def _bytes(staged: dict[str, Any], prefix: str = "") -> dict[str, bytes]:
    """The files under ``prefix`` as bytes, each zarr buffer dropped once copied (the
    encoded cube is held once, not twice)."""
    return {k: staged.pop(k).to_bytes() for k in [k for k in staged if k.startswith(prefix)]}


def zarr_ready(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its fixed-width strings as variable-length ones: zarr's fixed-width
    string type has no Zarr v3 specification yet (zarr warns that other readers may not
    read it)."""
    fixed = {
        name: var.astype(object) for name, var in ds.variables.items() if var.dtype.kind == "U"
    }
    return with_variables(ds, fixed) if fixed else ds


def with_variables(ds: xr.Dataset, variables: Mapping[Hashable, xr.Variable]) -> xr.Dataset:
    """``ds`` with some of its variables replaced, coordinates staying coordinates."""
    return ds.assign_coords({k: v for k, v in variables.items() if k in ds.coords}).assign(
        {k: v for k, v in variables.items() if k not in ds.coords}
    )


def cube_files(group: str, ds: xr.Dataset) -> dict[str, bytes]:
    """Every file of ``ds`` as the Zarr v3 group ``group``, keyed from the store's root.

    Written by xarray with :func:`~finkcube.store.encoding.chunk_encoding`, the group's
    metadata then consolidated by zarr (one read opens the cube).

    Examples
    --------
    >>> import numpy as np
    >>> ds = xr.Dataset({"cutout": ("time", np.ones(2, np.float32))}, coords={"time": [1.0, 2.0]})
    >>> sorted(cube_files("7", ds))
    ['7/cutout/c/0', '7/cutout/zarr.json', '7/time/c/0', '7/time/zarr.json', '7/zarr.json']
    """
    from zarr.storage import MemoryStore

    ds = zarr_ready(ds)
    staged: dict[str, Any] = {}
    store = MemoryStore(staged)
    ds.to_zarr(
        store,
        group=group,
        mode="w",
        zarr_format=3,
        consolidated=False,
        encoding=chunk_encoding(ds),
    )
    consolidate(store, group)
    return _bytes(staged, f"{group}/")


def root_document(attributes: Mapping[str, Any]) -> bytes:
    """A root group's ``zarr.json`` holding ``attributes``, as ``zarr.create_group`` writes it."""
    import zarr
    from zarr.storage import MemoryStore

    staged: dict[str, Any] = {}
    zarr.create_group(MemoryStore(staged), zarr_format=3, attributes=dict(attributes))
    return staged[META].to_bytes()
