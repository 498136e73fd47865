"""Pure FITS decoding: one Rubin cutout file's bytes in, one :class:`~finkcube.cutouts.Stamp` out.

A Rubin cutout file is a CCDData serialisation: the data in the primary HDU (with the WCS
cards), then ``UNCERT`` (an uncertainty, variance by default), an optional ``MASK`` and the
``PSFIMAGE`` extensions. :func:`looks_like_fits` and a header walk catch error texts, HTML
pages, truncated files and images larger than a cutout can be (from ``NAXISn``, or
``ZNAXISn`` for a tile-compressed HDU, whose data would only be sized when decompressed)
before astropy (imported only when a file is decoded) reads one.
"""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np

from finkcube.cutouts import Stamp
from finkcube.errors import DecodeError, NotFoundError, quote_body
from finkcube.names import (
    DATA_PLANE,
    MASK_EXTNAME,
    MASK_PLANE,
    MAX_SIDE,
    MIN_SIDE,
    PSF_EXTNAME,
    UNCERT_EXTNAME,
    VARIANCE_PLANE,
)
from finkcube.service.limits import MAX_PSF_SIDE

__all__ = ["decode_fits", "looks_like_fits"]

_NATIVE_F32 = np.dtype(np.float32)
_NATIVE_F64 = np.dtype(np.float64)
#: The first card of a FITS header: a keyword of up to 8 characters, padded, then "= ".
_FITS_CARD = re.compile(rb"[A-Z0-9_-]{1,8} {0,7}= ")
_FITS_BLOCK = 2880
_SIZE_KEYWORD = re.compile(rb"BITPIX|Z?NAXIS[0-9]*|PCOUNT|GCOUNT")
_INTEGER = re.compile(rb"[+-]?[0-9]+")
#: The most axes a FITS HDU has (the standard's limit).
_MAX_AXES = 999
_STRING = re.compile(rb"'((?:[^']|'')*)'")


def looks_like_fits(content: bytes) -> bool:
    """Tell whether ``content`` starts like a FITS file (a header card, whole 2880-byte blocks).

    Examples
    --------
    >>> looks_like_fits(b"SIMPLE  =                    T".ljust(2880))
    True
    >>> looks_like_fits(b"<html>Internal Server Error</html>")
    False
    """
    if content.startswith(b"SIMPLE  ="):
        return True
    # ignore_missing_simple: a file whose first card is another keyword, as long as the
    # bytes are header cards in whole FITS blocks.
    return (
        len(content) >= _FITS_BLOCK
        and len(content) % _FITS_BLOCK == 0
        and _FITS_CARD.match(content) is not None
        and content[:80].isascii()
    )


def decode_fits(content: bytes, *, kind: str, source_id: int) -> Stamp:
    """Decode one Rubin cutout FITS file into a :class:`Stamp`.

    Parameters
    ----------
    content : bytes
        The reply body of an ``output-format=FITS`` request.
    kind : str
        The kind asked for.
    source_id : int
        The ``diaSourceId`` asked for (used in error messages).

    Returns
    -------
    Stamp
        Planes ``"data"`` (primary HDU, float32 native), ``"variance"`` (``UNCERT`` HDU,
        float32) when present, ``"mask"`` (``MASK`` HDU, integer) when present; ``psf``
        from the ``PSFIMAGE`` HDU (float64); ``header`` the primary header's cards.

    Raises
    ------
    NotFoundError
        For an empty body.
    DecodeError
        When the bytes are not a FITS file (an error text or an HTML page in a 200 reply,
        quoted), hold no 2-D image, or an image whose headers give it a shape a Rubin
        cutout cannot have: a cutout plane not square or of a side outside
        :data:`~finkcube.names.MIN_SIDE` .. :data:`~finkcube.names.MAX_SIDE`, a PSF image
        (or any other) of a side over :data:`~finkcube.service.limits.MAX_PSF_SIDE`. This
        is checked on the headers, before any array is allocated.

    Examples
    --------
    >>> from astropy.io import fits
    >>> buffer = io.BytesIO()
    >>> fits.HDUList([fits.PrimaryHDU(np.ones((30, 30), ">f4"))]).writeto(buffer)
    >>> stamp = decode_fits(buffer.getvalue(), kind="Science", source_id=1)
    >>> stamp.planes["data"].dtype, stamp.side, list(stamp.planes)
    (dtype('float32'), 30, ['data'])
    """
    if content is None or not content.strip():
        raise NotFoundError(f"no alert with diaSourceId {source_id}")
    what = f"{kind} FITS cutout of diaSourceId {source_id}"
    if not looks_like_fits(content):
        raise DecodeError(f"{what} is not a FITS file: {quote_body(content)}")
    announced, images, primary_end = _walk_headers(content)
    _check_images(images, what)
    if announced > len(content):
        raise DecodeError(
            f"{what} is truncated: {len(content)} bytes where its headers announce {announced}"
        )
    from astropy.io import fits  # astropy.io.fits is slow to import; only FITS needs it

    # The primary header's cards as the file holds them: what astropy's Header.tostring()
    # gives, without rendering every card again.
    header = content[:primary_end].decode("ascii", "replace")
    try:
        with fits.open(io.BytesIO(content), ignore_missing_simple=True) as hdul:
            return _stamp_from_hdul(hdul, kind=kind, what=what, header=header)
    except DecodeError:
        raise
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise DecodeError(f"{what} cannot be read ({exc}): {quote_body(content)}") from exc


def _check_images(images: list[tuple[str, tuple[int, ...]]], what: str) -> None:
    """Refuse an HDU whose shape (from its headers) no Rubin cutout file holds."""
    for index, (name, shape) in enumerate(images):
        if not shape:
            continue
        label = f"HDU {index}" + (f" ({name})" if name else "")
        if index == 0 or name in (UNCERT_EXTNAME, MASK_EXTNAME):
            if len(shape) != 2 or shape[0] != shape[1] or not MIN_SIDE <= shape[0] <= MAX_SIDE:
                raise DecodeError(
                    f"{what}: {label} is {'x'.join(map(str, shape))} pixels, not a cutout "
                    f"(square, side {MIN_SIDE} to {MAX_SIDE})"
                )
        elif max(shape) > MAX_PSF_SIDE or len(shape) > 3:
            raise DecodeError(
                f"{what}: {label} is {'x'.join(map(str, shape))} pixels, larger than a "
                f"cutout file holds (side at most {MAX_PSF_SIDE})"
            )


def _walk_headers(content: bytes) -> tuple[int, list[tuple[str, tuple[int, ...]]], int]:
    """Return how many bytes the FITS headers in ``content`` announce (headers + data),
    each HDU's ``EXTNAME`` and image shape (``ZNAXISn`` for a compressed image), and where
    the primary header ends (its END card's block included).

    Walking the headers ourselves finds a truncated file before astropy does (astropy only
    warns about it, and a warnings filter is not thread-safe), and an image too large
    before its data is allocated (astropy sizes a compressed image only on decompressing).
    """
    pos, size, primary_end = 0, len(content), 0
    images: list[tuple[str, tuple[int, ...]]] = []
    while pos < size and _FITS_CARD.match(content, pos):
        cards: dict[bytes, int] = {}
        name, compressed, table = "", False, False
        while True:  # header blocks until the END card
            block = content[pos : pos + _FITS_BLOCK]
            pos += _FITS_BLOCK
            if len(block) < _FITS_BLOCK:
                return pos, images, primary_end or pos
            ended = False
            for start in range(0, _FITS_BLOCK, 80):
                card = block[start : start + 80]
                keyword = card[:8].rstrip()
                if keyword == b"END":
                    ended = True
                    break
                if card[8:10] != b"= ":
                    continue
                if _SIZE_KEYWORD.fullmatch(keyword):
                    value = card[10:].split(b"/", 1)[0].strip()
                    if _INTEGER.fullmatch(value):
                        cards[keyword] = int(value)
                elif keyword == b"ZIMAGE":
                    compressed = card[10:].split(b"/", 1)[0].strip() == b"T"
                elif keyword == b"XTENSION":
                    table = b"TABLE" in card[10:].split(b"/", 1)[0]  # TABLE or BINTABLE
                elif keyword == b"EXTNAME" and (text := _STRING.search(card, 10)):
                    name = text.group(1).decode("ascii", "replace").strip().upper()
            if ended:
                break
        primary_end = primary_end or pos
        if compressed or not table:  # an image: its shape, numpy's axis order
            prefix = b"ZNAXIS" if compressed else b"NAXIS"
            axes = range(min(cards.get(prefix, 0), _MAX_AXES), 0, -1)
            images.append((name, tuple(cards.get(b"%s%d" % (prefix, a), 0) for a in axes)))
        naxis = min(cards.get(b"NAXIS", 0), _MAX_AXES)
        pixels = 0
        if naxis:
            pixels = 1
            for axis in range(1, naxis + 1):
                pixels *= cards.get(b"NAXIS%d" % axis, 0)
        nbytes = abs(cards.get(b"BITPIX", 8)) // 8
        data = nbytes * cards.get(b"GCOUNT", 1) * (cards.get(b"PCOUNT", 0) + pixels)
        pos += -(-data // _FITS_BLOCK) * _FITS_BLOCK  # data padded to whole blocks
    return pos, images, primary_end


def _stamp_from_hdul(hdul: Any, *, kind: str, what: str, header: str) -> Stamp:
    primary = hdul[0]
    data = primary.data
    if data is None or data.ndim != 2:
        raise DecodeError(f"{what}: the primary HDU holds no 2-D image")
    planes: dict[str, np.ndarray] = {DATA_PLANE: np.array(data, dtype=_NATIVE_F32)}
    names = {hdu.name.upper(): hdu for hdu in hdul[1:]}
    if UNCERT_EXTNAME in names and names[UNCERT_EXTNAME].data is not None:
        planes[VARIANCE_PLANE] = _variance(names[UNCERT_EXTNAME])
    if MASK_EXTNAME in names and names[MASK_EXTNAME].data is not None:
        mask = names[MASK_EXTNAME].data
        planes[MASK_PLANE] = np.array(mask, dtype=mask.dtype.newbyteorder("="))
    psf = None
    if PSF_EXTNAME in names and names[PSF_EXTNAME].data is not None:
        psf = np.array(names[PSF_EXTNAME].data, dtype=_NATIVE_F64)
    return Stamp(kind=kind, planes=planes, psf=psf, header=header)


def _variance(hdu: Any) -> np.ndarray:
    """Return an ``UNCERT`` HDU as a variance plane, whatever uncertainty CCDData wrote."""
    values = np.array(hdu.data, dtype=_NATIVE_F32)
    utype = str(hdu.header.get("UTYPE", "VarianceUncertainty"))
    if utype == "StdDevUncertainty":
        return values * values
    if utype == "InverseVariance":
        with np.errstate(divide="ignore"):
            return np.float32(1.0) / values
    return values
