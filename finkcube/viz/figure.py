"""Stamp panels, the pieces shared by :mod:`finkcube.viz.plot` and :mod:`finkcube.viz.animate`.

Choosing epochs, checking the drawing options, loading stamps and their labels from a cube,
scaling them (:mod:`finkcube.viz.scale`: the Fink stretches fitted on finite pixels only, NaN
masked), and drawing a grid of them with a colorbar per kind and, where the WCS is known, an
N/E compass. matplotlib and astropy are imported only by the functions that draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from finkcube.cube.columns import as_str
from finkcube.errors import InputError
from finkcube.names import BAND, CUTOUT_VAR, DATA_PLANE, DIMS, KINDS, STRETCHES

if TYPE_CHECKING:
    import xarray as xr
    from astropy.visualization import ImageNormalize
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure, SubFigure

__all__ = [
    "CELL",
    "COLORBAR_HEIGHT",
    "MAX_ROWS",
    "NO_DATA_COLOR",
    "SCALES",
    "EpochSelection",
    "TimeRange",
    "check_cube",
    "check_kinds",
    "check_scale",
    "check_stretch",
    "cube_epochs",
    "display_image",
    "draw_stamps",
    "epoch_labels",
    "get_colormap",
    "grid_size",
    "kind_norms",
    "load_stamps",
    "new_figure",
    "select_epochs",
    "stamp_title",
    "units_label",
]

TIME, KIND, Y, X, PLANE = DIMS
#: Inches per stamp in a grid (width, height: the height leaves room for a 2-line title).
CELL: Final = (2.0, 2.5)
#: Inches added below a grid for its colorbars (one per kind, shared scale only).
COLORBAR_HEIGHT: Final = 0.7
#: Default number of rows of a grid when ``epochs`` is not given.
MAX_ROWS: Final = 6
#: Colour of "no data" pixels (NaN: padding, blank): in none of the usual colormaps.
NO_DATA_COLOR: Final = "#c8a2c8"
#: ``scale="shared"``: one scale per kind over the epochs shown; ``"stamp"``: one per stamp.
SCALES: Final = ("shared", "stamp")
#: Units of the planes of a cube (Rubin's cutouts are in nJy), for colorbar labels.
PLANE_UNITS: Final = {DATA_PLANE: "nJy", "variance": "nJy²", "mask": "bits"}


@dataclass(frozen=True, slots=True)
class TimeRange:
    """The epochs whose time (MJD, the ``time`` coordinate) lies in ``[start, stop]``.

    Either end may be None (open). Pass it wherever ``epochs`` is asked for.
    """

    start: float | None = None
    stop: float | None = None

    def positions(self, times: np.ndarray) -> list[int]:
        """Return the positions of ``times`` inside the range, in time order."""
        times = np.asarray(times, dtype=np.float64)
        keep = np.ones(times.shape, dtype=bool)
        if self.start is not None:
            keep &= times >= self.start
        if self.stop is not None:
            keep &= times <= self.stop
        if not keep.any():
            raise InputError(
                f"no epoch between MJD {self.start} and {self.stop}: the cube spans "
                f"{times.min():.5f} to {times.max():.5f}"
            )
        return [int(p) for p in np.flatnonzero(keep)]


EpochSelection = int | slice | Sequence[int] | TimeRange | None


def select_epochs(
    n_epochs: int, epochs: EpochSelection = None, max_rows: int = MAX_ROWS
) -> list[int]:
    """Return the positions along ``time`` that a selection names.

    Parameters
    ----------
    n_epochs : int
        How many epochs the cube has.
    epochs : int, slice, sequence of int or None
        Positions as for ``Dataset.isel(time=...)``: one position, a slice or a list
        (negative positions count from the end). None: every epoch if there are at most
        ``max_rows``, else ``max_rows`` epochs evenly spread from the first to the last.
    max_rows : int
        The cap for ``epochs=None``.

    Returns
    -------
    list of int
        Non-negative positions, in the order given.

    Raises
    ------
    InputError
        For a position out of range, an empty selection or a cube with no epochs.

    Examples
    --------
    >>> select_epochs(10, max_rows=4)
    [0, 3, 6, 9]
    >>> select_epochs(10, -1), select_epochs(10, slice(0, 6, 2))
    ([9], [0, 2, 4])
    """
    if n_epochs <= 0:
        raise InputError("the cube has no epochs to show")
    if epochs is None:
        if n_epochs <= max_rows:
            return list(range(n_epochs))
        return [int(p) for p in np.unique(np.linspace(0, n_epochs - 1, max_rows).round())]
    if isinstance(epochs, TimeRange):
        raise InputError("a TimeRange selects by time: use cube_epochs(ds, epochs)")
    if isinstance(epochs, slice):
        chosen = list(range(n_epochs)[epochs])
    elif isinstance(epochs, int | np.integer):
        chosen = [int(epochs)]
    else:
        chosen = [int(p) for p in epochs]
    for p in chosen:
        if not -n_epochs <= p < n_epochs:
            raise InputError(f"epoch position {p} is out of range: the cube has {n_epochs} epochs")
    if not chosen:
        raise InputError(f"the epoch selection {epochs!r} selects nothing")
    return [p % n_epochs for p in chosen]


def cube_epochs(
    ds: xr.Dataset, epochs: EpochSelection = None, max_rows: int = MAX_ROWS
) -> list[int]:
    """Return the positions along ``time`` of ``ds`` that ``epochs`` names.

    As :func:`select_epochs`, and a :class:`TimeRange` selects by MJD.
    """
    n_epochs = check_cube(ds).sizes[TIME]
    if isinstance(epochs, TimeRange):
        if n_epochs <= 0:
            raise InputError("the cube has no epochs to show")
        return epochs.positions(ds[TIME].values)
    return select_epochs(n_epochs, epochs, max_rows)


def check_cube(ds: xr.Dataset) -> xr.DataArray:
    """Return the ``cutout`` variable of ``ds``, or raise InputError if ``ds`` is no cube."""
    cutout = ds.get(CUTOUT_VAR)
    if cutout is None or tuple(cutout.dims) != DIMS:
        raise InputError(
            f"not a finkcube cube: expected a {CUTOUT_VAR!r} variable with dims {DIMS}"
        )
    return cutout


def check_kinds(kinds: Sequence[str]) -> list[str]:
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise InputError(f"unknown or no cutout kinds {bad or kinds}: choose among {KINDS}")
    return kinds


def get_colormap(cmap: str | Colormap, no_data: str = NO_DATA_COLOR) -> Colormap:
    """Return the colormap named ``cmap`` (or ``cmap`` itself), its "bad" colour ``no_data``."""
    import matplotlib as mpl

    if isinstance(cmap, str):
        try:
            cmap = mpl.colormaps[cmap]
        except KeyError as exc:
            raise InputError(
                f"unknown matplotlib colormap {cmap!r}: see matplotlib.colormaps"
            ) from exc
    return cmap.with_extremes(bad=no_data)


def check_stretch(stretch: str) -> str:
    if stretch not in STRETCHES:
        raise InputError(f"unknown stretch {stretch!r}: choose among {STRETCHES}")
    return stretch


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r}: choose among {SCALES}")
    return scale


def display_image(
    image: np.ndarray, stretch: str = "sigmoid", pmin: float = 0.5, pmax: float = 99.5
) -> np.ma.MaskedArray:
    """Return a stamp stretched to ``[0, 1]`` on its own, NaN pixels masked.

    The stretch is the Fink service's, its levels fitted on the finite pixels only
    (:func:`finkcube.viz.scale.stamp_norm`): unlike the service, padding does not count as
    0. A stamp with no finite pixel comes back fully masked (zeros under the mask).
    """
    from finkcube.viz.scale import stamp_norm

    finite = np.isfinite(image)
    if not finite.any():
        return np.ma.masked_array(np.zeros(image.shape), mask=True)
    shown = np.asarray(stamp_norm(image, stretch, pmin, pmax)(np.where(finite, image, 0.0)))
    return np.ma.masked_array(shown, mask=~finite)


def kind_norms(stamps: np.ndarray, stretch: str, pmin: float, pmax: float) -> list[ImageNormalize]:
    """Return one norm per kind, fitted on the finite pixels of every epoch of ``stamps``.

    ``stamps`` is ``(time, kind, y, x)``: a shared scale, so that a value has the same
    colour in every epoch of a kind.
    """
    from finkcube.viz.scale import stamp_norm

    return [stamp_norm(stamps[:, col], stretch, pmin, pmax) for col in range(stamps.shape[1])]


def units_label(ds: xr.Dataset, kind: str, plane: str) -> str:
    """Return a colorbar label: the kind, and the plane's units (``Science [nJy]``)."""
    units = ds[CUTOUT_VAR].attrs.get("units") if plane == DATA_PLANE else None
    units = units or PLANE_UNITS.get(plane)
    name = kind if plane == DATA_PLANE else f"{kind} {plane}"
    return f"{name} [{units}]" if units else name


def stamp_title(kind: str, time: float, band: str) -> str:
    """Return the title of one stamp: its kind, then ``MJD <time> <band>``.

    Examples
    --------
    >>> print(stamp_title("Science", 61090.04812, "i"))
    Science
    MJD 61090.048 i
    """
    return f"{kind}\nMJD {time:.3f} {band}"


def epoch_labels(ds: xr.Dataset, positions: list[int]) -> tuple[np.ndarray, list[str]]:
    times = np.asarray(ds[TIME].values)[positions]
    if BAND in ds.coords:
        bands = as_str(ds[BAND].isel({TIME: positions}).values).tolist()
    else:
        bands = ["?"] * len(positions)
    return times, bands


def load_stamps(ds: xr.Dataset, positions: list[int], kinds: list[str], plane: str) -> np.ndarray:
    cutout = check_cube(ds)
    planes = [str(p) for p in ds[PLANE].values]
    if plane not in planes:
        raise InputError(f"the cube has no plane {plane!r}: it holds {planes}")
    sub = cutout.isel({TIME: positions}).sel({KIND: kinds, PLANE: plane})
    return np.asarray(sub.transpose(TIME, KIND, Y, X).values)


def new_figure(figsize: tuple[float, float], pyplot: bool) -> Figure:
    if pyplot:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, layout="constrained")
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def draw_stamps(
    ds: xr.Dataset,
    fig: Figure | SubFigure,
    positions: list[int],
    kinds: list[str],
    plane: str,
    stretch: str,
    cmap: str | Colormap,
    pmin: float,
    pmax: float,
    scale: str = "shared",
    compass: bool = True,
) -> None:
    """Draw the stamps of ``positions`` (rows) and ``kinds`` (columns) into ``fig``.

    NaN pixels are masked (the colormap's "bad" colour, :data:`NO_DATA_COLOR`); with
    ``scale="shared"`` each column has one scale and a colorbar below it; a stamp whose WCS
    is known gets an N/E compass.
    """
    from matplotlib.colors import Normalize

    from finkcube.viz.compass import draw_compass, stamp_wcs
    from finkcube.viz.scale import stamp_norm

    colormap = get_colormap(cmap)
    stamps = load_stamps(ds, positions, kinds, plane)
    shared = kind_norms(stamps, stretch, pmin, pmax) if scale == "shared" else None
    times, bands = epoch_labels(ds, positions)
    axes = fig.subplots(len(positions), len(kinds), squeeze=False)
    for row, (time, band) in enumerate(zip(times, bands, strict=True)):
        for col, kind in enumerate(kinds):
            ax = axes[row, col]
            stamp = np.ma.masked_invalid(stamps[row, col])
            norm: Normalize = (
                shared[col] if shared is not None else stamp_norm(stamp, stretch, pmin, pmax)
            )
            ax.imshow(stamp, origin="lower", cmap=colormap, norm=norm, interpolation="nearest")
            ax.set_title(stamp_title(kind, float(time), band), fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            wcs = stamp_wcs(ds, positions[row], kind) if compass else None
            if wcs is not None:
                draw_compass(ax, wcs, stamp.shape)
    if shared is None:
        return
    for col, kind in enumerate(kinds):
        bar = fig.colorbar(
            axes[0, col].images[0], ax=axes[:, col].tolist(), location="bottom",
            fraction=0.9 / (len(positions) * CELL[1] + COLORBAR_HEIGHT), aspect=18, pad=0.02,
        )  # fmt: skip
        bar.set_label(units_label(ds, kind, plane), fontsize=8)
        bar.ax.tick_params(labelsize=7)
        bar.ax.locator_params(nbins=4)


def grid_size(n_rows: int, n_cols: int, colorbar: bool = True) -> tuple[float, float]:
    """Return the size in inches of a grid of stamps (and its colorbars)."""
    return (n_cols * CELL[0], n_rows * CELL[1] + (COLORBAR_HEIGHT if colorbar else 0.0))
