"""What the emulator serves: real alerts plus generated objects, one :class:`Catalog`.

Real alerts bring their own diaSource with its cutout files (served byte for byte) and
300-400 earlier sources (``prvDiaSources``) without cutouts: the catalog serves those
sources too and generates cutouts for them that imitate the alert's own. Generated objects
cover what real data will bring (sides 30 to 102, blank edges, a mask plane, a null cutout,
kinds of different shapes, a single source, a large object). Every generated value derives
from the catalog's seed; pixels are drawn lazily, on first request.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from finkcube._types import KINDS, MAX_SIDE, MIN_SIDE
from finkcube.emulator.alerts import RealAlert, read_alerts, sample_alerts_path
from finkcube.emulator.fitsgen import CutoutSpec, generate_cutouts
from finkcube.emulator.records import (
    IdMaker,
    cutout_spec,
    generated_record,
    newest_first,
    real_record,
)
from finkcube.errors import InputError, NotFoundError

__all__ = ["NAMED_OBJECTS", "Catalog", "load_catalog"]

#: The generated objects every catalog holds, by name (see :meth:`Catalog.named`).
NAMED_OBJECTS = (
    "real",
    "doc",
    "single",
    "small",
    "mixed_sizes",
    "nan_edges",
    "with_mask",
    "missing_cutout",
    "mismatched",
    "large",
    "store_error",
)
#: What the service sends, with status 200, for a FITS cutout its cutout store failed on.
STORE_ERROR_BODY = b'{"message": "Internal Server Error"}\n'
#: The ids of the service's documentation snippets, served by the ``doc`` object.
DOC_OBJECT_ID = 313761043604045880
DOC_SOURCE_ID = 170050479238676547
_MIXED_SIDES = (30, 31, 34, 37, 45, 50, 57, 64, 71, 80, 88, 95, 101, 102)
_LARGE_SOURCES = 1200


@dataclass(frozen=True, slots=True)
class _Style:
    """How an object's stamps look: noise levels and special cases."""

    sigma_science: float = 40.0
    sigma_template: float = 4.0
    nan_edges: bool = False
    with_mask: bool = False


@dataclass(slots=True)
class _Object:
    object_id: int
    ra: float
    dec: float
    style: _Style
    template_flux: float
    records: list[dict[str, Any]]  # newest first; replaced, never mutated in place
    peak: float | None = None  # time of the light curve's maximum
    amplitude: float = 1e4  # its psfFlux there, nJy


#: A double no float32 pixel can hold: it stands for NaN while orjson writes the planes.
_NAN_STAND_IN = float(np.finfo(np.float64).max)
_NAN_TOKEN = orjson.dumps(_NAN_STAND_IN)


def plane_json(plane: np.ndarray) -> bytes:
    """Write a float32 plane as the service does: nested lists of doubles, bare ``NaN``.

    Each pixel is written as the double of its float32 value (shortest round-trip digits,
    so casting back to float32 is exact); blank pixels are the non-JSON token ``NaN``.

    Examples
    --------
    >>> plane_json(np.array([[1.5, np.nan]], dtype=np.float32))
    b'[[1.5,NaN]]'
    """
    values = np.asarray(plane, dtype=np.float64)
    if np.isinf(values).any():
        return json.dumps(values.tolist(), separators=(",", ":")).encode()
    values = np.where(np.isnan(values), _NAN_STAND_IN, values)
    return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY).replace(_NAN_TOKEN, b"NaN")


@functools.lru_cache(maxsize=4096)
def _array_json(spec: CutoutSpec, seed: int, kind: str) -> bytes:
    return plane_json(generate_cutouts(spec, seed)[kind].data)


class Catalog:
    """The objects, sources and cutouts an emulator serves.

    Parameters
    ----------
    alerts : sequence of RealAlert
        Real alerts to serve (their objects, sources and cutouts).
    seed : int, optional
        Seed of every generated id, record and pixel.

    Examples
    --------
    >>> catalog = Catalog(seed=0)
    >>> records = catalog.records(catalog.named("single"))
    >>> len(records), records[0]["r:diaObjectId"] == catalog.named("single")
    (1, True)
    """

    def __init__(self, alerts: Sequence[RealAlert] = (), *, seed: int = 0) -> None:
        self._seed = int(seed)
        self._lock = threading.RLock()
        self._objects: dict[int, _Object] = {}
        self._real: dict[int, RealAlert] = {}
        self._specs: dict[int, CutoutSpec | None] = {}
        self._owner: dict[int, int] = {}
        self._named: dict[str, int] = {}
        self._store_errors: set[int] = set()
        self._real_texts: dict[tuple[int, str], bytes] = {}
        used: set[int] = set()
        for alert in alerts:
            self._add_alert(alert, used)
        self._doc_free = not {DOC_OBJECT_ID, DOC_SOURCE_ID} & used
        used |= {DOC_OBJECT_ID, DOC_SOURCE_ID}
        self._ids = IdMaker(self._seed, used)
        self._rng = np.random.default_rng([self._seed, 7])
        self._bulk_calls = 0
        self._make_named()

    # -- construction -------------------------------------------------------------------

    def _add_alert(self, alert: RealAlert, used: set[int]) -> None:
        self._real[alert.source_id] = alert
        used.add(alert.source_id)
        object_id = alert.object_id
        if object_id == 0:
            return  # solar-system alert: cutouts by diaSourceId only, no sources row
        used.add(object_id)
        style = self._style_of(alert)
        obj = self._objects.get(object_id)
        if obj is None:
            obj = _Object(
                object_id,
                float(alert.source.get("ra") or 0.0),
                float(alert.source.get("dec") or 0.0),
                style,
                float(alert.source.get("templateFlux") or 0.0),
                [],
            )
            self._objects[object_id] = obj
            if "real" not in self._named and alert.previous:
                self._named["real"] = object_id
        by_id = {int(r["r:diaSourceId"]): r for r in obj.records}
        for previous in alert.previous:
            source_id = int(previous["diaSourceId"])
            used.add(source_id)
            if source_id in self._real:
                continue
            by_id[source_id] = real_record(previous, {})
            self._specs[source_id] = self._spec_from_record(by_id[source_id], style)
            self._owner[source_id] = object_id
        by_id[alert.source_id] = real_record(alert.source, alert.classifiers)
        self._owner[alert.source_id] = object_id
        self._specs.pop(alert.source_id, None)
        obj.records = newest_first(by_id.values())

    @staticmethod
    def _style_of(alert: RealAlert) -> _Style:
        """Noise levels of the alert's own cutouts, for the stamps generated beside them."""
        return _Style(*alert.noise_sigmas())

    def _spec_from_record(self, record: dict[str, Any], style: _Style) -> CutoutSpec:
        return cutout_spec(
            record,
            sigma_science=style.sigma_science,
            sigma_template=style.sigma_template,
            nan_edges=style.nan_edges,
            with_mask=style.with_mask,
        )

    def _new_object(self, style: _Style, object_id: int | None = None) -> _Object:
        rng = self._rng
        obj = _Object(
            self._ids.next() if object_id is None else object_id,
            float(rng.uniform(0.0, 360.0)),
            float(np.degrees(np.arcsin(rng.uniform(-1.0, 0.2)))),
            style,
            float(10 ** rng.uniform(3.5, 5.3)),
            [],
            amplitude=float(rng.uniform(5e3, 4e4)) * float(rng.choice([-1.0, 1.0, 1.0, 1.0])),
        )
        self._objects[obj.object_id] = obj
        return obj

    def _grow(
        self,
        obj: _Object,
        times: Sequence[float],
        sides: Sequence[int],
        source_ids: Sequence[int] = (),
    ) -> list[dict[str, Any]]:
        """Generate one source per time for ``obj``; return the new records."""
        rng = self._rng
        new: list[dict[str, Any]] = []
        if obj.peak is None:
            obj.peak = float(np.median(times))
        fixed = iter(source_ids)
        for time, side in zip(times, sides, strict=True):
            source_id = next(fixed, None) or self._ids.next()
            record = generated_record(
                rng,
                source_id=source_id,
                object_id=obj.object_id,
                ra=obj.ra,
                dec=obj.dec,
                time=float(time),
                side=int(side),
                flux=obj.amplitude * math.exp(-0.5 * ((time - obj.peak) / 40.0) ** 2),
                template_flux=obj.template_flux,
            )
            self._owner[source_id] = obj.object_id
            self._specs[source_id] = replace(self._spec_from_record(record, obj.style), side=side)
            new.append(record)
        obj.records = newest_first([*obj.records, *new])
        return new

    def _make_named(self) -> None:
        rng = self._rng
        plain = _Style()

        def make(
            name: str, count: int, style: _Style = plain, sides: Sequence[int] = ()
        ) -> _Object:
            obj = self._new_object(style)
            start = 61000.0 + float(rng.uniform(0.0, 50.0))
            times = np.sort(start + rng.uniform(0.0, 200.0, size=count)).tolist()
            chosen = list(sides) or rng.integers(30, 41, size=count).tolist()
            self._grow(obj, times, chosen)
            self._named[name] = obj.object_id
            return obj

        if self._doc_free:
            doc = self._new_object(plain, DOC_OBJECT_ID)
            times = np.sort(61000.0 + rng.uniform(0.0, 120.0, size=12)).tolist()
            self._grow(doc, times, rng.integers(30, 41, size=12).tolist(), [DOC_SOURCE_ID])
            self._named["doc"] = DOC_OBJECT_ID
        make("single", 1, sides=[34])
        make("small", 5)
        make("mixed_sizes", len(_MIXED_SIDES), sides=rng.permutation(_MIXED_SIDES).tolist())
        make("nan_edges", 8, _Style(nan_edges=True), sides=rng.integers(30, 61, 8).tolist())
        make("with_mask", 6, _Style(with_mask=True))
        missing = make("missing_cutout", 6)
        self._specs[int(missing.records[2]["r:diaSourceId"])] = None
        odd = make("mismatched", 6)
        odd_id = int(odd.records[2]["r:diaSourceId"])
        spec = self._specs[odd_id]
        assert spec is not None
        self._specs[odd_id] = replace(spec, mismatched=True)
        make("large", _LARGE_SOURCES)
        broken = make("store_error", 5)
        self._store_errors.add(int(broken.records[1]["r:diaSourceId"]))

    # -- the test-facing API ------------------------------------------------------------

    @property
    def seed(self) -> int:
        """The seed of every generated value."""
        return self._seed

    def object_ids(self) -> list[int]:
        """Every diaObjectId served by ``/api/v1/sources`` (real and generated)."""
        with self._lock:
            return list(self._objects)

    def named(self, name: str) -> int:
        """Return the diaObjectId of a named object.

        Parameters
        ----------
        name : str
            One of ``real`` (a real object with its earlier sources), ``doc`` (the object
            and source of the service's documentation snippets), ``single`` (one
            source), ``small`` (a handful of 30-40 pixel stamps), ``mixed_sizes`` (sides 30
            to 102, odd and even), ``nan_edges`` (blank edges), ``with_mask`` (a ``MASK``
            HDU), ``missing_cutout`` (one source whose cutouts are null: the service
            answers 500), ``mismatched`` (one source whose kinds differ in shape), ``large``
            (1,200 sources), ``store_error`` (one source whose cutout store fails: its
            FITS reply is a 200 carrying an error text, its array and PNG a 500).

        Raises
        ------
        NotFoundError
            For another name, or ``real`` when no real alert with earlier sources is served.
        """
        try:
            return self._named[name]
        except KeyError as exc:
            raise NotFoundError(
                f"no object named {name!r} in the emulator's catalog: "
                f"expected one of {', '.join(sorted(self._named))}"
            ) from exc

    def records(self, object_id: int) -> list[dict[str, Any]]:
        """Return copies of an object's records, all columns, newest first; ``[]`` if unknown."""
        obj = self._objects.get(int(object_id))
        return [dict(record) for record in obj.records] if obj is not None else []

    def real_source_ids(self) -> list[int]:
        """The diaSourceIds whose cutouts come from real alerts (solar-system ones included)."""
        return list(self._real)

    def source_ids(self, object_id: int) -> list[int]:
        """Return an object's diaSourceIds, newest first."""
        return [int(r["r:diaSourceId"]) for r in self.records(object_id)]

    def fits(self, source_id: int, kind: str) -> bytes | None:
        """Return the FITS file served for one cutout, or None when the cutout is null.

        For the ``store_error`` source, the error text served instead of a file.

        Raises
        ------
        NotFoundError
            For a source the catalog does not serve.
        InputError
            For a kind other than ``Science``, ``Template``, ``Difference``.
        """
        _check_kind(kind)
        source_id = int(source_id)
        if source_id in self._store_errors:
            return STORE_ERROR_BODY
        alert = self._real.get(source_id)
        if alert is not None:
            return alert.cutouts.get(kind)
        spec = self._spec(source_id)
        return None if spec is None else generate_cutouts(spec, self._seed)[kind].fits

    def array(self, source_id: int, kind: str) -> np.ndarray:
        """Return the float32 data plane of one cutout (a copy, native byte order).

        Raises
        ------
        NotFoundError
            For an unknown source, or one whose cutout is null.
        """
        plane = self._plane(int(source_id), kind)
        if plane is None:
            raise NotFoundError(f"the cutout {kind} of diaSource {source_id} is null")
        return plane.copy()

    def add_sources(
        self, object_id: int, count: int, *, older: bool = False, side: int | None = None
    ) -> list[int]:
        """Give an object ``count`` new sources and return their diaSourceIds.

        Parameters
        ----------
        object_id : int
            A served object (real or generated).
        count : int
            How many sources to add.
        older : bool, optional
            False (default): the new sources are newer than every existing one. True: late
            sources, older than the object's newest source (between its epochs).
        side : int, optional
            The cutout side of every new source, in [30, 102] (default: drawn from 30 to
            40, like the objects' own).

        Raises
        ------
        NotFoundError
            For an unknown object.
        InputError
            For a side outside [30, 102].
        """
        if side is not None and not MIN_SIDE <= int(side) <= MAX_SIDE:
            raise InputError(f"invalid side {side!r}: expected {MIN_SIDE} to {MAX_SIDE} pixels")
        with self._lock:
            obj = self._objects.get(int(object_id))
            if obj is None:
                raise NotFoundError(f"object {object_id} is not served by the emulator")
            times_now = [float(r["r:midpointMjdTai"]) for r in obj.records]
            newest = max(times_now) if times_now else 61000.0
            oldest = min(times_now) if times_now else newest - 1.0
            if older:
                low = oldest if oldest < newest else newest - 1.0
                times = np.sort(self._rng.uniform(low, newest, size=count)).tolist()
            else:
                times = (newest + 0.5 + np.arange(count, dtype=float)).tolist()
            sides = self._rng.integers(30, 41, size=count).tolist()
            if side is not None:
                sides = [int(side)] * count
            return [int(r["r:diaSourceId"]) for r in self._grow(obj, times, sides)]

    def bulk_objects(self, n: int, sources: tuple[int, int] = (20, 40)) -> list[int]:
        """Generate ``n`` more objects of ``sources[0]`` to ``sources[1]`` sources each.

        The result depends only on the seed and on the calls made before.
        """
        low, high = int(sources[0]), int(sources[1])
        if not 1 <= low <= high:
            raise InputError(f"invalid sources range {sources!r}: expected 1 <= low <= high")
        with self._lock:
            self._bulk_calls += 1
            ids = []
            for _ in range(int(n)):
                obj = self._new_object(_Style())
                count = int(self._rng.integers(low, high + 1))
                start = 61000.0 + float(self._rng.uniform(0.0, 100.0))
                times = np.sort(start + self._rng.uniform(0.0, 150.0, size=count)).tolist()
                self._grow(obj, times, self._rng.integers(30, 41, size=count).tolist())
                ids.append(obj.object_id)
            return ids

    # -- what the server asks -----------------------------------------------------------

    def served_records(self, object_id: int) -> list[dict[str, Any]]:
        """The records of an object as stored (do not mutate), newest first."""
        obj = self._objects.get(object_id)
        return obj.records if obj is not None else []

    def knows_source(self, source_id: int) -> bool:
        """Whether ``/api/v1/cutouts`` knows this diaSourceId."""
        return source_id in self._real or source_id in self._specs

    def owner(self, source_id: int) -> int:
        """The diaObjectId of a source (0 for a solar-system alert)."""
        return self._owner.get(source_id, 0)

    def store_fails(self, source_id: int) -> bool:
        """Whether the service's cutout store fails on this source (``store_error``)."""
        return source_id in self._store_errors

    def is_null(self, source_id: int) -> bool:
        """Whether any cutout of a known source is null (the service then fails)."""
        alert = self._real.get(source_id)
        if alert is not None:
            return any(alert.cutouts.get(kind) is None for kind in KINDS)
        return self._specs.get(source_id) is None

    def array_json(self, source_id: int, kind: str) -> bytes:
        """The JSON text of one cutout's data plane (cached): nested lists, bare ``NaN``."""
        spec = self._specs.get(source_id)
        if spec is not None:
            return _array_json(spec, self._seed, kind)
        key = (source_id, kind)
        text = self._real_texts.get(key)
        if text is None:
            plane = self._plane(source_id, kind)
            if plane is None:
                raise NotFoundError(f"the cutout {kind} of diaSource {source_id} is null")
            text = plane_json(plane)
            self._real_texts[key] = text
        return text

    def _spec(self, source_id: int) -> CutoutSpec | None:
        if source_id not in self._specs:
            raise NotFoundError(f"diaSource {source_id} is not served by the emulator")
        return self._specs[source_id]

    def _plane(self, source_id: int, kind: str) -> np.ndarray | None:
        _check_kind(kind)
        if source_id in self._store_errors:
            raise NotFoundError(f"the cutout store fails on diaSource {source_id}")
        alert = self._real.get(source_id)
        if alert is not None:
            return alert.array(kind)
        spec = self._spec(source_id)
        return None if spec is None else generate_cutouts(spec, self._seed)[kind].data


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")


def load_catalog(
    alerts: Iterable[str | Path] = (), *, seed: int = 0, sample: bool = True
) -> Catalog:
    """Build the catalog an emulator serves.

    Parameters
    ----------
    alerts : iterable of str or Path
        More Avro alert files to serve, after the packaged sample.
    seed : int, optional
        Seed of the generated objects and pixels.
    sample : bool, optional
        Serve the packaged sample of 5 real alerts (default True).

    Returns
    -------
    Catalog

    Examples
    --------
    >>> catalog = load_catalog()
    >>> len(catalog.records(catalog.named("real"))) > 300
    True
    """
    paths = [sample_alerts_path()] if sample else []
    paths.extend(Path(p) for p in alerts)
    return Catalog(read_alerts(paths), seed=seed)
