"""Aligned cubes: every epoch and kind resampled onto one sky grid, north up, east left.

Rubin cuts each stamp from its visit's own image grid, so north points another way in
every epoch and pixel ``(y, x)`` of two epochs is not the same patch of sky.
:func:`align_cube` resamples the stamps of a cube that knows each epoch's WCS (its
``wcs_header`` variable) onto one gnomonic (TAN) grid with ``reproject`` (astropy's
resampling package): north along +y, east along -x, the object's mean position (or a given
one) at the canvas centre, 0.2"/px unless told otherwise. The raw ``cutout`` is kept as it
is; the result goes into the ``aligned`` variable (and ``aligned_psf``), with its own
``ay``/``ax`` grid, and the grid's WCS as FITS header cards in the attribute
``aligned_wcs``.

Resampling rules, per epoch and kind, with ``a`` the ratio of the output to the input pixel
area (1 at the native scale):

- ``data``: bilinear interpolation, times ``a`` (the pixels are fluxes per pixel, so sums
  over the source are kept);
- ``variance``: the same bilinear interpolation, times ``a`` (not ``a**2``): summed over an
  aperture it gives the variance of the aperture's flux sum as in the raw stamp (for
  uncorrelated raw noise). Per pixel it bounds the resampled pixel's own variance from
  above (bilinear weights ``w`` give ``sum(w**2 v) <= sum(w v)``): resampled neighbours
  are correlated, which one plane cannot say;
- ``mask``: nearest neighbour on the bit values, which stay exact;
- ``psf``: the same bilinear resampling through the same rotation and scale, about the PSF
  image's centre, times ``a``, so it keeps unit sum and turns as the stamp does.

Pixels the raw stamp does not cover are NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import xarray as xr

from finkcube.cube.wcs import stamp_wcs
from finkcube.errors import CubeError, FinkcubeWarning, InputError
from finkcube.names import (
    ALIGNED_DIMS,
    ALIGNED_PSF_VAR,
    ALIGNED_VAR,
    ALIGNED_WCS_ATTR,
    CROPPED,
    CUTOUT_VAR,
    KINDS,
    MASK_PLANE,
    PSF_DIMS,
    PSF_VAR,
    SIDE,
    SOURCE_ID,
    WCS_VAR,
)

if TYPE_CHECKING:
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS

__all__ = [
    "NATIVE_SCALE",
    "align_cube",
    "aligned_view",
    "aligned_wcs",
    "attach_headers",
    "sky_grid",
]

#: Rubin's pixel scale, arcseconds per pixel: the aligned grid's default.
NATIVE_SCALE: Final = 0.2


def sky_grid(ra: float, dec: float, size: int, scale: float = NATIVE_SCALE) -> WCS:
    """Return a ``size x size`` TAN grid centred on ``(ra, dec)``, north up, east left.

    Parameters
    ----------
    ra, dec : float
        The centre, degrees (ICRS); it sits at the canvas centre, pixel ``(size - 1) / 2``
        (0-based) on both axes.
    size : int
        The side in pixels.
    scale : float
        Arcseconds per pixel.

    Returns
    -------
    astropy.wcs.WCS

    Examples
    --------
    >>> w = sky_grid(10.0, -5.0, 41)
    >>> [float(v) for v in w.wcs_pix2world([[20.0, 20.0]], 0)[0]]
    [10.0, -5.0]
    """
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = [float(ra), float(dec)]
    wcs.wcs.crpix = [(size + 1) / 2.0] * 2
    wcs.wcs.cdelt = [-scale / 3600.0, scale / 3600.0]
    wcs.pixel_shape = (size, size)
    return wcs


def aligned_wcs(ds: xr.Dataset) -> WCS:
    """Return the celestial WCS of an aligned cube's ``aligned`` grid (pixel ``(ax, ay)``).

    Raises
    ------
    CubeError
        When the cube is not aligned.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    text = ds.attrs.get(ALIGNED_WCS_ATTR)
    if not text:
        raise CubeError("this cube is not aligned: call ds.fink.align() first")
    return WCS(fits.Header.fromstring(str(text)))


def aligned_view(ds: xr.Dataset) -> xr.Dataset:
    """Return the aligned stamps as a cube of their own: ``cutout`` is ``aligned``.

    Code that reads a cube's ``cutout`` (plots, animations, training sets) then works on
    the aligned stamps unchanged: ``ay``/``ax`` become ``y``/``x``, ``aligned_psf`` becomes
    ``psf``, the per-epoch WCS cards and stamp sides are dropped, and the grid's WCS is
    the attribute ``aligned_wcs`` of the cube and of its ``cutout``.

    Raises
    ------
    CubeError
        When the cube is not aligned.
    """
    if ALIGNED_VAR not in ds or not ds.attrs.get(ALIGNED_WCS_ATTR):
        raise CubeError("this cube is not aligned: call ds.fink.align() first")
    # the raw stamps, and their own sides (the view's stamps fill its canvas)
    raw = [name for name in (CUTOUT_VAR, PSF_VAR, WCS_VAR, SIDE, CROPPED) if name in ds]
    view = ds.drop_vars(raw).drop_dims(["y", "x"], errors="ignore")
    renamed = {ALIGNED_VAR: CUTOUT_VAR, "ay": "y", "ax": "x"}
    if ALIGNED_PSF_VAR in ds:
        renamed[ALIGNED_PSF_VAR] = PSF_VAR
    view = view.rename(renamed)
    view[CUTOUT_VAR].attrs[ALIGNED_WCS_ATTR] = ds.attrs[ALIGNED_WCS_ATTR]
    return view


def attach_headers(ds: xr.Dataset, headers: Mapping[int, str | None]) -> xr.Dataset:
    """Return ``ds`` with a ``wcs_header`` variable from one header per diaSourceId.

    The three kinds of a Rubin alert share one WCS, so one header per source (that of its
    Science FITS file) serves all three: this is how a ``planes="data"`` cube learns its
    WCS with one FITS request per source.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube.
    headers : mapping of int to str or None
        Header cards (``Header.tostring()``) by diaSourceId; a missing one is ``""``.
    """
    texts = [headers.get(int(sid)) or "" for sid in ds[SOURCE_ID].values]
    cards = np.array([[text] * len(KINDS) for text in texts], dtype=object).reshape(-1, 3)
    return ds.assign({WCS_VAR: (("time", "kind"), cards, {"long_name": "FITS WCS cards"})})


def _mean_position(ras: np.ndarray, decs: np.ndarray) -> tuple[float, float]:
    """The mean of sky positions as the direction of their mean unit vector (degrees)."""
    ra, dec = np.radians(ras), np.radians(decs)
    x, y, z = np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)
    mx, my, mz = x.mean(), y.mean(), z.mean()
    return float(np.degrees(np.arctan2(my, mx)) % 360.0), float(
        np.degrees(np.arctan2(mz, np.hypot(mx, my)))
    )


def _center(ds: xr.Dataset, wcs: list[Any], center: Any) -> tuple[float, float]:
    if center is not None:
        if hasattr(center, "icrs"):
            icrs = center.icrs
            return float(icrs.ra.deg), float(icrs.dec.deg)
        try:
            ra, dec = (float(v) for v in center)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"invalid center {center!r}: expected a SkyCoord or (ra, dec)"
            ) from exc
        return ra, dec
    if "ra" in ds.coords and "dec" in ds.coords:
        ras, decs = np.asarray(ds["ra"].values, float), np.asarray(ds["dec"].values, float)
        good = np.isfinite(ras) & np.isfinite(decs)
        if good.any():
            return _mean_position(ras[good], decs[good])
    crvals = np.array([w.wcs.crval for w in wcs if w is not None], dtype=float)
    return _mean_position(crvals[:, 0], crvals[:, 1])


def _area(wcs: WCS) -> float:
    """The pixel area (square degrees) of a linear-about-CRPIX WCS."""
    return float(abs(np.linalg.det(wcs.pixel_scale_matrix)))


def _epoch_wcs(headers: np.ndarray, sides: np.ndarray, canvas: int) -> list[dict[str, Any]]:
    """Per epoch, ``{text: (wcs, kind indices)}``: the kinds sharing one header share a call."""
    out: list[dict[str, Any]] = []
    for i, row in enumerate(headers):
        groups: dict[str, Any] = {}
        for k, text in enumerate(row):
            if text:
                if text not in groups:
                    groups[str(text)] = (stamp_wcs(str(text), int(sides[i]), canvas), [])
                groups[str(text)][1].append(k)
        out.append(groups)
    return out


def align_cube(
    ds: xr.Dataset,
    *,
    center: SkyCoord | tuple[float, float] | None = None,
    scale: float = NATIVE_SCALE,
    size: int | None = None,
) -> xr.Dataset:
    """Resample every epoch and kind of a cube onto one sky grid (the ``aligned`` variable).

    Parameters
    ----------
    ds : xarray.Dataset
        A cube with each epoch's WCS (built with ``planes="all"`` or ``align="sky"``); it
        is read into memory.
    center : SkyCoord or (ra, dec), optional
        The sky position at the canvas centre (degrees); by default the mean of the epochs'
        ``ra``/``dec`` (else of their WCS reference points).
    scale : float
        Arcseconds per pixel of the grid (Rubin's 0.2 by default).
    size : int, optional
        The grid's side in pixels; by default the cube's canvas side.

    Returns
    -------
    xarray.Dataset
        ``ds`` with ``aligned`` ``(time, kind, ay, ax, plane)`` float32, ``aligned_psf``
        ``(time, kind, psf_y, psf_x)`` when the cube has PSFs, and the attribute
        ``aligned_wcs`` (FITS cards of the grid, ``ax`` along FITS axis 1). The rules of
        the resampling are in the module docstring. An epoch without WCS stays NaN, with
        one warning.

    Raises
    ------
    CubeError
        When the cube keeps no WCS cards.
    InputError
        For a bad ``scale`` or ``size``.
    """
    if WCS_VAR not in ds:
        raise CubeError("aligning needs each epoch's WCS: build with planes='all' or align='sky'")
    if not (isinstance(scale, int | float) and np.isfinite(scale) and scale > 0):
        raise InputError(f"invalid scale {scale!r}: expected arcseconds per pixel, > 0")
    canvas = int(ds.sizes["x"])
    side = canvas if size is None else int(size)
    if isinstance(size, bool) or side < 1:
        raise InputError(f"invalid size {size!r}: expected a positive number of pixels")
    names = [str(p) for p in ds["plane"].values]
    cube = np.asarray(ds[CUTOUT_VAR].values, dtype=np.float32)
    groups = _epoch_wcs(ds[WCS_VAR].values, ds[SIDE].values, canvas)
    ra, dec = _center(ds, [w for g in groups for w, _ in g.values()] or [None], center)
    target = sky_grid(ra, dec, side, scale)
    smooth = [p for p, name in enumerate(names) if name != MASK_PLANE]
    mask = names.index(MASK_PLANE) if MASK_PLANE in names else None
    psf = ds[PSF_VAR].values if PSF_VAR in ds else None
    out = np.full((cube.shape[0], len(KINDS), side, side, len(names)), np.nan, np.float32)
    out_psf = None if psf is None else np.full(psf.shape, np.nan)
    psf_grid = None if psf is None else _psf_grid(target, psf.shape[-1])
    blank = 0
    for i, epoch in enumerate(groups):
        blank += not epoch
        for wcs, kinds in epoch.values():
            ratio = _area(target) / _area(wcs)
            stamps = cube[i, kinds]  # (kinds, y, x, planes)
            planes = np.moveaxis(stamps[..., smooth], -1, 1)  # (kinds, planes, y, x)
            done = _resample(planes, wcs, target, "bilinear") * ratio
            bits = None if mask is None else _resample(stamps[..., mask], wcs, target)
            for j, k in enumerate(kinds):
                out[i, k][..., smooth] = np.moveaxis(done[j], 0, -1)
                if bits is not None and mask is not None:
                    out[i, k, :, :, mask] = bits[j]
            if psf is not None and out_psf is not None and psf_grid is not None:
                source = wcs.deepcopy()  # the epoch's rotation and scale, about the PSF centre
                source.wcs.crpix, source.wcs.crval = psf_grid.wcs.crpix, target.wcs.crval
                out_psf[i, kinds] = _resample(psf[i, kinds], source, psf_grid, "bilinear") * ratio
    if blank:
        warnings.warn(f"{blank} epoch(s) without WCS cards stay NaN in {ALIGNED_VAR!r}",
                      FinkcubeWarning, stacklevel=2)  # fmt: skip
    return _with_aligned(ds, out, out_psf, target)


def _psf_grid(target: WCS, side: int) -> WCS:
    """The aligned grid with its reference point at the centre of a PSF image of ``side``."""
    grid = target.deepcopy()
    grid.wcs.crpix = [(side + 1) / 2.0] * 2
    grid.pixel_shape = (side, side)
    return grid


def _resample(stack: np.ndarray, wcs: WCS, target: WCS, order: str = "nearest-neighbor") -> Any:
    """``reproject_interp`` of a stack of images ``(..., y, x)`` onto ``target``'s grid."""
    from reproject import reproject_interp

    ny, nx = target.pixel_shape[1], target.pixel_shape[0]
    # No round-trip check of the coordinates: a stamp spans seconds of arc, far inside
    # where a TAN projection is one-to-one, and the check doubles the cost.
    done = reproject_interp(
        (stack, wcs), target, shape_out=(*stack.shape[:-2], ny, nx), order=order,
        return_footprint=False, roundtrip_coords=False,
    )  # fmt: skip
    return done


def _with_aligned(
    ds: xr.Dataset, out: np.ndarray, out_psf: np.ndarray | None, target: WCS
) -> xr.Dataset:
    header = target.to_header()
    header["NAXIS1"], header["NAXIS2"] = target.pixel_shape
    old = [name for name in (ALIGNED_VAR, ALIGNED_PSF_VAR) if name in ds]
    new: dict[str, Any] = {
        ALIGNED_VAR: (ALIGNED_DIMS, out, {
            "long_name": "cutout pixels resampled onto one sky grid (aligned_wcs)",
            "resampling": "bilinear x area ratio (data, variance); nearest (mask)",
        }),
    }  # fmt: skip
    if out_psf is not None:
        new[ALIGNED_PSF_VAR] = (PSF_DIMS, out_psf, {"long_name": "PSF turned to the sky grid"})
    aligned = ds.drop_vars(old).assign(new)
    aligned.attrs[ALIGNED_WCS_ATTR] = header.tostring()
    return aligned
