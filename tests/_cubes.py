"""Synthetic cutouts, source records and cubes for the tests (generated in code, offline).

Stable helpers other test modules may import::

    from tests._cubes import synthetic_cube, synthetic_cutouts, synthetic_records

Pixels are seeded random float32 with a NaN blank corner; ``planes="all"`` adds a variance
plane, optionally a mask, a PSF per kind (41, 55, 41 pixels by default, as Rubin's) and
Rubin-like header cards (a local linear WCS without CTYPE/CUNIT).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from astropy.io import fits

from finkcube.cube import assemble_cube
from finkcube.names import KINDS
from finkcube.service.decode import SourceCutouts, Stamp

#: ids above 2**53, where a float64 detour would lose digits.
BASE_OBJECT_ID = 313761043604045880
BASE_SOURCE_ID = 2**60 + 12345
#: Arcseconds per pixel of the synthetic WCS.
PIXEL_SCALE = 0.2


def rubin_header(side: int, *, ra: float = 63.35, dec: float = -47.18, seed: int = 0) -> str:
    """Return primary-header cards like Rubin's: a local linear WCS with no CTYPE/CUNIT."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi)
    scale = PIXEL_SCALE / 3600.0
    header = fits.Header()
    header["CUTMINX"] = int(rng.integers(0, 4000))
    header["CUTMINY"] = int(rng.integers(0, 4000))
    header["BUNIT"] = "nJy"
    header["WCSAXES"] = 2
    header["CRPIX1"] = side / 2 + rng.uniform(-1, 1)
    header["CRPIX2"] = side / 2 + rng.uniform(-1, 1)
    header["PC1_1"] = -scale * np.cos(angle)
    header["PC1_2"] = scale * np.sin(angle)
    header["PC2_1"] = scale * np.sin(angle)
    header["PC2_2"] = scale * np.cos(angle)
    header["CDELT1"] = 1.0
    header["CDELT2"] = 1.0
    header["CRVAL1"] = ra
    header["CRVAL2"] = dec
    return header.tostring()


def synthetic_cutouts(
    source_id: int,
    side: int,
    *,
    planes: str = "data",
    mask: bool = False,
    psf_sides: Sequence[int] = (41, 55, 41),
    blank: int = 3,
    seed: int | None = None,
) -> SourceCutouts:
    """Return the three stamps of one synthetic source.

    Parameters
    ----------
    source_id : int
        The diaSourceId.
    side : int
        The stamps' side.
    planes : {"data", "all"}
        ``"all"``: add a variance plane, a PSF and header cards (as decoded from FITS).
    mask : bool
        Add an integer mask plane (``planes="all"`` only).
    psf_sides : sequence of int
        The PSF side of each kind.
    blank : int
        Rows at the top of each stamp set to NaN (off the detector).
    seed : int, optional
        Random seed (default: derived from ``source_id``).
    """
    rng = np.random.default_rng(source_id % 2**32 if seed is None else seed)
    stamps = []
    for k, kind in enumerate(KINDS):
        data = rng.normal(100.0 * (k + 1), 30.0, (side, side)).astype(np.float32)
        data[:blank] = np.nan
        layers: dict[str, np.ndarray] = {"data": data}
        psf = header = None
        if planes == "all":
            layers["variance"] = rng.uniform(1, 10, (side, side)).astype(np.float32)
            if mask:
                layers["mask"] = rng.integers(0, 2**12, (side, side)).astype(np.int32)
            p = psf_sides[k]
            yy, xx = np.mgrid[:p, :p] - (p - 1) / 2
            psf = np.exp(-(xx**2 + yy**2) / 8.0)
            psf /= psf.sum()
            header = rubin_header(side, seed=int(rng.integers(2**31)))
        stamps.append(Stamp(kind, layers, psf, header))
    return SourceCutouts(source_id, tuple(stamps))


def synthetic_records(
    object_id: int, source_ids: Sequence[int], *, seed: int = 0
) -> list[dict[str, Any]]:
    """Return source records as the API sends them: ``r:`` keys, newest first."""
    rng = np.random.default_rng(seed)
    times = np.sort(60800.0 + rng.uniform(0, 300, len(source_ids)))
    records = [
        {
            "r:diaSourceId": int(sid),
            "r:diaObjectId": int(object_id),
            "r:midpointMjdTai": float(t),
            "r:band": "ugrizy"[i % 6],
            "r:psfFlux": float(rng.normal(1000, 100)),
            "r:psfFluxErr": None if i % 4 == 1 else float(rng.uniform(10, 20)),
            "r:snr": float(rng.uniform(5, 50)),
            "r:bboxSize": int(rng.integers(10, 60)),
            "r:isDipole": bool(i % 3 == 0),
        }
        for i, (sid, t) in enumerate(zip(source_ids, times, strict=True))
    ]
    return records[::-1]


def synthetic_inputs(
    sides: Sequence[int],
    *,
    object_id: int = BASE_OBJECT_ID,
    planes: str = "data",
    mask_every: int = 0,
    seed: int = 0,
) -> tuple[int, list[dict[str, Any]], dict[int, SourceCutouts]]:
    """Return ``(object_id, records, cutouts)`` of one object with stamps of ``sides``.

    ``mask_every=n`` gives a mask plane to every ``n``-th source only (0: none).
    """
    ids = [BASE_SOURCE_ID + 7919 * i for i in range(len(sides))]
    records = synthetic_records(object_id, ids, seed=seed)
    cutouts = {
        sid: synthetic_cutouts(
            sid, side, planes=planes, mask=bool(mask_every) and i % mask_every == 0
        )
        for i, (sid, side) in enumerate(zip(ids, sides, strict=True))
    }
    return object_id, records, cutouts


def synthetic_cube(
    sides: Sequence[int] = (30, 41, 64, 35),
    *,
    object_id: int = BASE_OBJECT_ID,
    planes: str = "data",
    size: int | None = None,
    mask_every: int = 0,
    seed: int = 0,
) -> xr.Dataset:
    """Return the cube of one synthetic object with stamps of ``sides`` (newest last)."""
    oid, records, cutouts = synthetic_inputs(
        sides, object_id=object_id, planes=planes, mask_every=mask_every, seed=seed
    )
    return assemble_cube(
        oid, records, cutouts, planes=planes, size=size, attrs={"api_url": "http://test"}
    )
