"""Reading a Zarr v3 array straight from its chunk files, for the simple layouts finkcube writes.

Each array read through zarr-python goes through its event loop and codec pipeline and a
metadata read at open, which costs more than reading and decoding a small cube. For an array
whose layout is the plain one :func:`finkcube.store.write_cube` writes (a regular chunk
grid, the default ``c/i/j/...`` chunk keys, the little-endian ``bytes`` codec and at most
one Blosc or Zstd compressor), :class:`ChunkReader` reads the chunk files itself (one
``read`` each on disk, one concurrent batch on an object store) and decodes them with
numcodecs, which zarr's own ``BloscCodec`` and ``ZstdCodec`` wrap. Every other layout (sharding,
other codecs, big-endian, strings) gets ``None`` from :func:`simple_layout`, and the caller
uses zarr. A chunk that was never written reads as the array's fill value, as in Zarr.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from finkcube.store.location import Store

__all__ = ["ChunkReader", "simple_layout"]

_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
#: The compressors read here (numcodecs' Blosc and Zstd, which zarr's own codecs wrap).
_CODECS = ("blosc", "zstd")


@dataclass(frozen=True, slots=True)
class Layout:
    """What reading one array needs: its shape, chunks, dtype, fill value and codec."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]
    fill: Any
    codec: str | None


def _fill_value(value: Any, dtype: np.dtype[Any]) -> Any:
    """Zarr v3's JSON fill value as a scalar of ``dtype``, or None if not understood."""
    if isinstance(value, str):
        if value in _SPECIAL_FLOATS and dtype.kind == "f":
            return dtype.type(_SPECIAL_FLOATS[value])
        if value.startswith("0x") and dtype.kind == "f" and dtype.itemsize in (4, 8):
            raw = int(value, 16).to_bytes(dtype.itemsize, "big")
            return dtype.type(struct.unpack(">f" if dtype.itemsize == 4 else ">d", raw)[0])
        return None
    if isinstance(value, bool | int | float):
        return dtype.type(value)
    return None


def simple_layout(meta: Mapping[str, Any]) -> Layout | None:
    """The :class:`Layout` of an array's metadata (``zarr.json``), or None when not simple."""
    try:
        dtype = np.dtype(meta["data_type"])
    except (KeyError, TypeError):
        return None
    grid = meta.get("chunk_grid", {})
    keys = meta.get("chunk_key_encoding", {})
    codecs = list(meta.get("codecs", []))
    if (
        meta.get("node_type") != "array"
        or dtype.kind not in "biuf"
        or grid.get("name") != "regular"
        or keys.get("name") != "default"
        or keys.get("configuration", {}).get("separator", "/") != "/"
        or meta.get("storage_transformers")
        or not codecs
        or codecs[0].get("name") != "bytes"
        or (dtype.itemsize > 1 and codecs[0].get("configuration", {}).get("endian") != "little")
        or len(codecs) > 2
        or (len(codecs) == 2 and codecs[1].get("name") not in _CODECS)
    ):
        return None
    fill = _fill_value(meta.get("fill_value"), dtype)
    shape = tuple(int(n) for n in meta.get("shape", ()))
    chunks = tuple(int(n) for n in grid.get("configuration", {}).get("chunk_shape", ()))
    if fill is None or len(chunks) != len(shape) or not all(chunks):
        return None
    return Layout(shape, chunks, dtype, fill, codecs[1]["name"] if len(codecs) == 2 else None)


def _ranges(key: tuple[Any, ...], shape: tuple[int, ...]) -> list[range]:
    """Each axis' selected indices; an integer is a one-element range (squeezed later)."""
    out = []
    for k, n in zip(key, shape, strict=True):
        if isinstance(k, slice):
            out.append(range(*k.indices(n)))
        else:
            i = int(k) + n if int(k) < 0 else int(k)
            if not 0 <= i < n:
                raise IndexError(f"index {k} is out of bounds for an axis of size {n}")
            out.append(range(i, i + 1))
    return out


class ChunkReader:
    """Read regions of one simple-layout array (see :func:`simple_layout`) from its files."""

    def __init__(self, where: Store, path: str, layout: Layout) -> None:
        self.where, self.path, self.layout = where, path, layout

    def _chunk_path(self, index: tuple[int, ...]) -> str:
        return "/".join((self.path, "c", *map(str, index))) if index else f"{self.path}/c"

    def _decode(self, raw: bytes | None) -> np.ndarray:
        """One whole chunk as an array of the chunk's shape."""
        lay = self.layout
        if raw is None:
            return np.full(lay.chunks, lay.fill, lay.dtype)
        if lay.codec is None:
            return np.frombuffer(raw, lay.dtype).reshape(lay.chunks)
        out = np.empty(lay.chunks, lay.dtype)
        if lay.codec == "blosc":
            from numcodecs import blosc

            blosc.decompress(raw, out)
        else:
            from numcodecs import Zstd

            Zstd().decode(raw, out=out)
        return out

    def read_all(self) -> np.ndarray:
        """The whole array; one read and one decode when it is a single chunk."""
        lay = self.layout
        if not all(n <= c for n, c in zip(lay.shape, lay.chunks, strict=True)):
            return self.read(())
        index = self._chunk_path((0,) * len(lay.shape))
        chunk = self._decode(self.where.read_many([index]).get(index))
        whole = chunk[tuple(slice(0, n) for n in lay.shape)]
        return whole if whole.flags.writeable else whole.copy()

    def read(self, key: tuple[Any, ...]) -> np.ndarray:
        """The region ``key`` (basic indexing: integers and slices, one per axis)."""
        lay = self.layout
        key = tuple(key) + (slice(None),) * (len(lay.shape) - len(key))
        ranges = _ranges(key, lay.shape)
        squeeze = tuple(ax for ax, k in enumerate(key) if not isinstance(k, slice))
        if any(len(r) == 0 for r in ranges):
            return np.empty([len(r) for r in ranges], lay.dtype).squeeze(squeeze)
        # The bounding box (step 1) of the selection; steps are applied at the end.
        lo = [r.start if r.step > 0 else r[-1] for r in ranges]
        hi = [(r[-1] if r.step > 0 else r.start) + 1 for r in ranges]
        spans = [
            range(a // c, (b - 1) // c + 1) for a, b, c in zip(lo, hi, lay.chunks, strict=True)
        ]
        indices = list(itertools.product(*spans))
        found = self.where.read_many(self._chunk_path(i) for i in indices)
        if len(indices) == 1 and all(a == 0 for a in lo) and list(hi) == list(lay.shape):
            box = self._decode(found.get(self._chunk_path(indices[0])))
            box = box[tuple(slice(0, n) for n in lay.shape)]
        else:
            box = np.empty([b - a for a, b in zip(lo, hi, strict=True)], lay.dtype)
            for index in indices:
                chunk = self._decode(found.get(self._chunk_path(index)))
                src, dst = [], []
                for i, a, b, c in zip(index, lo, hi, lay.chunks, strict=True):
                    start, stop = max(a, i * c), min(b, (i + 1) * c)
                    src.append(slice(start - i * c, stop - i * c))
                    dst.append(slice(start - a, stop - a))
                box[tuple(dst)] = chunk[tuple(src)]
        if any(r.step != 1 for r in ranges):  # box runs low to high: a step of -2 from its end
            box = box[tuple(slice(None, None, r.step) for r in ranges)]
        region = box
        if not region.flags.writeable:
            region = region.copy()
        return region.squeeze(squeeze) if squeeze else region
