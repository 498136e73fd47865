"""The ``ds.fink`` accessor: sky alignment, quality cuts, times, plots, normalisation, resizing.

Importing this module (``import finkcube`` does) registers :class:`FinkAccessor` on every
``xarray.Dataset`` under the name ``fink``. It imports neither matplotlib nor anything
heavy: the plotting methods import it when called.

The transforms (:meth:`FinkAccessor.resize`, :meth:`~FinkAccessor.normalize`) stay lazy
on a dask-backed cube: they map numpy functions over the dask blocks and compute nothing
until asked.

Examples
--------
>>> import numpy as np, xarray as xr
>>> import finkcube.accessor
>>> data = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4, 1)
>>> ds = xr.Dataset(
...     {"cutout": (("time", "kind", "y", "x", "plane"), data)},
...     coords={"time": [60000.1, 60001.2], "kind": ["Science", "Template", "Difference"],
...             "plane": ["data"]},
... )
>>> ds.fink.crop(2).sizes["y"], ds.fink.pad(6).sizes["x"]
(2, 6)
>>> float(ds.fink.normalize().cutout.median(["y", "x"]).max())
0.0
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import xarray as xr

from finkcube.cube.align import NATIVE_SCALE, align_cube, aligned_view, aligned_wcs
from finkcube.cube.canvas import NORMALIZE_METHODS, normalize_stamps, resize_stamps
from finkcube.cube.quality import good_epochs
from finkcube.cube.times import epoch_times, nearest_epochs, select_sources
from finkcube.errors import InputError
from finkcube.names import CROPPED, CUTOUT_VAR, DATA_PLANE, DIMS, KINDS, SIDE

if TYPE_CHECKING:
    from astropy.coordinates import SkyCoord
    from astropy.time import Time
    from astropy.wcs import WCS
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure, SubFigure

__all__ = ["FinkAccessor", "normalize_cube", "resize_cube"]

TIME, KIND, Y, X, PLANE = DIMS
#: Attribute of ``cutout`` recording the normalisation applied.
NORMALIZATION_ATTR: Final = "normalization"


def _cutout(ds: xr.Dataset) -> xr.DataArray:
    cutout = ds.get(CUTOUT_VAR)
    if cutout is None or tuple(cutout.dims) != DIMS:
        raise InputError(
            f"not a finkcube cube: expected a {CUTOUT_VAR!r} variable with dims {DIMS}"
        )
    return cutout


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size <= 0:
        raise InputError(f"size must be a positive integer number of pixels, got {size!r}")
    return int(size)


def resize_cube(ds: xr.Dataset, size: int) -> xr.Dataset:
    """Return the cube on a ``size x size`` canvas, every epoch centred as the builder would.

    Each epoch is placed where :func:`finkcube.build_cube` would put it with ``size=size``:
    a stamp of own side ``s`` (the ``side`` coordinate) at offset ``(size - s) // 2``, or
    centre-cropped from ``(s - size) // 2`` when larger. Pixels the cube does not hold
    become NaN. Without a ``side`` coordinate the whole canvas is treated as the stamp.
    Every variable with ``y`` and ``x`` dims is resized; ``cropped`` becomes true for the
    epochs this crops. Lazy on dask-backed cubes.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube.
    size : int
        The new side, in pixels.

    Returns
    -------
    xarray.Dataset
        The resized cube (float32 stamps).

    Raises
    ------
    InputError
        For a size that is not a positive integer, or ``ds`` that is not a cube.
    """
    _cutout(ds)
    size = _check_size(size)
    sides: xr.DataArray | None = ds[SIDE] if SIDE in ds.coords else None
    resized = {}
    for name, var in ds.data_vars.items():
        if Y not in var.dims or X not in var.dims:
            continue
        args = [var] if sides is None else [var, sides]
        new = xr.apply_ufunc(
            resize_stamps,
            *args,
            input_core_dims=[[Y, X]] + ([[]] if sides is not None else []),
            output_core_dims=[[Y, X]],
            exclude_dims={Y, X},
            kwargs={"size": size},
            dask="parallelized",
            output_dtypes=[np.float32],
            dask_gufunc_kwargs={"output_sizes": {Y: size, X: size}, "allow_rechunk": True},
            keep_attrs=True,
        )
        resized[name] = new.transpose(*var.dims)
    out = ds.drop_dims([Y, X]).assign(resized)
    if sides is not None and CROPPED in ds.coords:
        cropped = ds[CROPPED] | (sides > size)
        out = out.assign_coords({CROPPED: cropped.assign_attrs(ds[CROPPED].attrs)})
    return out[list(ds.data_vars)]


def normalize_cube(ds: xr.Dataset, method: str = "robust", fill: float | None = 0.0) -> xr.Dataset:
    """Return the cube with each stamp scaled on its own, as stamp classifiers expect.

    For each epoch and kind, the centre and scale come from the stamp's ``data`` plane,
    NaN ignored: ``"robust"`` uses the median and 1.4826 x MAD (median absolute deviation:
    a Gaussian sigma, not the interquartile range), ``"minmax"`` the minimum and the range.
    ``data`` becomes ``(x - centre) / scale``, ``variance`` ``v / scale**2``, ``mask`` is
    kept; a zero or undefined scale counts as 1. NaN pixels then become ``fill`` (None keeps
    them). Lazy on dask-backed cubes. See :func:`finkcube._stamps.normalize_stamps`.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube.
    method : {"robust", "minmax"}
        The per-stamp statistics.
    fill : float or None
        What NaN pixels become.

    Returns
    -------
    xarray.Dataset
        The cube with ``cutout`` normalised (float32); its attribute ``normalization``
        names the method.

    Raises
    ------
    InputError
        For an unknown method or a cube without a ``data`` plane.
    """
    cutout = _cutout(ds)
    if method not in NORMALIZE_METHODS:
        raise InputError(f"unknown normalisation {method!r}: expected one of {NORMALIZE_METHODS}")
    planes = [str(p) for p in ds[PLANE].values]
    if DATA_PLANE not in planes:
        raise InputError(f"normalising needs the {DATA_PLANE!r} plane, the cube has {planes}")
    new = xr.apply_ufunc(
        normalize_stamps,
        cutout,
        input_core_dims=[[PLANE, Y, X]],
        output_core_dims=[[PLANE, Y, X]],
        kwargs={"planes": planes, "method": method, "fill": fill},
        dask="parallelized",
        output_dtypes=[np.float32],
        dask_gufunc_kwargs={"allow_rechunk": True},
        keep_attrs=True,
    ).transpose(*DIMS)
    new.attrs[NORMALIZATION_ATTR] = method
    return ds.assign({CUTOUT_VAR: new})


@xr.register_dataset_accessor("fink")
class FinkAccessor:
    """Methods of a finkcube cube, as ``ds.fink.<method>``.

    Parameters
    ----------
    ds : xarray.Dataset
        The dataset the accessor is reached from; methods raise
        :class:`~finkcube.errors.InputError` if it is not a cube.
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    # transforms -----------------------------------------------------------------------
    def resize(self, size: int) -> xr.Dataset:
        """Return the cube on a ``size x size`` canvas; see :func:`resize_cube`."""
        return resize_cube(self._ds, size)

    def crop(self, size: int) -> xr.Dataset:
        """Return the cube centre-cropped to ``size x size`` (:func:`resize_cube`).

        Raises
        ------
        InputError
            If ``size`` is larger than the cube's canvas (use :meth:`pad`).
        """
        canvas = _cutout(self._ds).sizes[Y]
        if _check_size(size) > canvas:
            raise InputError(f"cannot crop a {canvas}-pixel canvas to {size}: use pad()")
        return resize_cube(self._ds, size)

    def pad(self, size: int) -> xr.Dataset:
        """Return the cube padded with NaN to ``size x size`` (:func:`resize_cube`).

        Raises
        ------
        InputError
            If ``size`` is smaller than the cube's canvas (use :meth:`crop`).
        """
        canvas = _cutout(self._ds).sizes[Y]
        if _check_size(size) < canvas:
            raise InputError(f"cannot pad a {canvas}-pixel canvas to {size}: use crop()")
        return resize_cube(self._ds, size)

    def normalize(self, method: str = "robust", fill: float | None = 0.0) -> xr.Dataset:
        """Return the cube with each stamp normalised; see :func:`normalize_cube`."""
        return normalize_cube(self._ds, method, fill)

    # the sky, quality and time --------------------------------------------------------
    def align(
        self,
        center: SkyCoord | tuple[float, float] | None = None,
        *,
        scale: float = NATIVE_SCALE,
        size: int | None = None,
    ) -> xr.Dataset:
        """Return the cube with every epoch resampled onto one sky grid, north up, east
        left (the ``aligned`` variable; ``cutout`` is kept); see
        :func:`finkcube.cube.align.align_cube`."""
        return align_cube(self._ds, center=center, scale=scale, size=size)

    def aligned(self) -> xr.Dataset:
        """Return the aligned stamps as a cube of their own (``cutout`` is ``aligned``,
        on ``y``/``x``), for plots and training sets; see
        :func:`finkcube.cube.align.aligned_view`."""
        return aligned_view(self._ds)

    def aligned_wcs(self) -> WCS:
        """Return the WCS of the ``aligned`` grid (astropy; pixel ``(ax, ay)``)."""
        return aligned_wcs(self._ds)

    def good(
        self, *, max_nan: float = 0.0, max_offset: float | None = None, allow_edge: bool = False
    ) -> xr.Dataset:
        """Return the epochs that pass the quality cuts (no NaN pixel and no detector edge by
        default); see :func:`finkcube.cube.quality.good_epochs`."""
        return good_epochs(self._ds, max_nan=max_nan, max_offset=max_offset, allow_edge=allow_edge)

    def times(self) -> Time:
        """Return the epochs' times as an :class:`astropy.time.Time` (MJD, TAI)."""
        return epoch_times(self._ds)

    def source(self, source_ids: int | Sequence[int]) -> xr.Dataset:
        """Return the epochs of the given diaSourceIds (the unique key of an epoch), in that
        order; see :func:`finkcube.cube.times.select_sources`."""
        return select_sources(self._ds, source_ids)

    def nearest(self, times: float | Sequence[float]) -> xr.Dataset:
        """Return the epoch nearest to each time (MJD, TAI), even where two epochs share a
        time; see :func:`finkcube.cube.times.nearest_epochs`."""
        return nearest_epochs(self._ds, times)

    # pictures -------------------------------------------------------------------------
    def plot_stamps(
        self,
        epochs: int | slice | Sequence[int] | None = None,
        *,
        kinds: Sequence[str] = KINDS,
        plane: str = DATA_PLANE,
        stretch: str = "sigmoid",
        cmap: str | Colormap = "gray",
        pmin: float = 0.5,
        pmax: float = 99.5,
        max_rows: int = 6,
        scale: str = "shared",
        compass: bool = True,
        fig: Figure | SubFigure | None = None,
    ) -> Figure | SubFigure:
        """Draw a grid of stamps (rows: epochs, columns: kinds); see
        :func:`finkcube.plot.plot_stamps`."""
        from finkcube.viz.plot import plot_stamps

        return plot_stamps(
            self._ds, epochs, kinds=kinds, plane=plane, stretch=stretch, cmap=cmap,
            pmin=pmin, pmax=pmax, max_rows=max_rows, scale=scale, compass=compass, fig=fig,
        )  # fmt: skip

    def plot_lightcurve(
        self,
        *,
        ax: Axes | None = None,
        flux: str = "psfFlux",
        err: str | None = "psfFluxErr",
        mark: Sequence[int] = (),
    ) -> Axes:
        """Plot the per-epoch fluxes by band; see :func:`finkcube.plot.plot_lightcurve`."""
        from finkcube.viz.plot import plot_lightcurve

        return plot_lightcurve(self._ds, ax=ax, flux=flux, err=err, mark=mark)

    def plot_overview(
        self,
        epochs: int | slice | Sequence[int] | None = None,
        *,
        kinds: Sequence[str] = KINDS,
        plane: str = DATA_PLANE,
        stretch: str = "sigmoid",
        cmap: str | Colormap = "gray",
        pmin: float = 0.5,
        pmax: float = 99.5,
        max_rows: int = 6,
        scale: str = "shared",
        compass: bool = True,
        fig: Figure | None = None,
    ) -> Figure:
        """Draw the stamps with the light curve beside them; see
        :func:`finkcube.plot.plot_overview`."""
        from finkcube.viz.plot import plot_overview

        return plot_overview(
            self._ds, epochs, kinds=kinds, plane=plane, stretch=stretch, cmap=cmap,
            pmin=pmin, pmax=pmax, max_rows=max_rows, scale=scale, compass=compass, fig=fig,
        )  # fmt: skip

    def animate(self, path: str | Path, **options: Any) -> Path:
        """Write a GIF (or MP4) of the stamps through time; see
        :func:`finkcube.animate.animate` for the options (``fps``, ``stretch``, ``cmap``,
        ``epochs``, ``kinds``, ...)."""
        from finkcube.viz.animate import animate

        return animate(self._ds, path, **options)
