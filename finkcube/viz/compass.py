"""The N/E compass of a stamp: where north and east point on the cube's pixel grid.

A raw stamp keeps the orientation of its detector, so north can point anywhere; the compass
shows it when the cube knows the stamp's WCS (a ``planes="all"`` build keeps the header
cards, :func:`finkcube.cube.wcs.epoch_wcs`). An aligned cube (north up) carries one WCS for
every stamp, as FITS cards in the attribute ``aligned_wcs`` of its ``cutout``
(:func:`finkcube.cube.align.aligned_view`). The
directions come from astropy: the sky position of the canvas centre, moved by one
arcsecond towards position angle 0 (north) and 90 degrees (east), back to pixels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np

from finkcube.errors import CubeError
from finkcube.names import ALIGNED_WCS_ATTR, CUTOUT_VAR, WCS_VAR

if TYPE_CHECKING:
    import xarray as xr
    from astropy.wcs import WCS
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

__all__ = ["compass_directions", "draw_compass", "stamp_wcs"]

#: Colour of the compass arrows and letters (outlined in black so that they read on any map).
COMPASS_COLOR: Final = "#ffd21f"
#: Length of the arrows, as a fraction of the panel's side; where they start.
ARROW: Final = 0.14
ANCHOR: Final = (0.8, 0.2)


def stamp_wcs(ds: xr.Dataset, index: int, kind: str) -> WCS | None:
    """Return the WCS of one stamp of ``ds`` in the cube's pixel grid, or None if unknown.

    An aligned cube's WCS (its ``aligned_wcs`` cards) serves every stamp; a raw
    cube's comes from the stamp's own header cards (``planes="all"`` builds only).
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    cards = ds[CUTOUT_VAR].attrs.get(ALIGNED_WCS_ATTR, ds.attrs.get(ALIGNED_WCS_ATTR))
    if isinstance(cards, str) and cards:
        wcs = WCS(fits.Header.fromstring(cards))
    elif WCS_VAR in ds:
        from finkcube.cube.wcs import epoch_wcs

        try:
            wcs = epoch_wcs(ds, index, kind)
        except CubeError:
            return None
    else:
        return None
    return wcs if wcs.has_celestial else None


def compass_directions(wcs: WCS, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Return unit pixel vectors ``(dx, dy)`` of north and east at the centre of the canvas.

    Examples
    --------
    >>> from astropy.wcs import WCS
    >>> wcs = WCS(naxis=2)
    >>> wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    >>> wcs.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    >>> wcs.wcs.crval = [10.0, -20.0]
    >>> {k: v.round(3).tolist() for k, v in compass_directions(wcs, (30, 30)).items()}
    {'N': [0.0, 1.0], 'E': [-1.0, 0.0]}
    """
    import astropy.units as u

    y, x = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    centre = wcs.pixel_to_world(x, y)
    directions = {}
    for name, angle in (("N", 0.0), ("E", 90.0)):
        moved = centre.directional_offset_by(angle * u.deg, 1.0 * u.arcsec)
        px, py = wcs.world_to_pixel(moved)
        vector = np.array([float(px) - x, float(py) - y])
        directions[name] = vector / np.hypot(*vector)
    return directions


def draw_compass(ax: Axes, wcs: WCS, shape: tuple[int, int]) -> list[Artist]:
    """Draw N and E arrows in the lower right of a stamp panel (drawn with ``origin="lower"``).

    Returns the artists drawn (an animation removes them before the next frame).
    """
    from matplotlib import patheffects

    outline = [patheffects.withStroke(linewidth=2.0, foreground="black")]
    artists: list[Artist] = []
    for name, vector in compass_directions(wcs, shape).items():
        tip = (ANCHOR[0] + ARROW * vector[0], ANCHOR[1] + ARROW * vector[1])
        arrow = ax.annotate(
            "", xy=tip, xytext=ANCHOR, xycoords="axes fraction", annotation_clip=False,
            arrowprops={"arrowstyle": "-|>", "color": COMPASS_COLOR, "lw": 1.2,
                        "shrinkA": 0, "shrinkB": 0, "path_effects": outline},
        )  # fmt: skip
        label = (ANCHOR[0] + 1.35 * ARROW * vector[0], ANCHOR[1] + 1.35 * ARROW * vector[1])
        text = ax.text(
            *label, name, transform=ax.transAxes, ha="center", va="center", fontsize=7,
            color=COMPASS_COLOR, fontweight="bold", path_effects=outline, gid=f"compass-{name}",
        )  # fmt: skip
        artists += [arrow, text]
    return artists
