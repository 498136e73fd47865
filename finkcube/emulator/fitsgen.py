"""Generated cutout files that imitate Rubin's: same FITS layout, plausible pixels.

A Rubin cutout is an ``astropy.nddata.CCDData`` written to FITS: a float32 primary data
plane in nJy with ``CUTMINX``, ``CUTMINY``, ``ROTPA``, ``BUNIT`` and a linear WCS without
``CTYPE``; an optional ``MASK`` HDU; an ``UNCERT`` HDU holding the variance; a float64
``PSFIMAGE`` HDU. :func:`generate_cutouts` draws the three kinds of one source from a
:class:`CutoutSpec` (deterministically from the seed and the source id) and writes them in
that layout, card by card, without going through astropy's HDU machinery (it is the hot
path of a benchmark).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from finkcube.names import KINDS, MASK_EXTNAME, PSF_EXTNAME, UNCERT_EXTNAME

__all__ = ["CutoutSpec", "GeneratedCutout", "generate_cutouts", "stamp_side"]

_BLOCK = 2880
_CARD = 80
#: Pixel scale of Rubin's cameras, in degrees.
_PIXEL_SCALE_DEG = 0.2 / 3600.0
#: Side of the PSF images of the Science and Difference cutouts (as in real alerts).
_PSF_SIDE = 41
#: Sides of the Template's PSF image seen in real alerts.
_TEMPLATE_PSF_SIDES = (51, 53, 55)
#: Mask bits written in a generated ``MASK`` plane (LSST mask plane names).
MASK_BAD, MASK_SAT, MASK_DETECTED, MASK_NO_DATA = 1, 4, 32, 256


def stamp_side(bbox_size: int | None, low: int = 30, high: int = 102) -> int:
    """Return the side of a cutout: the footprint's bounding box clamped to ``[low, high]``.

    Examples
    --------
    >>> stamp_side(13), stamp_side(57), stamp_side(400), stamp_side(None)
    (30, 57, 102, 30)
    """
    return min(max(int(bbox_size or 0), low), high)


@dataclass(frozen=True, slots=True)
class CutoutSpec:
    """What the generator needs to draw the three cutouts of one source.

    Parameters
    ----------
    source_id : int
        The diaSourceId (seeds the noise together with the catalog's seed).
    side : int
        Side of the square stamp, in pixels.
    psf_flux, template_flux : float
        Flux (nJy) of the variable point source in the difference, and of the static source
        in the template.
    ra, dec, x, y, rotpa : float
        Position on the sky (degrees), on the detector (pixels) and the rotation angle.
    sigma_science, sigma_template : float
        Per-pixel noise (nJy) of the science and template images.
    nan_edges, with_mask, mismatched : bool
        Blank edges off the detector, a ``MASK`` HDU, a Template of another shape.
    """

    source_id: int
    side: int
    psf_flux: float
    template_flux: float
    ra: float
    dec: float
    x: float
    y: float
    rotpa: float
    sigma_science: float = 40.0
    sigma_template: float = 4.0
    nan_edges: bool = False
    with_mask: bool = False
    mismatched: bool = False


@dataclass(frozen=True, slots=True)
class GeneratedCutout:
    """One generated cutout: the FITS file and its data plane (read-only, native float32)."""

    fits: bytes
    data: np.ndarray


def _format_value(value: object) -> str:
    """A card value in FITS fixed format (numbers right-justified to column 30)."""
    if isinstance(value, bool):
        return ("T" if value else "F").rjust(20)
    if isinstance(value, int):
        return str(value).rjust(20)
    if isinstance(value, float):
        text = repr(value).upper()
        if "." not in text and "E" not in text:
            text += ".0"
        if "E" in text:
            mantissa, exponent = text.split("E")
            sign = exponent[0] if exponent[0] in "+-" else "+"
            exponent = f"{sign}{int(exponent.lstrip('+-')):02d}"
            text = mantissa[: 20 - len(exponent) - 1] + "E" + exponent
        return text[:20].rjust(20)
    text = "'" + str(value).replace("'", "''").ljust(8) + "'"
    return text.ljust(20)


def _card(keyword: str, value: object = None, comment: str = "") -> str:
    """One 80-character header card (the layout astropy writes)."""
    image = f"{keyword:<8}= {_format_value(value)}"
    if comment:
        image += f" / {comment}"
    return image[:_CARD].ljust(_CARD)


@functools.lru_cache(maxsize=512)
def _fixed_card(keyword: str, value: object, comment: str = "") -> str:
    return _card(keyword, value, comment)


def _header(cards: list[str]) -> bytes:
    text = "".join(cards) + "END".ljust(_CARD)
    pad = -len(text) % _BLOCK
    return (text + " " * pad).encode("ascii")


def _data(array: np.ndarray) -> bytes:
    raw = array.tobytes()
    return raw + b"\0" * (-len(raw) % _BLOCK)


_BITPIX = {np.dtype(">f4"): -32, np.dtype(">f8"): -64, np.dtype(">i4"): 32}


def _shape_cards(array: np.ndarray) -> list[str]:
    ny, nx = array.shape
    return [
        _fixed_card("BITPIX", _BITPIX[array.dtype], "array data type"),
        _fixed_card("NAXIS", 2, "number of array dimensions"),
        _fixed_card("NAXIS1", nx),
        _fixed_card("NAXIS2", ny),
    ]


def _extension(array: np.ndarray, name: str, extra: list[str] | None = None) -> bytes:
    cards = [
        _fixed_card("XTENSION", "IMAGE", "Image extension"),
        *_shape_cards(array),
        _fixed_card("PCOUNT", 0, "number of parameters"),
        _fixed_card("GCOUNT", 1, "number of groups"),
        *(extra or []),
        _fixed_card("EXTNAME", name, "extension name"),
    ]
    return _header(cards) + _data(array)


def _primary(array: np.ndarray, spec: CutoutSpec, side: int) -> bytes:
    cutmin_x = int(spec.x) - side // 2
    cutmin_y = int(spec.y) - side // 2
    angle = math.radians(spec.rotpa)
    cos, sin = math.cos(angle) * _PIXEL_SCALE_DEG, math.sin(angle) * _PIXEL_SCALE_DEG
    cards = [
        _fixed_card("SIMPLE", True, "conforms to FITS standard"),
        *_shape_cards(array),
        _fixed_card("EXTEND", True),
        _card("CUTMINX", cutmin_x),
        _card("CUTMINY", cutmin_y),
        _card("ROTPA", round(spec.rotpa, 12), "Pos angle in deg of focal plane +Y wrt North"),
        _fixed_card("BUNIT", "nJy"),
        _fixed_card("WCSAXES", 2, "Number of coordinate axes"),
        _card("CRPIX1", round(spec.x - cutmin_x, 12), "Pixel coordinate of reference point"),
        _card("CRPIX2", round(spec.y - cutmin_y, 12), "Pixel coordinate of reference point"),
        _card("PC1_1", -cos, "Coordinate transformation matrix element"),
        _card("PC1_2", sin, "Coordinate transformation matrix element"),
        _card("PC2_1", sin, "Coordinate transformation matrix element"),
        _card("PC2_2", cos, "Coordinate transformation matrix element"),
        _fixed_card("CDELT1", 1.0, "Coordinate increment at reference point"),
        _fixed_card("CDELT2", 1.0, "Coordinate increment at reference point"),
        _card("CRVAL1", round(spec.ra, 12), "Coordinate value at reference point"),
        _card("CRVAL2", round(spec.dec, 12), "Coordinate value at reference point"),
        _fixed_card("LATPOLE", 90.0, "[deg] Native latitude of celestial pole"),
        _fixed_card("MJDREF", 0.0, "[d] MJD of fiducial time"),
    ]
    return _header(cards) + _data(array)


def _gaussian(side: int, centre_x: float, centre_y: float, sigma: float) -> np.ndarray:
    """A unit-flux circular Gaussian sampled at pixel centres (0-based coordinates)."""
    axis = np.arange(side, dtype=np.float64)
    gx = np.exp(-0.5 * ((axis - centre_x) / sigma) ** 2)
    gy = np.exp(-0.5 * ((axis - centre_y) / sigma) ** 2)
    return np.outer(gy, gx) / (2.0 * math.pi * sigma * sigma)


def _psf_image(side: int, sigma: float, dx: float, dy: float) -> np.ndarray:
    centre = (side - 1) / 2.0
    image = _gaussian(side, centre + dx, centre + dy, sigma)
    return (image / image.sum()).astype(">f8")


def _draw(spec: CutoutSpec, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Draw ``kind -> (data, variance, psf)`` of one source, native float64 planes."""
    rng = np.random.default_rng([seed, spec.source_id])
    side = spec.side
    sigma_psf = rng.uniform(2.2, 3.0)
    sigma_template_psf = rng.uniform(1.9, 2.4)
    dx, dy = rng.uniform(-0.5, 0.5, size=2)
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    sides = {kind: side for kind in KINDS}
    if spec.mismatched:
        sides["Template"] = side + 2 if side <= 100 else side - 2
    psf = _psf_image(_PSF_SIDE, sigma_psf, dx, dy)
    template_psf_side = _TEMPLATE_PSF_SIDES[int(rng.integers(len(_TEMPLATE_PSF_SIDES)))]
    template_psf = _psf_image(template_psf_side, sigma_template_psf, dx, dy)
    var_science = spec.sigma_science**2
    var_template = spec.sigma_template**2
    for kind in KINDS:
        n = sides[kind]
        # CRPIX is x - CUTMINX (1-based): the 0-based centre is one pixel less.
        cx = spec.x - (int(spec.x) - n // 2) - 1.0
        cy = spec.y - (int(spec.y) - n // 2) - 1.0
        static = spec.template_flux * _gaussian(n, cx, cy, sigma_psf)
        variable = spec.psf_flux * _gaussian(n, cx, cy, sigma_psf)
        if kind == "Template":
            model = spec.template_flux * _gaussian(n, cx, cy, sigma_template_psf)
            variance = var_template + 0.002 * np.abs(model)
            kind_psf = template_psf
        elif kind == "Science":
            model = static + variable
            variance = var_science + 0.05 * np.abs(model)
            kind_psf = psf
        else:
            model = variable
            variance = var_science + var_template + 0.05 * np.abs(static + variable)
            kind_psf = psf
        variance = variance * (1.0 + 0.02 * rng.standard_normal((n, n)))
        data = model + np.sqrt(variance) * rng.standard_normal((n, n))
        out[kind] = (data, variance, kind_psf)
    return out


def _blank_edges(spec: CutoutSpec, seed: int, side: int) -> tuple[slice, slice]:
    """Rows and columns off the detector for a ``nan_edges`` source."""
    rng = np.random.default_rng([seed, spec.source_id, 1])
    width = int(rng.integers(3, max(4, side // 3)))
    return slice(0, width), slice(side - int(rng.integers(2, max(3, side // 4))), side)


def _mask(data: np.ndarray, variance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros(data.shape, dtype=np.int32)
    mask[np.isnan(data)] |= MASK_NO_DATA
    mask[np.nan_to_num(data) > 5.0 * np.sqrt(np.nanmedian(variance))] |= MASK_DETECTED
    bad = rng.random(data.shape) < 0.01
    mask[bad] |= MASK_BAD
    return mask


@functools.lru_cache(maxsize=1024)
def generate_cutouts(spec: CutoutSpec, seed: int) -> dict[str, GeneratedCutout]:
    """Draw and write the three cutouts of one generated source.

    Parameters
    ----------
    spec : CutoutSpec
        The source's stamp parameters.
    seed : int
        The catalog's seed; the pixels depend on ``(seed, spec)`` only.

    Returns
    -------
    dict
        ``kind -> GeneratedCutout`` for each of ``Science``, ``Template``, ``Difference``.

    Examples
    --------
    >>> spec = CutoutSpec(1, 31, 5000.0, 20000.0, 10.0, -5.0, 100.3, 200.7, 30.0)
    >>> cutouts = generate_cutouts(spec, 0)
    >>> cutouts["Science"].data.shape, cutouts["Science"].fits[:6]
    ((31, 31), b'SIMPLE')
    """
    drawn = _draw(spec, seed)
    mask_rng = np.random.default_rng([seed, spec.source_id, 2])
    out: dict[str, GeneratedCutout] = {}
    for kind, (data, variance, psf) in drawn.items():
        side = data.shape[0]
        if spec.nan_edges:
            rows, cols = _blank_edges(spec, seed, side)
            for plane in (data, variance):
                plane[rows, :] = np.nan
                plane[:, cols] = np.nan
        data_be = data.astype(">f4")
        variance_be = variance.astype(">f4")
        parts = [_primary(data_be, spec, side)]
        if spec.with_mask:
            parts.append(_extension(_mask(data, variance, mask_rng).astype(">i4"), MASK_EXTNAME))
        uncert = [_fixed_card("UTYPE", "VarianceUncertainty")]
        parts.append(_extension(variance_be, UNCERT_EXTNAME, uncert))
        parts.append(_extension(psf, PSF_EXTNAME))
        native = data_be.astype(np.float32)
        native.setflags(write=False)
        out[kind] = GeneratedCutout(b"".join(parts), native)
    return out
