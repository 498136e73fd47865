"""Real Rubin alerts read from Avro files (the packaged sample and any ``--alerts`` file)."""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from finkcube.errors import InputError
from finkcube.names import KINDS, UNCERT_EXTNAME

__all__ = ["RealAlert", "fink_values", "read_alerts", "sample_alerts_path"]

logger = logging.getLogger(__name__)

_SAMPLE = "rubin-alerts-sample.avro"


def sample_alerts_path() -> Path:
    """Return the path of the packaged sample of 5 real Rubin alerts.

    Examples
    --------
    >>> sample_alerts_path().name
    'rubin-alerts-sample.avro'
    """
    return Path(str(resources.files("finkcube.emulator").joinpath("data").joinpath(_SAMPLE)))


@dataclass(slots=True)
class RealAlert:
    """One real alert: its own diaSource with cutouts, and its earlier sources.

    Attributes
    ----------
    source : dict
        The alert's ``diaSource`` (bare Rubin field names).
    previous : list of dict
        The ``prvDiaSources`` (no cutouts of their own).
    cutouts : dict
        ``kind -> FITS bytes or None``, exactly as in the Avro packet.
    classifiers : dict
        The alert's Fink added values, flat (may be empty): see :func:`fink_values`.
    """

    source: dict[str, Any]
    previous: list[dict[str, Any]]
    cutouts: dict[str, bytes | None]
    classifiers: dict[str, Any] = field(default_factory=dict)
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def source_id(self) -> int:
        """The alert's diaSourceId."""
        return int(self.source["diaSourceId"])

    @property
    def object_id(self) -> int:
        """The alert's diaObjectId (0 for a solar-system alert)."""
        return int(self.source.get("diaObjectId") or 0)

    def noise_sigmas(self) -> tuple[float, float]:
        """Per-pixel noise (nJy) of the Science and Template cutouts: sqrt(median variance).

        Falls back to 40 and 4 nJy (what real alerts show) for a null or odd cutout.
        """
        from astropy.io import fits

        sigmas = {"Science": 40.0, "Template": 4.0}
        for kind in sigmas:
            raw = self.cutouts.get(kind)
            if raw is None:
                continue
            with fits.open(io.BytesIO(raw), ignore_missing_simple=True) as hdus:
                if UNCERT_EXTNAME in hdus:
                    sigmas[kind] = math.sqrt(float(np.nanmedian(hdus[UNCERT_EXTNAME].data)))
        return sigmas["Science"], sigmas["Template"]

    def array(self, kind: str) -> np.ndarray | None:
        """Return the data plane of ``kind`` as native float32 (read-only), or None if null."""
        if kind not in self._arrays:
            raw = self.cutouts.get(kind)
            if raw is None:
                return None
            from astropy.io import fits

            with fits.open(io.BytesIO(raw), ignore_missing_simple=True) as hdus:
                plane = np.asarray(hdus[0].data).astype(np.float32)
            plane.setflags(write=False)
            self._arrays[kind] = plane
        return self._arrays[kind]


def fink_values(record: dict[str, Any]) -> dict[str, Any]:
    """The Fink added values of an alert packet, flat: ``clf`` scores, ``xm_*``, version.

    Examples
    --------
    >>> fink_values({"clf": {"cats_class": 11}, "xm": {"simbad_otype": None},
    ...              "fink_broker_version": "4.1"})
    {'cats_class': 11, 'xm_simbad_otype': None, 'fink_broker_version': '4.1'}
    """
    values = dict(record.get("clf") or {})
    values.update({"xm_" + key: value for key, value in (record.get("xm") or {}).items()})
    if "fink_broker_version" in record:
        values["fink_broker_version"] = record["fink_broker_version"]
    return values


def _records(path: Path) -> Iterator[dict[str, Any]]:
    import fastavro

    try:
        with path.open("rb") as stream:
            for record in fastavro.reader(stream):
                if not isinstance(record, dict):
                    raise InputError(f"alerts file {str(path)!r} holds a non-record entry")
                yield record
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read alerts file {str(path)!r}: {exc}") from exc


def read_alerts(paths: Iterable[str | Path]) -> list[RealAlert]:
    """Read the alerts of Avro files as Fink distributes them.

    Parameters
    ----------
    paths : iterable of str or Path
        Avro container files whose records carry ``diaSource``, ``prvDiaSources`` and the
        three ``cutout*`` FITS byte strings.

    Returns
    -------
    list of RealAlert
        In file order.

    Raises
    ------
    InputError
        For a file that cannot be read or records that are not Rubin alerts.

    Examples
    --------
    >>> alerts = read_alerts([sample_alerts_path()])
    >>> len(alerts), sorted({a.object_id == 0 for a in alerts})
    (5, [False, True])
    """
    alerts: list[RealAlert] = []
    for raw_path in paths:
        path = Path(raw_path)
        for record in _records(path):
            source = record.get("diaSource")
            if not isinstance(source, dict) or "diaSourceId" not in source:
                raise InputError(
                    f"alerts file {str(path)!r} holds a record without a diaSource: "
                    "expected Rubin alerts as distributed by Fink"
                )
            cutouts = {kind: record.get("cutout" + kind) for kind in KINDS}
            alerts.append(
                RealAlert(
                    source=dict(source),
                    previous=[dict(s) for s in record.get("prvDiaSources") or []],
                    cutouts=cutouts,
                    classifiers=fink_values(record),
                )
            )
        logger.debug("read %d alerts from %s", len(alerts), path)
    return alerts
