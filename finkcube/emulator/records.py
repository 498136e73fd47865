"""Source records as ``/api/v1/sources`` serves them, and the ids of generated ones.

A record maps every column (``r:`` Rubin fields in schema order, then ``f:`` Fink scores)
to a JSON value: ids and counts are ints, fluxes and times floats, flags bools, missing
values None.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from finkcube.emulator.fitsgen import CutoutSpec, stamp_side
from finkcube.emulator.schema import DIA_SOURCE_FIELDS, FINK_BROKER_VERSION, FINK_FIELDS
from finkcube.names import MAX_SIDE, MIN_SIDE, RUBIN_PREFIX

__all__ = [
    "RECORD_DEFAULTS",
    "IdMaker",
    "cutout_spec",
    "generated_record",
    "newest_first",
    "real_record",
]

#: A record's columns and the value each takes when nothing fills it.
RECORD_DEFAULTS: dict[str, Any] = {
    RUBIN_PREFIX + name: (False if kind is bool else 0 if name.endswith("Ndata") else None)
    for name, kind in DIA_SOURCE_FIELDS
} | {name: None for name, _ in FINK_FIELDS}
_BANDS = "ugrizy"


class IdMaker:
    """Deterministic 18-digit ids that never repeat one already used.

    Parameters
    ----------
    seed : int
        Seed of the sequence.
    used : set of int
        Ids taken already (real ones); every id made is added to it.

    Examples
    --------
    >>> ids = IdMaker(0, set())
    >>> first = ids.next()
    >>> len(str(first)), IdMaker(0, set()).next() == first, IdMaker(0, {first}).next() == first
    (18, True, False)
    """

    def __init__(self, seed: int, used: set[int]) -> None:
        self._seed = seed
        self._count = 0
        self._used = used

    def next(self) -> int:
        """Return the next free id."""
        while True:
            self._count += 1
            digest = hashlib.blake2b(f"{self._seed}:{self._count}".encode(), digest_size=8)
            value = 10**17 + int.from_bytes(digest.digest(), "big") % (9 * 10**17)
            if value not in self._used:
                self._used.add(value)
                return value


def real_record(source: dict[str, Any], classifiers: dict[str, Any]) -> dict[str, Any]:
    """The record of a real diaSource (from an alert), with the alert's Fink scores.

    Examples
    --------
    >>> record = real_record({"diaSourceId": 1, "band": "g"}, {"cats_class": 11})
    >>> record["r:diaSourceId"], record["r:band"], record["f:clf_cats_class"], record["r:psfFlux"]
    (1, 'g', 11, None)
    """
    record = dict(RECORD_DEFAULTS)
    record.update({RUBIN_PREFIX + key: value for key, value in source.items()})
    record.update({column: classifiers.get(key) for column, key in FINK_FIELDS})
    return record


def generated_record(
    rng: np.random.Generator,
    *,
    source_id: int,
    object_id: int,
    ra: float,
    dec: float,
    time: float,
    side: int,
    flux: float,
    template_flux: float,
) -> dict[str, Any]:
    """The record of a generated diaSource: plausible values in every column Rubin fills.

    Parameters
    ----------
    rng : numpy.random.Generator
        Where the noise comes from.
    source_id, object_id : int
        The ids.
    ra, dec : float
        The object's position (degrees); the source scatters around it.
    time : float
        ``midpointMjdTai``.
    side : int
        The cutout side the source will have; ``bboxSize`` is drawn to match it.
    flux, template_flux : float
        The true difference flux (noise is added) and the template flux, nJy.

    Examples
    --------
    >>> import numpy as np
    >>> record = generated_record(
    ...     np.random.default_rng(0), source_id=1, object_id=2, ra=10.0, dec=-5.0,
    ...     time=61000.5, side=40, flux=1e4, template_flux=5e4,
    ... )
    >>> record["r:diaObjectId"], record["r:bboxSize"], record["r:midpointMjdTai"]
    (2, 40, 61000.5)
    """
    band = _BANDS[int(rng.integers(1, 5))]
    flux_err = float(rng.uniform(250.0, 700.0))
    flux = float(flux) + flux_err * float(rng.standard_normal())
    x, y = (float(v) for v in rng.uniform(60.0, 4000.0, size=2))
    bbox = side if side > MIN_SIDE else int(rng.integers(12, MIN_SIDE + 1))
    record = dict(RECORD_DEFAULTS)
    record.update(
        {
            "r:diaSourceId": source_id,
            "r:visit": int(f"2026{int(time) % 10000:04d}{int(rng.integers(1, 99999)):05d}"),
            "r:detector": int(rng.integers(0, 189)),
            "r:diaObjectId": object_id,
            "r:parentDiaSourceId": 0,
            "r:midpointMjdTai": float(time),
            "r:ra": ra + float(rng.normal(0.0, 2e-5)),
            "r:raErr": float(rng.uniform(5e-6, 2e-5)),
            "r:dec": dec + float(rng.normal(0.0, 2e-5)),
            "r:decErr": float(rng.uniform(5e-6, 2e-5)),
            "r:x": x,
            "r:y": y,
            "r:apFlux": flux * float(rng.uniform(0.9, 1.0)),
            "r:apFluxErr": flux_err * 1.2,
            "r:isNegative": flux < 0,
            "r:snr": abs(flux) / flux_err,
            "r:psfFlux": flux,
            "r:psfFluxErr": flux_err,
            "r:psfChi2": float(rng.uniform(1500.0, 1900.0)),
            "r:psfNdata": 1681,
            "r:scienceFlux": template_flux + flux,
            "r:scienceFluxErr": flux_err,
            "r:templateFlux": template_flux,
            "r:templateFluxErr": float(rng.uniform(10.0, 40.0)),
            "r:extendedness": float(rng.uniform(0.0, 0.1)),
            "r:reliability": float(rng.uniform(0.2, 1.0)),
            "r:band": band,
            "r:isDipole": False,
            "r:timeProcessedMjdTai": float(time) + 0.002,
            "r:bboxSize": bbox,
            "f:fink_broker_version": FINK_BROKER_VERSION,
        }
    )
    return record


def newest_first(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sort records from the most recent ``midpointMjdTai`` to the least recent.

    Examples
    --------
    >>> [r["r:midpointMjdTai"] for r in newest_first([{"r:midpointMjdTai": 1.0},
    ...                                               {"r:midpointMjdTai": 2.0}])]
    [2.0, 1.0]
    """
    return sorted(records, key=lambda r: -float(r.get("r:midpointMjdTai") or 0.0))


def cutout_spec(
    record: dict[str, Any],
    *,
    sigma_science: float,
    sigma_template: float,
    nan_edges: bool = False,
    with_mask: bool = False,
) -> CutoutSpec:
    """What the generator needs to draw the cutouts of a source, read off its record.

    The side is ``r:bboxSize`` clamped to [30, 102]; the rotation angle derives from the
    visit, so that the sources of one visit share it.

    Examples
    --------
    >>> spec = cutout_spec({"r:diaSourceId": 5, "r:bboxSize": 12}, sigma_science=40.0,
    ...                    sigma_template=4.0)
    >>> spec.source_id, spec.side
    (5, 30)
    """
    visit = int(record.get("r:visit") or 0)
    digest = hashlib.blake2b(str(visit).encode(), digest_size=4).digest()
    return CutoutSpec(
        source_id=int(record["r:diaSourceId"]),
        side=stamp_side(record.get("r:bboxSize"), MIN_SIDE, MAX_SIDE),
        psf_flux=float(record.get("r:psfFlux") or 0.0),
        template_flux=float(record.get("r:templateFlux") or 0.0),
        ra=float(record.get("r:ra") or 0.0),
        dec=float(record.get("r:dec") or 0.0),
        x=float(record.get("r:x") or 500.0),
        y=float(record.get("r:y") or 500.0),
        rotpa=int.from_bytes(digest, "big") / 2.0**32 * 360.0,
        sigma_science=sigma_science,
        sigma_template=sigma_template,
        nan_edges=nan_edges,
        with_mask=with_mask,
    )
