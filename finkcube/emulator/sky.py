"""Positions on the sky and dates, as the emulator's search endpoints need them. Pure.

Separations are computed from unit vectors (``atan2(|a x b|, a . b)``, accurate at every
angle, no RA wrap or pole to special-case) with numpy only, so that a test can check the
emulator against astropy's ``SkyCoord.separation`` as an independent oracle. Dates are read
the way the service reads them (ISO, JD or MJD).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["mean_position", "parse_date", "separations_deg", "unit_vectors"]

#: Numbers at least this large are Julian Dates, smaller ones MJD (the service's rule).
_JD_FROM = 2_400_000


def unit_vectors(ra: Sequence[float] | np.ndarray, dec: Sequence[float] | np.ndarray) -> np.ndarray:
    """The unit vectors (n, 3) of positions in degrees.

    Examples
    --------
    >>> unit_vectors([0.0, 90.0], [0.0, 0.0]).round(12).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    ra_rad = np.radians(np.asarray(ra, dtype=float))
    dec_rad = np.radians(np.asarray(dec, dtype=float))
    cos_dec = np.cos(dec_rad)
    return np.stack([cos_dec * np.cos(ra_rad), cos_dec * np.sin(ra_rad), np.sin(dec_rad)], -1)


def separations_deg(
    ra0: float, dec0: float, ra: Sequence[float] | np.ndarray, dec: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Angular separations (degrees) of positions from ``(ra0, dec0)``, all in degrees.

    Examples
    --------
    >>> separations_deg(359.9, 0.0, [0.1], [0.0]).round(9).tolist()
    [0.2]
    >>> separations_deg(0.0, 89.9, [180.0], [89.9]).round(9).tolist()
    [0.2]
    """
    centre = unit_vectors([ra0], [dec0])[0]
    points = unit_vectors(ra, dec).reshape(-1, 3)
    cross = np.linalg.norm(np.cross(points, centre), axis=-1)
    return np.degrees(np.arctan2(cross, points @ centre))


def mean_position(ra: Sequence[float], dec: Sequence[float]) -> tuple[float, float]:
    """The mean position of points (degrees): the direction of their mean unit vector.

    Examples
    --------
    >>> [round(v, 9) for v in mean_position([359.0, 1.0], [10.0, 10.0])]
    [0.0, 10.001492527]
    """
    x, y, z = unit_vectors(ra, dec).reshape(-1, 3).mean(axis=0)
    ra_mean = math.degrees(math.atan2(y, x)) % 360.0
    if ra_mean >= 360.0:  # -tiny % 360 rounds to 360.0
        ra_mean = 0.0
    return ra_mean, math.degrees(math.atan2(z, math.hypot(x, y)))


def parse_date(value: object, *, scale: str = "tai") -> float:
    """The MJD of a date given as the service takes it: ISO text, a JD or an MJD.

    Like the service's ``isoify_time``: what astropy's ``Time`` parses is a date; else a
    number, a JD if at least 2,400,000, else an MJD; the date is then read in ``scale``.

    Raises
    ------
    ValueError
        For a value that is neither (the service then fails: a 500).

    Examples
    --------
    >>> round(parse_date("2026-01-01"), 6), round(parse_date(61000.5), 6)
    (61041.0, 61000.5)
    >>> round(parse_date("2461041.5"), 6)
    61041.0
    """
    from astropy.time import Time

    try:
        parsed = Time(value)
    except ValueError:
        number = float(value)  # type: ignore[arg-type]
        parsed = Time(number, format="jd" if number // _JD_FROM else "mjd")
    return float(Time(parsed.iso, scale=scale).mjd)
