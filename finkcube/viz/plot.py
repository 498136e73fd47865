"""Pictures of a cube: a grid of stamps, the light curve, both side by side, and ``render``.

Every function takes a cube (the ``xarray.Dataset`` of :func:`finkcube.store.open_cube`) and
draws with matplotlib, imported only when a function runs. Stamps are shown the way the Fink
service draws its PNG cutouts (the same stretches, any matplotlib colormap), but in FITS
orientation: row 0 at the bottom (``origin="lower"``). Pixels that are NaN in the cube
(blank in the alert, or padding) are left out (the colormap's "bad" colour, transparent by
default) instead of being drawn as the zero the service would put there.

The same functions are reachable as methods of the ``ds.fink`` accessor
(:mod:`finkcube.accessor`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from finkcube.cube.columns import as_str
from finkcube.cube.photometry import FP_DIM, FP_PREFIX
from finkcube.errors import InputError
from finkcube.names import BAND, DATA_PLANE, KINDS, OBJECT_ID
from finkcube.viz.figure import (
    CELL,
    MAX_ROWS,
    TIME,
    EpochSelection,
    check_cube,
    check_kinds,
    check_stretch,
    draw_stamps,
    grid_size,
    new_figure,
    select_epochs,
)

# Importable from here, as they were before _figure.py held them.
from finkcube.viz.figure import display_image as display_image
from finkcube.viz.figure import stamp_title as stamp_title

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure, SubFigure

__all__ = [
    "BAND_COLORS",
    "plot_lightcurve",
    "plot_overview",
    "plot_stamps",
    "render",
    "select_epochs",
]

logger = logging.getLogger(__name__)

#: Colour of each Rubin band in light curves (blue to red); other bands get grey.
BAND_COLORS: Final = {
    "u": "#56b4e9",
    "g": "#009e73",
    "r": "#d55e00",
    "i": "#cc79a7",
    "z": "#7f3c8d",
    "y": "#5d3a1a",
}
#: Width of the light-curve panel beside the stamps, in inches.
LIGHTCURVE_WIDTH: Final = 5.0
#: Largest height of the light-curve panel beside the stamps, in inches.
LIGHTCURVE_HEIGHT: Final = 4.5


def plot_stamps(
    ds: xr.Dataset,
    epochs: EpochSelection = None,
    *,
    kinds: Sequence[str] = KINDS,
    plane: str = DATA_PLANE,
    stretch: str = "sigmoid",
    cmap: str | Colormap = "gray",
    pmin: float = 0.5,
    pmax: float = 99.5,
    max_rows: int = MAX_ROWS,
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Draw a grid of stamps: one row per epoch, one column per kind.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube.
    epochs : int, slice, sequence of int or None
        Which epochs, by position along ``time`` (see :func:`select_epochs`).
    kinds : sequence of str
        The columns, among ``("Science", "Template", "Difference")``.
    plane : str
        The plane to show (``"data"``, or ``"variance"``/``"mask"`` in FITS-built cubes).
    stretch : {"sigmoid", "linear", "sqrt", "power", "log"}
        The Fink service's stretch, applied to each stamp on its own.
    cmap : str or matplotlib.colors.Colormap
        Any matplotlib colormap.
    pmin, pmax : float
        Percentiles of the cut levels (no effect for ``sigmoid``).
    max_rows : int
        How many epochs ``epochs=None`` shows at most.
    fig : matplotlib.figure.Figure or SubFigure, optional
        Where to draw; by default a new pyplot figure sized for the grid.

    Returns
    -------
    matplotlib.figure.Figure or SubFigure
        The figure drawn on. Each stamp's title reads ``KIND`` then ``MJD <time> <band>``.

    Raises
    ------
    InputError
        For a bad selection, kind, plane, stretch or colormap.
    """
    positions = select_epochs(check_cube(ds).sizes[TIME], epochs, max_rows)
    kinds = check_kinds(kinds)
    check_stretch(stretch)
    if fig is None:
        fig = new_figure(grid_size(len(positions), len(kinds)), pyplot=True)
    draw_stamps(ds, fig, positions, kinds, plane, stretch, cmap, pmin, pmax)
    return fig


def plot_lightcurve(
    ds: xr.Dataset,
    *,
    ax: Axes | None = None,
    flux: str = "psfFlux",
    err: str | None = "psfFluxErr",
    mark: Sequence[int] = (),
) -> Axes:
    """Plot the per-epoch fluxes of a cube against time, one colour per band.

    Epochs whose flux is not finite are left out; a missing or non-finite error draws no bar.
    A cube that carries its forced light curve (``fp_`` + ``flux`` along ``fp_time``) shows
    it too, as open markers of the band's colour behind the detections.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube with a ``flux`` coordinate along ``time``.
    ax : matplotlib.axes.Axes, optional
        Where to draw; by default a new pyplot figure.
    flux : str
        The flux coordinate.
    err : str or None
        Its error coordinate; None (or absent from the cube) for no error bars.
    mark : sequence of int
        Positions of epochs to mark with a vertical dotted line (the stamps shown beside).

    Returns
    -------
    matplotlib.axes.Axes
        One errorbar container per band, in ``ax.containers``, labelled with the band (and
        one per band of the forced light curve, labelled ``"band (forced)"``).

    Raises
    ------
    InputError
        If the cube has no ``flux`` coordinate.
    """
    if flux not in ds.coords:
        raise InputError(f"the cube has no {flux!r} coordinate: build it with that column")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(LIGHTCURVE_WIDTH, LIGHTCURVE_HEIGHT), layout="constrained")
    times = np.asarray(ds[TIME].values, dtype=np.float64)
    values = np.asarray(ds[flux].values, dtype=np.float64)
    errors = (
        np.asarray(ds[err].values, dtype=np.float64)
        if err is not None and err in ds.coords
        else np.full_like(values, np.nan)
    )
    bands = as_str(ds[BAND].values) if BAND in ds.coords else np.full(times.shape, "?")
    order = [b for b in BAND_COLORS if b in set(bands)] + sorted(set(bands) - set(BAND_COLORS))
    for band in order:
        keep = (bands == band) & np.isfinite(values)
        if not keep.any():
            continue
        yerr = np.where(np.isfinite(errors[keep]), errors[keep], 0.0)
        ax.errorbar(
            times[keep],
            values[keep],
            yerr=yerr,
            fmt="o",
            ms=4,
            capsize=0,
            color=BAND_COLORS.get(band, "0.5"),
            label=band,
        )
    _draw_forced(ax, ds, flux, err)
    for position in mark:
        ax.axvline(times[position], color="0.6", lw=0.8, ls=":", zorder=0)
    ax.axhline(0.0, color="0.8", lw=0.8, zorder=0)
    units = ds[flux].attrs.get("units")
    ax.ticklabel_format(axis="both", style="plain", useOffset=False)
    ax.locator_params(axis="x", nbins=4)  # MJDs are wide labels
    ax.set_xlabel("MJD (TAI)")
    ax.set_ylabel(f"{flux} [{units}]" if units else flux)
    if ax.containers:
        ax.legend(title="band", fontsize=8, title_fontsize=8)
    object_id = ds.attrs.get(OBJECT_ID)
    if object_id is not None:
        ax.set_title(f"diaObjectId {object_id}", fontsize=9)
    return ax


def _draw_forced(ax: Axes, ds: xr.Dataset, flux: str, err: str | None) -> None:
    """The forced light curve, open markers per band, when the cube carries one."""
    name = FP_PREFIX + flux
    if name not in ds.variables or FP_DIM not in ds[name].dims:
        return
    times = np.asarray(ds[FP_DIM].values, dtype=np.float64)
    values = np.asarray(ds[name].values, dtype=np.float64)
    fp_err = FP_PREFIX + err if err is not None else None
    errors = (
        np.asarray(ds[fp_err].values, dtype=np.float64)
        if fp_err is not None and fp_err in ds.variables
        else np.full_like(values, np.nan)
    )
    band_name = FP_PREFIX + BAND
    bands = as_str(ds[band_name].values) if band_name in ds.variables else np.full(times.shape, "?")
    order = [b for b in BAND_COLORS if b in set(bands)] + sorted(set(bands) - set(BAND_COLORS))
    for band in order:
        keep = (bands == band) & np.isfinite(values)
        if not keep.any():
            continue
        color = BAND_COLORS.get(band, "0.5")
        ax.errorbar(
            times[keep], values[keep], yerr=np.where(np.isfinite(errors[keep]), errors[keep], 0.0),
            fmt="o", ms=4, mfc="none", mec=color, capsize=0, color=color, alpha=0.6,
            elinewidth=0.6, zorder=1, label=f"{band} (forced)",
        )  # fmt: skip


def _draw_overview(
    fig: Figure, ds: xr.Dataset, positions: list[int], kinds: list[str], **opts: Any
) -> None:
    subfigs: Any = fig.subfigures(
        1, 2, width_ratios=[len(kinds) * CELL[0], LIGHTCURVE_WIDTH], wspace=0.02
    )
    left, right = subfigs
    draw_stamps(ds, left, positions, kinds, **opts)
    # The curve keeps a readable height beside a tall grid: centred, blank above and below.
    height = float(fig.get_size_inches()[1])
    margin = max(0.0, (height - LIGHTCURVE_HEIGHT) / 2)
    if margin > 0:
        grid = right.add_gridspec(3, 1, height_ratios=[margin, LIGHTCURVE_HEIGHT, margin])
        ax = right.add_subplot(grid[1])
    else:
        ax = right.add_subplot()
    plot_lightcurve(ds, ax=ax, mark=positions)


def _overview_size(n_rows: int, n_cols: int) -> tuple[float, float]:
    width, height = grid_size(n_rows, n_cols)
    return (width + LIGHTCURVE_WIDTH, max(height, LIGHTCURVE_HEIGHT))


def plot_overview(
    ds: xr.Dataset,
    epochs: EpochSelection = None,
    *,
    kinds: Sequence[str] = KINDS,
    plane: str = DATA_PLANE,
    stretch: str = "sigmoid",
    cmap: str | Colormap = "gray",
    pmin: float = 0.5,
    pmax: float = 99.5,
    max_rows: int = MAX_ROWS,
    fig: Figure | None = None,
) -> Figure:
    """Draw the stamp grid of :func:`plot_stamps` with the light curve beside it.

    The light curve (:func:`plot_lightcurve`, ``psfFlux``) marks the epochs shown as stamps
    with dotted vertical lines. Parameters are those of :func:`plot_stamps`.

    Returns
    -------
    matplotlib.figure.Figure
        Two subfigures: ``fig.subfigs[0]`` holds the stamps, ``fig.subfigs[1]`` the curve.
    """
    positions = select_epochs(check_cube(ds).sizes[TIME], epochs, max_rows)
    kinds = check_kinds(kinds)
    check_stretch(stretch)
    if fig is None:
        fig = new_figure(_overview_size(len(positions), len(kinds)), pyplot=True)
    _draw_overview(
        fig, ds, positions, kinds, plane=plane, stretch=stretch, cmap=cmap, pmin=pmin, pmax=pmax
    )
    return fig


def render(
    store: str | Path,
    object_id: int | str,
    out: str | Path,
    *,
    gif: bool = False,
    lightcurve: bool = True,
    epochs: EpochSelection = None,
    kinds: Sequence[str] = KINDS,
    stretch: str = "sigmoid",
    cmap: str = "gray",
    pmin: float = 0.5,
    pmax: float = 99.5,
    fps: int = 4,
    dpi: int = 100,
    storage_options: dict[str, Any] | None = None,
) -> Path:
    """Open one cube of a store and write its picture: the job of ``finkcube plot``.

    Parameters
    ----------
    store : str or pathlib.Path
        The Zarr store (local path or fsspec URL).
    object_id : int or str
        The diaObjectId.
    out : str or pathlib.Path
        The file to write. Its suffix picks the image format (``.png``, ``.pdf``, ``.svg``
        ...); with ``gif=True`` it must be ``.gif`` or ``.mp4``, any other suffix is
        replaced by ``.gif``.
    gif : bool
        Write an animation of every epoch (:func:`finkcube.animate.animate`) instead of a
        grid.
    lightcurve : bool
        Put the light curve beside the grid (:func:`plot_overview`), else the grid alone.
    epochs, kinds, stretch, cmap, pmin, pmax
        As in :func:`plot_stamps` (``epochs`` also selects the frames of an animation).
    fps : int
        Frames per second of an animation.
    dpi : int
        Pixels per inch of the output.
    storage_options : dict, optional
        fsspec options for a remote store.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    InputError
        For a missing output directory, an unknown format or a bad option.
    """
    from finkcube.store import open_cube

    out = Path(out)
    if not out.parent.is_dir():
        raise InputError(f"output directory {out.parent} does not exist: create it first")
    ds = open_cube(store, object_id, storage_options=storage_options)
    if gif:
        from finkcube.viz.animate import ANIMATION_SUFFIXES, animate

        if out.suffix.lower() not in ANIMATION_SUFFIXES:
            out = out.with_suffix(".gif")
        return animate(
            ds, out, epochs=epochs, kinds=kinds, fps=fps, stretch=stretch, cmap=cmap,
            pmin=pmin, pmax=pmax, dpi=dpi,
        )  # fmt: skip
    positions = select_epochs(check_cube(ds).sizes[TIME], epochs)
    kinds = check_kinds(kinds)
    check_stretch(stretch)
    opts: dict[str, Any] = {
        "plane": DATA_PLANE, "stretch": stretch, "cmap": cmap, "pmin": pmin, "pmax": pmax,
    }  # fmt: skip
    if lightcurve:
        fig = new_figure(_overview_size(len(positions), len(kinds)), pyplot=False)
        _draw_overview(fig, ds, positions, kinds, **opts)
    else:
        fig = new_figure(grid_size(len(positions), len(kinds)), pyplot=False)
        draw_stamps(ds, fig, positions, kinds, **opts)
    try:
        fig.savefig(out, dpi=dpi)
    except ValueError as exc:
        raise InputError(f"cannot write {out.name}: {exc}") from exc
    logger.info("wrote %s", out)
    return out
