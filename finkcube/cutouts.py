"""The value objects that carry decoded cutouts between modules, and their constructors.

- :class:`Stamp`: one kind (``Science``, ``Template`` or ``Difference``) of one alert, as
  per-pixel planes (``"data"`` always; ``"variance"`` and maybe ``"mask"`` from FITS), plus
  the PSF image and the primary header cards when decoded from FITS;
- :class:`SourceCutouts`: the three kinds of one alert (one ``diaSourceId``), checked to
  share one square shape.

:func:`stamps_from_arrays` and :func:`stamps_from_fits` gather what the decoders of
:mod:`finkcube.service.decode` and :mod:`finkcube.service.fitsfile` return;
:mod:`finkcube.service.decode` re-exports every name of this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from finkcube.errors import CubeError
from finkcube.names import DATA_PLANE, KINDS

__all__ = ["SourceCutouts", "Stamp", "stamps_from_arrays", "stamps_from_fits"]


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
        The primary HDU's header cards, as the file holds them (what
        ``astropy.io.fits.Header.tostring()`` gives); FITS only.

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
        if DATA_PLANE not in self.planes:
            raise CubeError(
                f"{self.kind} stamp has planes {sorted(self.planes)}: a 'data' plane is required"
            )

    @property
    def side(self) -> int:
        """The stamp's side in pixels (the data plane's first dimension)."""
        return int(self.planes[DATA_PLANE].shape[0])


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
        stamps=tuple(Stamp(kind=kind, planes={DATA_PLANE: arrays[kind]}) for kind in KINDS),
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
