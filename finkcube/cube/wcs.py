"""The sky coordinates of a cube's stamps: each epoch's WCS, rebuilt in the cube's pixel grid.

A cube built with ``planes="all"`` keeps every stamp's primary header cards (the
``wcs_header`` variable); :func:`epoch_wcs` turns them back into an :class:`astropy.wcs.WCS`
that accounts for the stamp's padding or crop. astropy is imported only when it is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finkcube.cube.canvas import placement
from finkcube.errors import CubeError, InputError
from finkcube.names import KINDS, SIDE, WCS_VAR

if TYPE_CHECKING:
    import xarray as xr
    from astropy.wcs import WCS

__all__ = ["epoch_wcs", "stamp_wcs"]


def epoch_wcs(ds: xr.Dataset, index: int, kind: str) -> WCS:
    """Rebuild the celestial WCS of one epoch's stamp, in the cube's pixel grid.

    Rubin's cutout headers carry a local linear WCS without ``CTYPE``/``CUNIT``; this adds
    ``RA---TAN``/``DEC--TAN`` in degrees and shifts ``CRPIX`` by the stamp's offset in the
    canvas (its padding, or minus its crop), so pixel ``(x, y)`` of ``ds.cutout`` maps to
    the sky position of that pixel in the original file.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube built with ``planes="all"``.
    index : int
        The epoch's position along ``time``.
    kind : str
        ``"Science"``, ``"Template"`` or ``"Difference"``.

    Returns
    -------
    astropy.wcs.WCS

    Raises
    ------
    CubeError
        When the cube keeps no WCS cards (``planes="data"``) or this stamp had none.
    InputError
        For an unknown kind.
    """
    if kind not in KINDS:
        raise InputError(f"invalid kind {kind!r}: expected one of {', '.join(KINDS)}")
    if WCS_VAR not in ds:
        raise CubeError("this cube keeps no WCS cards: build it with planes='all'")
    epoch = ds.isel(time=index)
    text = str(epoch[WCS_VAR].sel(kind=kind).values.item())
    if not text:
        raise CubeError(f"epoch {index} ({kind}) of this cube has no WCS cards")
    return stamp_wcs(text, int(epoch[SIDE].values), ds.sizes["x"])


def stamp_wcs(text: str, side: int, canvas: int) -> WCS:
    """Return the celestial WCS of a stamp of ``side`` placed in a ``canvas``-pixel cube.

    The engine of :func:`epoch_wcs`, for callers that hold the header text and side already
    (aligning every epoch of a cube reads them once).

    Parameters
    ----------
    text : str
        The stamp's primary header cards (``Header.tostring()``).
    side, canvas : int
        The stamp's own side and the cube's canvas side, in pixels.

    Returns
    -------
    astropy.wcs.WCS
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    header = fits.Header.fromstring(text)
    _, _, offset = placement(side, canvas)
    for axis, ctype in ((1, "RA---TAN"), (2, "DEC--TAN")):
        header.setdefault(f"CTYPE{axis}", ctype)
        header.setdefault(f"CUNIT{axis}", "deg")
        header[f"CRPIX{axis}"] = header.get(f"CRPIX{axis}", 0.0) + offset
        header[f"NAXIS{axis}"] = canvas
    return WCS(header)
