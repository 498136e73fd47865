"""Stamp panels, the pieces shared by :mod:`finkcube.viz.plot` and :mod:`finkcube.viz.animate`.

Choosing epochs, checking the drawing options, loading stamps and their labels from a cube,
stretching one stamp as the Fink service does, and drawing a grid of them. matplotlib is
imported only by the functions that draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

from finkcube.cube.columns import as_str
from finkcube.errors import InputError
from finkcube.names import BAND, CUTOUT_VAR, DIMS, KINDS, STRETCHES

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure, SubFigure

__all__ = [
    "CELL",
    "MAX_ROWS",
    "EpochSelection",
    "check_cube",
    "check_kinds",
    "check_stretch",
    "display_image",
    "draw_stamps",
    "epoch_labels",
    "get_colormap",
    "grid_size",
    "load_stamps",
    "new_figure",
    "select_epochs",
    "stamp_title",
]

TIME, KIND, Y, X, PLANE = DIMS
#: Inches per stamp in a grid (width, height: the height leaves room for a 2-line title).
CELL: Final = (2.0, 2.5)
#: Default number of rows of a grid when ``epochs`` is not given.
MAX_ROWS: Final = 6

EpochSelection = int | slice | Sequence[int] | None


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


def get_colormap(cmap: str | Colormap) -> Colormap:
    import matplotlib as mpl

    if not isinstance(cmap, str):
        return cmap
    try:
        return mpl.colormaps[cmap]
    except KeyError as exc:
        raise InputError(f"unknown matplotlib colormap {cmap!r}: see matplotlib.colormaps") from exc


def check_stretch(stretch: str) -> str:
    if stretch not in STRETCHES:
        raise InputError(f"unknown stretch {stretch!r}: choose among {STRETCHES}")
    return stretch


def display_image(
    image: np.ndarray, stretch: str = "sigmoid", pmin: float = 0.5, pmax: float = 99.5
) -> np.ma.MaskedArray:
    """Return a stamp stretched to ``[0, 1]`` as the Fink service does, NaN pixels masked.

    A stamp with no finite pixel comes back fully masked, without calling the stretch.
    """
    from finkcube.stretch import stretch_image

    finite = np.isfinite(image)
    if not finite.any():
        # Zeros under the mask: masked_all's uninitialised memory would upset colormaps.
        return np.ma.masked_array(np.zeros(image.shape), mask=True)
    return np.ma.masked_array(stretch_image(image, stretch, pmin, pmax), mask=~finite)


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
) -> None:
    colormap = get_colormap(cmap)
    stamps = load_stamps(ds, positions, kinds, plane)
    times, bands = epoch_labels(ds, positions)
    axes = fig.subplots(len(positions), len(kinds), squeeze=False)
    for row, (time, band) in enumerate(zip(times, bands, strict=True)):
        for col, kind in enumerate(kinds):
            ax = axes[row, col]
            image = display_image(stamps[row, col], stretch, pmin, pmax)
            ax.imshow(image, origin="lower", cmap=colormap, vmin=0.0, vmax=1.0)
            ax.set_title(stamp_title(kind, float(time), band), fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])


def grid_size(n_rows: int, n_cols: int) -> tuple[float, float]:
    return (n_cols * CELL[0], n_rows * CELL[1])
