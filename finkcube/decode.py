"""Pure decoding of the Fink LSST API's replies: bytes in, numpy planes and records out.

Nothing here opens a socket. :mod:`finkcube.client` hands the reply bodies to these
functions; :mod:`finkcube.cube` stacks the value objects they return.

Two value objects carry cutouts between modules:

- :class:`Stamp`: one kind (``Science``, ``Template`` or ``Difference``) of one alert, as
  per-pixel planes (``"data"`` always; ``"variance"`` and maybe ``"mask"`` from FITS), plus
  the PSF image and the primary header cards when decoded from FITS;
- :class:`SourceCutouts`: the three kinds of one alert (one ``diaSourceId``), checked to
  share one square shape.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from finkcube._types import KINDS, cutout_key
from finkcube.errors import CubeError, DecodeError, NotFoundError, quote_body

__all__ = [
    "SourceCutouts",
    "Stamp",
    "decode_cutout_arrays",
    "decode_fits",
    "decode_json",
    "decode_source_records",
    "looks_like_fits",
    "stamps_from_arrays",
    "stamps_from_fits",
]

#: Names of the FITS extensions of a Rubin cutout file (CCDData serialisation).
# TODO(move to _types)
UNCERT_EXTNAME = "UNCERT"
MASK_EXTNAME = "MASK"
PSF_EXTNAME = "PSFIMAGE"

_NATIVE_F32 = np.dtype(np.float32)
_NATIVE_F64 = np.dtype(np.float64)
#: The first card of a FITS header: a keyword of up to 8 characters, padded, then "= ".
_FITS_CARD = re.compile(rb"[A-Z0-9_-]{1,8} {0,7}= ")
_FITS_BLOCK = 2880
_SIZE_KEYWORD = re.compile(rb"BITPIX|NAXIS[0-9]*|PCOUNT|GCOUNT")
_INTEGER = re.compile(rb"[+-]?[0-9]+")


# --------------------------------------------------------------------------- value objects


@dataclass(frozen=True, slots=True)
class Stamp:
    """One cutout kind of one alert, as per-pixel planes.

    Parameters
    ----------
    kind : str
        One of :data:`finkcube._types.KINDS`.
    planes : mapping of str to numpy.ndarray
        ``"data"`` always (float32, native byte order); ``"variance"`` (float32) and maybe
        ``"mask"`` (integer) when decoded from FITS. All 2-D, of one shape.
    psf : numpy.ndarray or None, optional
        The PSF image at the source (float64, 2-D, its own shape); FITS only.
    header : str or None, optional
        The primary HDU's header cards (``astropy.io.fits.Header.tostring()``); FITS only.

    Examples
    --------
    >>> stamp = Stamp("Science", {"data": np.zeros((30, 30), np.float32)})
    >>> stamp.side
    30
    """

    kind: str
    planes: Mapping[str, np.ndarray]
    psf: np.ndarray | None = None
    header: str | None = None

    def __post_init__(self) -> None:
        if "data" not in self.planes:
            raise CubeError(
                f"{self.kind} stamp has planes {sorted(self.planes)}: a 'data' plane is required"
            )

    @property
    def side(self) -> int:
        """The stamp's side in pixels (the data plane's first dimension)."""
        return int(self.planes["data"].shape[0])


@dataclass(frozen=True, slots=True)
class SourceCutouts:
    """The three cutout kinds of one alert, in :data:`finkcube._types.KINDS` order.

    Parameters
    ----------
    source_id : int
        The alert's ``diaSourceId``.
    stamps : tuple of Stamp
        One stamp per kind, in ``KINDS`` order.

    Raises
    ------
    CubeError
        When the kinds are not exactly ``KINDS`` in order, a plane is not a square 2-D
        array, or the planes and kinds do not all share one shape.

    Examples
    --------
    >>> sc = stamps_from_arrays(7, {k: np.zeros((31, 31), np.float32) for k in KINDS})
    >>> sc.side, [s.kind for s in sc.stamps]
    (31, ['Science', 'Template', 'Difference'])
    """

    source_id: int
    stamps: tuple[Stamp, ...]

    def __post_init__(self) -> None:
        kinds = tuple(stamp.kind for stamp in self.stamps)
        if kinds != KINDS:
            raise CubeError(
                f"diaSourceId {self.source_id}: stamps of kinds {list(kinds)}, "
                f"expected exactly {list(KINDS)} in that order"
            )
        shapes = {
            f"{stamp.kind}.{name}": plane.shape
            for stamp in self.stamps
            for name, plane in stamp.planes.items()
        }
        first = next(iter(shapes.values()))
        if len(first) != 2 or first[0] != first[1] or len(set(shapes.values())) != 1:
            described = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
            raise CubeError(
                f"diaSourceId {self.source_id}: cutout planes must be square 2-D arrays "
                f"of one shape, got {described}"
            )

    @property
    def side(self) -> int:
        """The common side of the stamps in pixels."""
        return self.stamps[0].side


# --------------------------------------------------------------------------- JSON


def decode_json(content: bytes | str) -> Any:
    """Parse a JSON reply, accepting the bare ``NaN`` / ``Infinity`` tokens the API writes.

    Parameters
    ----------
    content : bytes or str
        The reply body.

    Returns
    -------
    object
        The parsed value; integers stay exact Python ints.

    Raises
    ------
    DecodeError
        When the body is not JSON, quoting its start.

    Examples
    --------
    >>> decode_json(b'{"a": [NaN, 1.5, 313761043604045880]}')
    {'a': [nan, 1.5, 313761043604045880]}
    """
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    # orjson is strict JSON; the standard library accepts NaN, Infinity and -Infinity.
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"reply is not JSON ({exc}): {quote_body(content)}") from exc


def decode_source_records(content: bytes | str) -> list[dict[str, Any]]:
    """Decode a ``/api/v1/sources`` JSON reply into its records.

    Parameters
    ----------
    content : bytes or str
        The reply body: a JSON array of objects (``[]`` for an unknown object).

    Returns
    -------
    list of dict
        One dict per source, keys as served (``r:diaSourceId``, ...); 64-bit ids are exact
        Python ints and ``null`` is ``None``.

    Raises
    ------
    DecodeError
        When the body is not a JSON array of objects.

    Examples
    --------
    >>> decode_source_records(b'[{"r:diaSourceId": 313761043604045881, "r:band": null}]')
    [{'r:diaSourceId': 313761043604045881, 'r:band': None}]
    >>> decode_source_records(b"[]")
    []
    """
    records = decode_json(content)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DecodeError(f"sources reply is not a JSON array of records: {quote_body(content)}")
    return records


def _is_empty(content: bytes | str | None) -> bool:
    return content is None or not content.strip()


def decode_cutout_arrays(
    content: bytes | str, *, source_id: int, kinds: Iterable[str] = KINDS
) -> dict[str, np.ndarray]:
    """Decode an ``output-format=array`` cutout reply into float32 planes.

    Parameters
    ----------
    content : bytes or str
        The reply body: ``{"b:cutoutScience": [[...], ...], ...}``, keys in any order, bare
        ``NaN`` tokens for blank pixels.
    source_id : int
        The ``diaSourceId`` asked for (used in error messages).
    kinds : iterable of str, optional
        The kinds the reply must hold (default: all three).

    Returns
    -------
    dict of str to numpy.ndarray
        ``kind -> 2-D float32 array`` (native byte order), in the order of ``kinds``.

    Raises
    ------
    NotFoundError
        For an empty body: the service's way of saying "no such alert".
    DecodeError
        When the body is not JSON, lacks a kind, or holds a value that is not a 2-D
        rectangular list of numbers.

    Examples
    --------
    >>> arrays = decode_cutout_arrays(b'{"b:cutoutScience": [[NaN, 1.5], [2.0, 3.0]]}',
    ...                               source_id=1, kinds=["Science"])
    >>> arrays["Science"]
    array([[nan, 1.5],
           [2. , 3. ]], dtype=float32)
    """
    if _is_empty(content):
        raise NotFoundError(f"no alert with diaSourceId {source_id}")
    raw = content.encode() if isinstance(content, str) else content
    # Fast path: orjson is strict JSON, so blank pixels written as NaN become null (which
    # numpy casts back to NaN). Only the b:cutout* keys are strings in this reply, so the
    # replacement cannot touch anything else. Anything orjson still refuses (Infinity)
    # goes through the standard library.
    try:
        reply = orjson.loads(raw.replace(b"NaN", b"null") if b"NaN" in raw else raw)
    except orjson.JSONDecodeError:
        reply = decode_json(raw)
    if not isinstance(reply, dict):
        raise DecodeError(
            f"cutout reply for diaSourceId {source_id} is not a JSON object: {quote_body(raw)}"
        )
    arrays: dict[str, np.ndarray] = {}
    for kind in kinds:
        key = cutout_key(kind)
        if key not in reply:
            raise DecodeError(
                f"cutout reply for diaSourceId {source_id} lacks {key!r} "
                f"(keys: {sorted(reply)}): {quote_body(raw)}"
            )
        arrays[kind] = _float32_plane(reply[key], key=key, source_id=source_id, raw=raw)
    return arrays


def _float32_plane(value: Any, *, key: str, source_id: int, raw: bytes) -> np.ndarray:
    """Return a 2-D list of numbers as a float32 array, or raise :class:`DecodeError`."""
    try:
        with np.errstate(over="raise"):
            plane = np.array(value, dtype=_NATIVE_F32)
    except (ValueError, TypeError, FloatingPointError) as exc:
        raise DecodeError(
            f"{key} of diaSourceId {source_id} is not a rectangular list of float32 numbers "
            f"({exc}): {quote_body(raw)}"
        ) from exc
    if plane.ndim != 2 or plane.size == 0:
        raise DecodeError(
            f"{key} of diaSourceId {source_id} is not a non-empty 2-D array "
            f"(shape {plane.shape}): {quote_body(raw)}"
        )
    return plane


# --------------------------------------------------------------------------- FITS


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
        quoted), or hold no 2-D image.

    Examples
    --------
    >>> from astropy.io import fits
    >>> buffer = io.BytesIO()
    >>> fits.HDUList([fits.PrimaryHDU(np.ones((30, 30), ">f4"))]).writeto(buffer)
    >>> stamp = decode_fits(buffer.getvalue(), kind="Science", source_id=1)
    >>> stamp.planes["data"].dtype, stamp.side, list(stamp.planes)
    (dtype('float32'), 30, ['data'])
    """
    if _is_empty(content):
        raise NotFoundError(f"no alert with diaSourceId {source_id}")
    what = f"{kind} FITS cutout of diaSourceId {source_id}"
    if not looks_like_fits(content):
        raise DecodeError(f"{what} is not a FITS file: {quote_body(content)}")
    announced = _announced_size(content)
    if announced > len(content):
        raise DecodeError(
            f"{what} is truncated: {len(content)} bytes where its headers announce {announced}"
        )
    from astropy.io import fits  # astropy.io.fits is slow to import; only FITS needs it

    try:
        with fits.open(io.BytesIO(content), ignore_missing_simple=True) as hdul:
            return _stamp_from_hdul(hdul, kind=kind, what=what)
    except DecodeError:
        raise
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise DecodeError(f"{what} cannot be read ({exc}): {quote_body(content)}") from exc


def _announced_size(content: bytes) -> int:
    """Return how many bytes the FITS headers in ``content`` announce (headers + data).

    Walking the headers ourselves finds a truncated file before astropy does; astropy only
    warns about it, and a warnings filter is not thread-safe.
    """
    pos, size = 0, len(content)
    while pos < size and _FITS_CARD.match(content, pos):
        cards: dict[bytes, int] = {}
        while True:  # header blocks until the END card
            block = content[pos : pos + _FITS_BLOCK]
            pos += _FITS_BLOCK
            if len(block) < _FITS_BLOCK:
                return pos
            ended = False
            for start in range(0, _FITS_BLOCK, 80):
                card = block[start : start + 80]
                keyword = card[:8].rstrip()
                if keyword == b"END":
                    ended = True
                    break
                if card[8:10] == b"= " and _SIZE_KEYWORD.fullmatch(keyword):
                    value = card[10:].split(b"/", 1)[0].strip()
                    if _INTEGER.fullmatch(value):
                        cards[keyword] = int(value)
            if ended:
                break
        naxis = cards.get(b"NAXIS", 0)
        pixels = 0
        if naxis:
            pixels = 1
            for axis in range(1, naxis + 1):
                pixels *= cards.get(b"NAXIS%d" % axis, 0)
        nbytes = abs(cards.get(b"BITPIX", 8)) // 8
        data = nbytes * cards.get(b"GCOUNT", 1) * (cards.get(b"PCOUNT", 0) + pixels)
        pos += -(-data // _FITS_BLOCK) * _FITS_BLOCK  # data padded to whole blocks
    return pos


def _stamp_from_hdul(hdul: Any, *, kind: str, what: str) -> Stamp:
    primary = hdul[0]
    data = primary.data
    if data is None or data.ndim != 2:
        raise DecodeError(f"{what}: the primary HDU holds no 2-D image")
    planes: dict[str, np.ndarray] = {"data": np.array(data, dtype=_NATIVE_F32)}
    names = {hdu.name.upper(): hdu for hdu in hdul[1:]}
    if UNCERT_EXTNAME in names and names[UNCERT_EXTNAME].data is not None:
        planes["variance"] = _variance(names[UNCERT_EXTNAME])
    if MASK_EXTNAME in names and names[MASK_EXTNAME].data is not None:
        mask = names[MASK_EXTNAME].data
        planes["mask"] = np.array(mask, dtype=mask.dtype.newbyteorder("="))
    psf = None
    if PSF_EXTNAME in names and names[PSF_EXTNAME].data is not None:
        psf = np.array(names[PSF_EXTNAME].data, dtype=_NATIVE_F64)
    return Stamp(kind=kind, planes=planes, psf=psf, header=primary.header.tostring())


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


# --------------------------------------------------------------------------- assembly


def stamps_from_arrays(source_id: int, arrays: Mapping[str, np.ndarray]) -> SourceCutouts:
    """Wrap the data planes of an array reply (``kind -> array``) as :class:`SourceCutouts`.

    Parameters
    ----------
    source_id : int
        The alert's ``diaSourceId``.
    arrays : mapping of str to numpy.ndarray
        One 2-D float32 array per kind, as returned by :func:`decode_cutout_arrays`.

    Returns
    -------
    SourceCutouts

    Raises
    ------
    CubeError
        When a kind is missing or the shapes disagree.

    Examples
    --------
    >>> stamps_from_arrays(3, {k: np.zeros((30, 30), np.float32) for k in KINDS}).side
    30
    """
    missing = [kind for kind in KINDS if kind not in arrays]
    if missing:
        raise CubeError(f"diaSourceId {source_id}: no cutout of kind {missing}")
    return SourceCutouts(
        source_id=source_id,
        stamps=tuple(Stamp(kind=kind, planes={"data": arrays[kind]}) for kind in KINDS),
    )


def stamps_from_fits(
    source_id: int, stamps: Mapping[str, Stamp] | Iterable[Stamp]
) -> SourceCutouts:
    """Gather the stamps decoded from the three FITS files of one alert.

    Parameters
    ----------
    source_id : int
        The alert's ``diaSourceId``.
    stamps : mapping of str to Stamp, or iterable of Stamp
        One stamp per kind, in any order.

    Returns
    -------
    SourceCutouts
        The stamps in ``KINDS`` order.

    Raises
    ------
    CubeError
        When a kind is missing or the shapes disagree.

    Examples
    --------
    >>> parts = [Stamp(k, {"data": np.zeros((30, 30), np.float32)}) for k in reversed(KINDS)]
    >>> [s.kind for s in stamps_from_fits(5, parts).stamps]
    ['Science', 'Template', 'Difference']
    """
    by_kind = (
        dict(stamps) if isinstance(stamps, Mapping) else {stamp.kind: stamp for stamp in stamps}
    )
    missing = [kind for kind in KINDS if kind not in by_kind]
    if missing:
        raise CubeError(f"diaSourceId {source_id}: no cutout of kind {missing}")
    return SourceCutouts(source_id=source_id, stamps=tuple(by_kind[kind] for kind in KINDS))
