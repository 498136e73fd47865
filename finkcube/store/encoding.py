"""How a cube is encoded in Zarr: its chunks and codecs, and the attributes JSON refuses.

Chunking: ``cutout`` is chunked along ``time`` only, about :data:`CHUNK_BYTES` of raw canvas
per chunk, so that a whole cube is a few objects in an object store and one epoch still
reads quickly; ``psf`` and the aligned stamps (``aligned``, ``aligned_psf``) alike.
Sharding was tried and not kept: it made one-epoch reads faster but whole-cube reads, the
common case, slower.

Compression: Blosc LZ4, no shuffle, chosen for reads. Float32 sky noise hardly compresses;
what any codec removes is mostly the NaN padding of small stamps on a common canvas, so
decoding speed matters more than ratio: zstd with shuffle stores a few per cent less but
decodes an order of magnitude slower, and shuffle made both codecs larger here
(``benchmarks/run.py`` measures them). The WCS header cards (``wcs_header``, a few kB of
text per stamp) are chunked along ``time`` as ``cutout`` is, so that a large cube's cards
are encoded a chunk at a time too. The other per-epoch coordinates are one chunk each. The
numeric ones (``time``, ``diaSourceId``, fluxes, ...) are stored uncompressed: 8 bytes an
epoch, which no codec makes much smaller, and whose decoding doubled the time zarr takes to
read one (an update reads every cube's ``diaSourceId``). The text ones (``band``, the WCS
headers, which compress several times) keep zarr's default codec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from finkcube.errors import InputError
from finkcube.names import (
    ALIGNED_PSF_VAR,
    ALIGNED_VAR,
    CHUNK_BYTES,
    CUTOUT_VAR,
    PSF_VAR,
    WCS_VAR,
    time_chunk,
)

__all__ = ["CHUNK_BYTES", "STAMP_VARS", "check_attrs", "chunk_encoding"]

#: The variables chunked along ``time`` by :data:`CHUNK_BYTES` of canvas.
STAMP_VARS = (CUTOUT_VAR, PSF_VAR, ALIGNED_VAR, ALIGNED_PSF_VAR)


def chunk_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """The ``encoding`` of :meth:`xarray.Dataset.to_zarr` for a cube: chunks and codecs.

    Examples
    --------
    >>> ds = xr.Dataset({"cutout": (("time", "y"), np.zeros((3, 4), np.float32))},
    ...                 coords={"time": [1.0, 2.0, 3.0]})
    >>> enc = chunk_encoding(ds)
    >>> enc["time"], enc["cutout"]["chunks"]
    ({'chunks': (3,), 'compressors': None}, (3, 4))
    """
    from zarr.codecs import BloscCodec

    blosc = BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle")
    encoding: dict[str, dict[str, Any]] = {}
    cutout = ds.variables.get(CUTOUT_VAR)
    stamp_steps = None if cutout is None else time_chunk(cutout.shape, cutout.dtype.itemsize)
    for name, var in ds.variables.items():
        shape = tuple(var.shape)
        if name in STAMP_VARS:
            steps = time_chunk(shape, var.dtype.itemsize)
            encoding[str(name)] = {"chunks": (steps, *shape[1:]), "compressors": (blosc,)}
        elif name == WCS_VAR and stamp_steps is not None and var.dims[:1] == ("time",):
            # Each chunk of cutouts has its own chunk of header cards (~3 kB a stamp).
            encoding[str(name)] = {"chunks": (stamp_steps, *shape[1:])}
        elif var.dtype.kind in "biuf":
            encoding[str(name)] = {"chunks": shape or None, "compressors": None}
        else:
            encoding[str(name)] = {"chunks": shape or None}
    return encoding


def _non_finite(value: Any) -> bool:
    if isinstance(value, float | np.floating):
        return not np.isfinite(value)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return not np.isfinite(value).all()
    if isinstance(value, Mapping):
        value = list(value.values())
    return isinstance(value, list | tuple) and any(_non_finite(v) for v in value)


def check_attrs(ds: xr.Dataset) -> None:
    """InputError for a NaN or infinite attribute: Zarr metadata is JSON, which has neither.

    Examples
    --------
    >>> check_attrs(xr.Dataset(attrs={"zeropoint": float("nan")}))
    Traceback (most recent call last):
    ...
    finkcube.errors.InputError: attribute 'zeropoint' of the cube holds NaN or infinity, which Zarr metadata (JSON) cannot store: drop it or store it as a string
    """  # noqa: E501
    owners = [("the cube", ds.attrs), *((repr(n), v.attrs) for n, v in ds.variables.items())]
    for owner, attrs in owners:
        bad = [key for key, value in attrs.items() if _non_finite(value)]
        if bad:
            raise InputError(
                f"attribute {bad[0]!r} of {owner} holds NaN or infinity, which Zarr metadata "
                "(JSON) cannot store: drop it or store it as a string"
            )
