"""What the emulator's search endpoints read: positions, tags, TNS names, forced photometry.

:class:`Directory` adds to a :class:`~.population.Population` what ``/api/v1/objects``,
``/api/v1/fp``, ``/api/v1/conesearch``, ``/api/v1/tags`` and ``/api/v1/resolver`` serve,
all derived from the objects' served source records and the seed:

* an object's position is the mean of its sources' ``r:ra``/``r:dec`` (the sources scatter
  by about 0.07 arcsec around the position the object was drawn at);
* its diaObject aggregates (``r:nDiaSources``, first and last times, per-band flux extrema)
  are computed from its sources whenever they are asked, so they follow ``add_sources``;
* a few objects' latest alerts carry each tag of :data:`~finkcube.names.TAGS`, and the
  objects of ``in_tns`` and ``most_likely_sn`` carry a generated TNS name (``AT 2026abc``,
  ``SN 2026abd``);
* forced photometry has one row per visit: every detection, and about half as many
  non-detection visits drawn from the seed and the object's id (the same rows for the same
  sources, whatever else the catalog holds).

Draws made here use their own random stream, so the objects and sources of a seed are the
same as before this module existed.
"""

from __future__ import annotations

import datetime
import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from finkcube.emulator.alerts import RealAlert
from finkcube.emulator.population import EmulatedObject, Population, Style
from finkcube.emulator.sky import mean_position
from finkcube.errors import InputError, NotFoundError
from finkcube.names import TAGS

__all__ = ["BANDS", "CATS_CLASSES", "Directory"]

#: Rubin's bands, in the order of the diaObject's per-band columns.
BANDS = "ugrizy"
#: Class codes of the CATS classifier, as ``f:main_label_classifier`` holds them (the real
#: alert of the sample carries 11).
CATS_CLASSES = (11, 12, 13, 21, 22, 23, 31, 32)
_TAGGED_PER_TAG = 3
_MJD_EPOCH = datetime.date(1858, 11, 17)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _digest(*parts: object) -> int:
    text = ":".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def _time(record: dict[str, Any]) -> float:
    return float(record.get("r:midpointMjdTai") or 0.0)


class Directory(Population):
    """A population with positions, tags, TNS names and forced photometry.

    Parameters
    ----------
    alerts : sequence of RealAlert
        Real alerts to serve.
    seed : int, optional
        Seed of every generated value.
    """

    def __init__(self, alerts: Sequence[RealAlert] = (), *, seed: int = 0) -> None:
        super().__init__(alerts, seed=seed)
        self._tagged: dict[str, list[int]] = {tag: [] for tag in TAGS}
        self._names: dict[int, list[str]] = {}
        self._name_count = 0
        draw = np.random.default_rng([self._seed, 11])
        generated = [oid for name, oid in self._named.items() if name != "real"]
        for tag in TAGS:
            for index in draw.choice(len(generated), size=_TAGGED_PER_TAG, replace=False):
                self.add_to_tag(generated[int(index)], tag)
        for tag in ("in_tns", "most_likely_sn"):
            for object_id in self.tag_objects(tag):
                if object_id not in self._names:
                    self._names[object_id] = [self._new_name(object_id, tag == "most_likely_sn")]

    # -- the test-facing API ------------------------------------------------------------

    def position(self, object_id: int) -> tuple[float, float]:
        """Return ``(ra, dec)`` of an object in degrees: the mean of its sources' positions.

        Raises
        ------
        NotFoundError
            For an object the catalog does not serve.
        """
        obj = self._object(object_id)
        points = [
            (float(r["r:ra"]), float(r["r:dec"]))
            for r in obj.records
            if r.get("r:ra") is not None and r.get("r:dec") is not None
        ]
        if not points:
            return obj.ra, obj.dec
        ras, decs = zip(*points, strict=True)
        return mean_position(ras, decs)

    def tag_objects(self, tag: str) -> list[int]:
        """Return the diaObjectIds whose alerts carry ``tag``, newest alert first.

        Raises
        ------
        InputError
            For a tag the API does not serve (see :data:`~finkcube.names.TAGS`).
        """
        return list(dict.fromkeys(int(r["r:diaObjectId"]) for r in self.tag_rows(tag)))

    def add_to_tag(self, object_id: int, tag: str) -> None:
        """Tag an object's latest alert with ``tag`` (a no-op if it carries it already).

        The alert takes its place in the tag by its time: an object made by
        :meth:`add_object` is newer than every other one, hence the tag's newest.

        Raises
        ------
        InputError
            For a tag the API does not serve.
        NotFoundError
            For an unknown object, or one without sources.
        """
        _check_tag(tag)
        with self._lock:
            obj = self._object(object_id)
            if not obj.records:
                raise NotFoundError(f"object {object_id} has no alert to tag")
            source_id = int(obj.records[0]["r:diaSourceId"])
            if source_id not in self._tagged[tag]:
                self._tagged[tag].append(source_id)

    def names(self, object_id: int) -> list[str]:
        """Return the TNS names of an object (``[]`` when it has none)."""
        return list(self._names.get(int(object_id), ()))

    def forced_photometry(self, object_id: int) -> list[dict[str, Any]]:
        """Return the forced photometry ``/api/v1/fp`` serves for an object, newest first.

        One row per visit, ``r:`` columns: every detection (its visit, time, band and
        fluxes) and the non-detection visits between them. ``[]`` for an unknown object.
        """
        return sorted(self.fp_rows(int(object_id)), key=lambda r: -_time(r))

    def add_object(
        self,
        ra: float,
        dec: float,
        *,
        sources: int = 5,
        tags: Iterable[str] = (),
        name: str | None = None,
    ) -> int:
        """Generate an object at ``(ra, dec)`` (degrees) and return its diaObjectId.

        Its ``sources`` sources come after every source of the catalog (so its latest
        alert is the newest of each tag it joins); ``name`` is a TNS name to resolve.

        Raises
        ------
        InputError
            For a position off the sphere, fewer than one source, or an unknown tag.
        """
        if not (0.0 <= float(ra) < 360.0 and -90.0 <= float(dec) <= 90.0):
            raise InputError(
                f"invalid position ({ra!r}, {dec!r}): expected ra in [0, 360), "
                "dec in [-90, 90] degrees"
            )
        if int(sources) < 1:
            raise InputError(f"invalid sources {sources!r}: expected at least 1")
        tags = tuple(tags)
        for tag in tags:
            _check_tag(tag)
        with self._lock:
            newest = max(
                (_time(o.records[0]) for o in self._objects.values() if o.records), default=61000.0
            )
            obj = self._new_object(Style())
            obj.ra, obj.dec = float(ra), float(dec)
            times = (newest + 0.5 + 0.75 * np.arange(int(sources))).tolist()
            self._grow(obj, times, self._rng.integers(30, 41, size=len(times)).tolist())
            for tag in tags:
                self.add_to_tag(obj.object_id, tag)
            if name is not None:
                self._names.setdefault(obj.object_id, []).append(str(name))
            return obj.object_id

    # -- what the server asks -----------------------------------------------------------

    def _object(self, object_id: int) -> EmulatedObject:
        obj = self._objects.get(int(object_id))
        if obj is None:
            raise NotFoundError(f"object {object_id} is not served by the emulator")
        return obj

    def tag_rows(self, tag: str) -> list[dict[str, Any]]:
        """The records of a tag's alerts, newest first (copies)."""
        _check_tag(tag)
        rows: list[dict[str, Any]] = []
        with self._lock:
            for source_id in self._tagged[tag]:
                obj = self._objects[self._owner[source_id]]
                rows.extend(dict(r) for r in obj.records if r["r:diaSourceId"] == source_id)
        return sorted(rows, key=lambda r: -_time(r))

    def latest_records(self) -> list[dict[str, Any]]:
        """Each object's latest record, with ``f:firstDiaSourceMjdTaiFink`` (copies)."""
        with self._lock:
            objects = [o for o in self._objects.values() if o.records]
        return [
            dict(o.records[0]) | {"f:firstDiaSourceMjdTaiFink": _time(o.records[-1])}
            for o in objects
        ]

    def object_row(self, object_id: int) -> dict[str, Any] | None:
        """The diaObject aggregates of an object, computed from its sources; None if unknown."""
        obj = self._objects.get(object_id)
        if obj is None or not obj.records:
            return None
        records = obj.records
        ra, dec = self.position(object_id)
        row: dict[str, Any] = {
            "r:diaObjectId": object_id,
            "r:ra": ra,
            "r:dec": dec,
            "r:nDiaSources": len(records),
            "r:firstDiaSourceMjdTai": _time(records[-1]),
            "r:lastDiaSourceMjdTai": _time(records[0]),
        }
        for band in BANDS:
            fluxes = [
                float(r["r:psfFlux"])
                for r in records
                if r.get("r:band") == band and r.get("r:psfFlux") is not None
            ]
            row[f"r:{band}_psfFluxMean"] = float(np.mean(fluxes)) if fluxes else None
            row[f"r:{band}_psfFluxMin"] = min(fluxes) if fluxes else None
            row[f"r:{band}_psfFluxMax"] = max(fluxes) if fluxes else None
            row[f"r:{band}_psfFluxNdata"] = len(fluxes)
        matched = any(r.get("f:xm_simbad_otype") or r.get("f:xm_gaiadr3_DR3Name") for r in records)
        classes = [r["f:clf_cats_class"] for r in records if r.get("f:clf_cats_class") is not None]
        pick = _digest(self._seed, object_id, "label")
        row["f:is_cataloged"] = matched or _digest(self._seed, object_id, "cat") % 4 == 0
        row["f:firstDiaSourceMjdTaiFink"] = _time(records[-1])
        row["f:main_label_classifier"] = classes[0] if classes else CATS_CLASSES[pick % 8]
        return row

    def fp_rows(self, object_id: int) -> list[dict[str, Any]]:
        """Forced photometry of an object, oldest first (the table's row-key order)."""
        obj = self._objects.get(object_id)
        if obj is None or not obj.records:
            return []
        rows = [
            self._fp_row(
                obj,
                r["r:visit"],
                _time(r),
                r.get("r:band"),
                r.get("r:detector"),
                r.get("r:psfFlux"),
                r.get("r:psfFluxErr"),
            )
            for r in obj.records
        ]
        draw = np.random.default_rng([self._seed, 13, object_id % 2**32, object_id >> 32])
        times = [_time(r) for r in obj.records]
        extra = max(3, len(times) // 2)
        start, stop = min(times) - 20.0, max(times) + 20.0
        for time in np.sort(draw.uniform(start, stop, size=extra)).tolist():
            visit = int(f"2026{int(time) % 10000:04d}{int(draw.integers(1, 99999)):05d}")
            error = float(draw.uniform(250.0, 700.0))
            model = 0.0
            if obj.peak is not None:
                model = obj.amplitude * math.exp(-0.5 * ((time - obj.peak) / 40.0) ** 2)
            flux = model + error * float(draw.standard_normal())
            band = BANDS[int(draw.integers(1, 5))]
            rows.append(
                self._fp_row(obj, visit, time, band, int(draw.integers(0, 189)), flux, error)
            )
        return sorted(rows, key=_time)

    def _fp_row(
        self,
        obj: EmulatedObject,
        visit: Any,
        time: float,
        band: Any,
        detector: Any,
        flux: Any,
        error: Any,
    ) -> dict[str, Any]:
        science = None if flux is None else obj.template_flux + float(flux)
        return {
            "r:diaForcedSourceId": 10**17
            + _digest(self._seed, obj.object_id, visit, time) % (9 * 10**17),
            "r:diaObjectId": obj.object_id,
            "r:visit": visit,
            "r:detector": detector,
            "r:midpointMjdTai": time,
            "r:band": band,
            "r:psfFlux": flux,
            "r:psfFluxErr": error,
            "r:scienceFlux": science,
            "r:scienceFluxErr": error,
        }

    def tns_rows(self) -> list[tuple[str, dict[str, Any]]]:
        """The TNS resolver table: ``(row key, row)`` in row-key order.

        The row key is ``{salt}_{name, lower case}_{diaObjectId}``, the salt being the
        name's last character.
        """
        with self._lock:
            named = [(oid, list(names)) for oid, names in self._names.items()]
        table = []
        for object_id, names in named:
            ra, dec = self.position(object_id)
            for name in names:
                lower = name.lower()
                row = {
                    "d:fullname": name,
                    "d:internalname": str(object_id),
                    "d:diaObjectId": object_id,
                    "d:ra": ra,
                    "d:declination": dec,
                    "d:type": "SN Ia" if lower.startswith("sn ") else None,
                }
                table.append((f"{lower[-1:]}_{lower}_{object_id}", row))
        return sorted(table, key=lambda item: item[0])

    def _new_name(self, object_id: int, classified: bool) -> str:
        """A new TNS-like name: the year of the object's first source, three letters."""
        obj = self._objects[object_id]
        first = _time(obj.records[-1]) if obj.records else 61041.0
        year = (_MJD_EPOCH + datetime.timedelta(days=int(first))).year
        number = (_digest(self._seed, "tns") + self._name_count) % 26**3
        self._name_count += 1
        letters = "".join(_LETTERS[number // 26**k % 26] for k in (2, 1, 0))
        return f"{'SN' if classified else 'AT'} {year}{letters}"


def _check_tag(tag: str) -> None:
    if tag not in TAGS:
        raise InputError(f"unknown tag {tag!r}: expected one of {', '.join(TAGS)}")
