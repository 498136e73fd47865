"""Pictures of a cube: a grid of stamps, the light curve, both side by side, and ``render``.

Every function takes a cube (the ``xarray.Dataset`` of :func:`finkcube.store.open_cube`) and
draws with matplotlib, imported only when a function runs. Stamps are shown the way the Fink
service draws its PNG cutouts (the same stretches, any matplotlib colormap), but in FITS
orientation: row 0 at the bottom (``origin="lower"``). Pixels that are NaN in the cube
(blank in the alert, or padding) are "no data": masked, drawn in their own colour
(:data:`~finkcube.viz.figure.NO_DATA_COLOR`) and left out of the stretch's levels, instead
of being drawn and counted as the zero the service would put there. By default each kind
has one scale over the epochs shown, with a colorbar in nJy, so that stamps compare.

The same functions are reachable as methods of the ``ds.fink`` accessor
(:mod:`finkcube.accessor`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finkcube.errors import InputError
from finkcube.names import DATA_PLANE, KINDS
from finkcube.viz.figure import (
    CELL,
    MAX_ROWS,
    EpochSelection,
    TimeRange,
    check_kinds,
    check_scale,
    check_stretch,
    cube_epochs,
    draw_stamps,
    grid_size,
    new_figure,
    select_epochs,
)

# Importable from here, as they were before figure.py and lightcurve.py held them.
from finkcube.viz.figure import display_image as display_image
from finkcube.viz.figure import stamp_title as stamp_title
from finkcube.viz.lightcurve import BAND_COLORS as BAND_COLORS
from finkcube.viz.lightcurve import LIGHTCURVE_HEIGHT, LIGHTCURVE_WIDTH, plot_lightcurve

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure, SubFigure

__all__ = [
    "BAND_COLORS",
    "TimeRange",
    "plot_lightcurve",
    "plot_overview",
    "plot_stamps",
    "render",
    "select_epochs",
]

logger = logging.getLogger(__name__)


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
    scale: str = "shared",
    compass: bool = True,
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Draw a grid of stamps: one row per epoch, one column per kind.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube.
    epochs : int, slice, sequence of int, TimeRange or None
        Which epochs, by position along ``time`` (see :func:`select_epochs`), or by MJD
        (:class:`~finkcube.viz.figure.TimeRange`).
    kinds : sequence of str
        The columns, among ``("Science", "Template", "Difference")``.
    plane : str
        The plane to show (``"data"``, or ``"variance"``/``"mask"`` in FITS-built cubes).
    stretch : {"sigmoid", "linear", "sqrt", "power", "log"}
        The Fink service's stretch, its levels fitted on finite pixels only.
    cmap : str or matplotlib.colors.Colormap
        Any matplotlib colormap; NaN pixels take the colour
        :data:`~finkcube.viz.figure.NO_DATA_COLOR`.
    pmin, pmax : float
        Percentiles of the cut levels (no effect for ``sigmoid``).
    max_rows : int
        How many epochs ``epochs=None`` shows at most (evenly spread over the cube).
    scale : {"shared", "stamp"}
        ``"shared"``: one scale per kind over the epochs shown (a value has the same colour
        in every row), with a colorbar below each column; ``"stamp"``: each stamp stretched
        on its own, as the Fink service does, and no colorbar.
    compass : bool
        Draw N and E arrows on stamps whose WCS the cube knows (``planes="all"`` builds, or
        an aligned cube).
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
    positions = cube_epochs(ds, epochs, max_rows)
    kinds = check_kinds(kinds)
    check_stretch(stretch)
    check_scale(scale)
    if fig is None:
        fig = new_figure(grid_size(len(positions), len(kinds), scale == "shared"), pyplot=True)
    draw_stamps(ds, fig, positions, kinds, plane, stretch, cmap, pmin, pmax, scale, compass)
    return fig


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


def _overview_size(n_rows: int, n_cols: int, colorbar: bool = True) -> tuple[float, float]:
    width, height = grid_size(n_rows, n_cols, colorbar)
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
    scale: str = "shared",
    compass: bool = True,
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
    positions = cube_epochs(ds, epochs, max_rows)
    kinds = check_kinds(kinds)
    check_stretch(stretch)
    check_scale(scale)
    if fig is None:
        fig = new_figure(_overview_size(len(positions), len(kinds), scale == "shared"), pyplot=True)
    _draw_overview(
        fig, ds, positions, kinds, plane=plane, stretch=stretch, cmap=cmap, pmin=pmin,
        pmax=pmax, scale=scale, compass=compass,
    )  # fmt: skip
    return fig


def _aligned(ds: xr.Dataset, align: str) -> xr.Dataset:
    """The aligned view of ``ds`` (aligned now unless the store holds it already)."""
    from finkcube.cube.align import align_cube, aligned_view
    from finkcube.errors import CubeError
    from finkcube.names import ALIGNED_VAR

    if align != "sky":
        raise InputError(f"unknown alignment {align!r}: the only one is 'sky'")
    try:
        return aligned_view(ds if ALIGNED_VAR in ds else align_cube(ds))
    except CubeError as exc:
        raise InputError(f"cannot align this cube: {exc}") from exc


def render(
    store: str | Path,
    object_id: int | str,
    out: str | Path,
    *,
    gif: bool = False,
    lightcurve: bool = True,
    epochs: EpochSelection = None,
    max_rows: int | None = None,
    kinds: Sequence[str] = KINDS,
    stretch: str = "sigmoid",
    cmap: str = "gray",
    pmin: float = 0.5,
    pmax: float = 99.5,
    scale: str = "shared",
    align: str | None = None,
    fps: float = 4,
    dpi: int = 100,
    progress: bool | None = False,
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
        Write an animation (:func:`finkcube.viz.animate.animate`) instead of a grid.
    lightcurve : bool
        Put the light curve beside the grid (:func:`plot_overview`), else the grid alone.
    epochs : int, slice, sequence of int, TimeRange or None
        As in :func:`plot_stamps`; also the frames of an animation.
    max_rows : int, optional
        With ``epochs=None``: at most this many epochs, evenly spread from the first to the
        last. Default: 6 for a grid, every epoch for an animation.
    kinds, stretch, cmap, pmin, pmax, scale
        As in :func:`plot_stamps`.
    align : {None, "sky"}
        ``"sky"``: draw the cube's stamps aligned on the sky, north up, east left
        (:func:`finkcube.cube.align.align_cube`, unless the store holds them aligned
        already: a build with ``align="sky"``); otherwise it needs each epoch's WCS (a
        ``planes="all"`` build).
    fps : float
        Frames per second of an animation.
    dpi : int
        Pixels per inch of the output.
    progress : bool or None
        A progress bar over the frames of an animation (None: only when stderr is a
        terminal).
    storage_options : dict, optional
        fsspec options for a remote store.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    InputError
        For a URL or a missing output directory, an unknown format or a bad option.
    """
    from finkcube.store import open_cube

    if "://" in str(out):
        raise InputError(f"cannot write to {out}: a picture is written to a local file path")
    out = Path(out)
    if not out.parent.is_dir():
        raise InputError(f"output directory {out.parent} does not exist: create it first")
    ds = open_cube(store, object_id, storage_options=storage_options)
    if align is not None:
        ds = _aligned(ds, align)
    if gif:
        from finkcube.viz.animate import ANIMATION_SUFFIXES, animate

        if out.suffix.lower() not in ANIMATION_SUFFIXES:
            out = out.with_suffix(".gif")
        frames = cube_epochs(ds, epochs, max_rows or ds.sizes["time"])
        return animate(
            ds, out, epochs=frames, kinds=kinds, fps=fps, stretch=stretch, cmap=cmap,
            pmin=pmin, pmax=pmax, scale=scale, dpi=dpi, progress=progress,
        )  # fmt: skip
    positions = cube_epochs(ds, epochs, max_rows or MAX_ROWS)
    kinds = check_kinds(kinds)
    check_stretch(stretch)
    check_scale(scale)
    opts: dict[str, Any] = {
        "plane": DATA_PLANE, "stretch": stretch, "cmap": cmap, "pmin": pmin, "pmax": pmax,
        "scale": scale,
    }  # fmt: skip
    shared = scale == "shared"
    if lightcurve:
        fig = new_figure(_overview_size(len(positions), len(kinds), shared), pyplot=False)
        _draw_overview(fig, ds, positions, kinds, **opts)
    else:
        fig = new_figure(grid_size(len(positions), len(kinds), shared), pyplot=False)
        draw_stamps(ds, fig, positions, kinds, **opts)
    try:
        fig.savefig(out, dpi=dpi)
    except ValueError as exc:
        raise InputError(f"cannot write {out.name}: {exc}") from exc
    logger.info("wrote %s", out)
    return out
