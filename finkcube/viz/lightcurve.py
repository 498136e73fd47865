"""The light curve of a cube: its per-epoch fluxes by band, and its forced light curve.

Used by :func:`finkcube.viz.plot.plot_overview` beside the stamps, and on its own as
``ds.fink.plot_lightcurve()``. matplotlib is imported only when it draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

from finkcube.cube.columns import as_str
from finkcube.cube.photometry import FP_DIM, FP_PREFIX
from finkcube.errors import InputError
from finkcube.names import BAND, OBJECT_ID
from finkcube.viz.figure import TIME

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes

__all__ = ["BAND_COLORS", "LIGHTCURVE_HEIGHT", "LIGHTCURVE_WIDTH", "plot_lightcurve"]

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
