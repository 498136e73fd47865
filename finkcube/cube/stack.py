"""The stamps of a cube's epochs, placed on its canvas a block of epochs at a time.

:class:`CutoutStack` and :class:`PsfStack` hold the stamps of a cube's epochs, in time
order, and read as the cube's ``cutout`` and ``psf`` arrays: indexing one along ``time``
places just those epochs on a fresh canvas, NaN around them. The cube builder
(:func:`finkcube.cube.assemble_cube`) takes them whole, or wraps them in dask arrays
chunked along ``time`` as a store writes them (:func:`lazily`): writing such a cube places
one chunk of epochs at a time and never holds the whole cube, only the stamps.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from finkcube.cube.canvas import placement
from finkcube.cutouts import Stamp
from finkcube.errors import FinkcubeWarning
from finkcube.names import (
    DATA_PLANE,
    KINDS,
    MASK_PLANE,
    PSF_DIMS,
    PSF_SIDE,
    PSF_VAR,
    VARIANCE_PLANE,
    WCS_VAR,
    time_chunk,
)

__all__ = ["CutoutStack", "PsfStack", "lazily"]

Rows = Sequence[Sequence[Stamp]]


class _Epochs:
    """A read-only array along ``time`` whose epochs are placed when indexed.

    It has what :func:`dask.array.from_array` needs: ``shape``, ``dtype``, ``ndim`` and
    ``__getitem__`` (``stack[:]`` places every epoch).
    """

    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return len(self.shape)

    def _place(self, out: np.ndarray, row: Sequence[Stamp]) -> None:  # pragma: no cover
        raise NotImplementedError

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        first = key[0] if key else slice(None)
        if first is Ellipsis:
            return self[:][key]
        rows = np.arange(self.shape[0])[first]
        block = np.full((rows.size, *self.shape[1:]), np.nan, dtype=self.dtype)
        for out, i in zip(block, rows.reshape(-1), strict=True):
            self._place(out, self.rows[int(i)])
        return block[(0 if rows.ndim == 0 else slice(None), *key[1:])]


class CutoutStack(_Epochs):
    """The ``cutout (time, kind, y, x, plane)`` array of epochs' stamps, float32.

    Each stamp is centred on the ``canvas`` (centre-cropped when larger, see
    :func:`~finkcube.cube.canvas.placement`); ``planes`` are the data plane, then with
    ``all_planes`` the variance plane and the mask plane when any stamp has one.

    Examples
    --------
    >>> row = [Stamp(k, {"data": np.ones((2, 2), "f4")}) for k in KINDS]
    >>> stack = CutoutStack([row, row], canvas=4)
    >>> stack.shape, stack.planes, int(np.isnan(stack[1]).sum())
    ((2, 3, 4, 4, 1), ['data'], 36)
    """

    def __init__(self, rows: Rows, canvas: int, *, all_planes: bool = False) -> None:
        super().__init__(rows)
        self.canvas = canvas
        self.planes = [DATA_PLANE]
        if all_planes:
            self.planes.append(VARIANCE_PLANE)
            if any(MASK_PLANE in s.planes for row in rows for s in row):
                self.planes.append(MASK_PLANE)
                self._check_masks()
        self.shape = (len(rows), len(KINDS), canvas, canvas, len(self.planes))
        self.dtype = np.dtype(np.float32)

    def _check_masks(self) -> None:
        """Warn when a mask holds bits that float32 does not keep exactly."""
        for row in self.rows:
            src, _, _ = placement(row[0].side, self.canvas)
            for stamp in row:
                mask = stamp.planes.get(MASK_PLANE)
                if mask is not None and mask.size and np.abs(mask[src, src]).max() >= 2**24:
                    warnings.warn(
                        "mask bits above 2**24 are not exact in float32", FinkcubeWarning, 4
                    )
                    return

    def blanks(self) -> Iterator[np.ndarray]:
        """Each epoch's NaN mask of its data planes as placed on the canvas (the stamps
        cropped to it), ``(kind, side, side)``: what the quality coordinates need, without
        a canvas (:func:`~finkcube.cube.quality.with_quality`)."""
        for row in self.rows:
            src, _, _ = placement(row[0].side, self.canvas)
            yield np.isnan(np.stack([s.planes[DATA_PLANE][src, src] for s in row]))

    def _place(self, out: np.ndarray, row: Sequence[Stamp]) -> None:
        src, dst, _ = placement(row[0].side, self.canvas)
        for k, stamp in enumerate(row):
            for p, name in enumerate(self.planes):
                plane = stamp.planes.get(name)
                if plane is not None:
                    out[k, dst, dst, p] = plane[src, src]


class PsfStack(_Epochs):
    """The ``psf (time, kind, psf_y, psf_x)`` array of epochs' PSF images, float64, and
    their ``psf_side`` and ``wcs_header`` variables.

    The PSF images of an epoch's kinds are centred, NaN-padded, on one square of the
    largest PSF side of the cube (float64, as the alerts' ``PSFIMAGE`` holds them).

    Examples
    --------
    >>> row = [Stamp(k, {"data": np.ones((30, 30), "f4")}, psf=np.ones((3, 3)), header="H")
    ...        for k in KINDS]
    >>> stack = PsfStack([row])
    >>> sorted(stack.variables()), stack.shape
    (['psf', 'psf_side', 'wcs_header'], (1, 3, 3, 3))
    """

    def __init__(self, rows: Rows) -> None:
        super().__init__(rows)
        self.headers = np.array(
            [[s.header or "" for s in row] for row in rows], dtype=object
        ).reshape(len(rows), len(KINDS))
        self.sides = np.array(
            [[0 if s.psf is None else s.psf.shape[0] for s in row] for row in rows], np.int64
        ).reshape(len(rows), len(KINDS))
        self.full = int(self.sides.max(initial=0))
        self.shape = (len(rows), len(KINDS), self.full, self.full)
        self.dtype = np.dtype(np.float64)

    def _place(self, out: np.ndarray, row: Sequence[Stamp]) -> None:
        for k, stamp in enumerate(row):
            if stamp.psf is not None and stamp.psf.shape[0]:
                start = (self.full - stamp.psf.shape[0]) // 2
                end = start + stamp.psf.shape[0]
                out[k, start:end, start:end] = stamp.psf

    def variables(self, *, lazy: bool = False) -> dict[str, Any]:
        """The variables, as ``xarray.Dataset`` data variables (dims, values, attrs); with
        ``lazy``, ``psf`` and ``wcs_header`` are dask arrays (:func:`lazily`): xarray makes
        a pandas copy of a numpy array of text, several times its size, and none of a dask
        array's."""
        headers: Any = self.headers
        if lazy:
            headers = _held(self.headers, WCS_VAR)
        out: dict[str, Any] = {
            WCS_VAR: (("time", "kind"), headers, {"long_name": "FITS WCS cards"})
        }
        if self.full:
            psf = lazily(self, PSF_VAR) if lazy else self[:]
            out[PSF_VAR] = (PSF_DIMS, psf, {"long_name": "PSF image, centred, NaN-padded"})
            out[PSF_SIDE] = (("time", "kind"), self.sides, {"long_name": "PSF side, 0: none"})
        return out


def _held(array: np.ndarray, name: str) -> Any:
    """A dask array of one chunk over ``array`` (named: dask need not hash it)."""
    import dask.array as da

    return da.from_array(array, chunks=-1, name=f"finkcube-{name}-{uuid.uuid4().hex}")


def lazily(stack: _Epochs, name: str) -> Any:
    """A dask array over ``stack``, one chunk per :func:`~finkcube.names.time_chunk` epochs
    (the chunks a store writes), each placed when it is computed."""
    import dask.array as da

    steps = time_chunk(stack.shape, stack.dtype.itemsize)
    return da.from_array(
        stack,
        chunks=(steps, *stack.shape[1:]),
        name=f"finkcube-{name}-{uuid.uuid4().hex}",  # named: dask need not hash the stamps
        lock=False,
        asarray=True,
        meta=np.empty((0,) * stack.ndim, dtype=stack.dtype),
    )
