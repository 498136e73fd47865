"""The population of an emulator's catalog: real alerts read in, generated objects drawn.

:class:`Population` holds the state of a :class:`~.catalog.Catalog` (objects and their
records, each source's cutout spec and owner) and draws it: the real alerts' objects with
their earlier sources, the named objects (:data:`NAMED_OBJECTS`), and new objects and
sources on demand. Every generated value derives from the seed; the catalog adds the
queries.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from finkcube.emulator.alerts import RealAlert
from finkcube.emulator.fitsgen import CutoutSpec
from finkcube.emulator.records import (
    IdMaker,
    cutout_spec,
    generated_record,
    newest_first,
    real_record,
)

__all__ = [
    "DOC_OBJECT_ID",
    "DOC_SOURCE_ID",
    "NAMED_OBJECTS",
    "EmulatedObject",
    "Population",
    "Style",
]

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
#: The ids of the service's documentation snippets, served by the ``doc`` object.
DOC_OBJECT_ID = 313761043604045880
DOC_SOURCE_ID = 170050479238676547
_MIXED_SIDES = (30, 31, 34, 37, 45, 50, 57, 64, 71, 80, 88, 95, 101, 102)
_LARGE_SOURCES = 1200


@dataclass(frozen=True, slots=True)
class Style:
    """How an object's stamps look: noise levels and special cases."""

    sigma_science: float = 40.0
    sigma_template: float = 4.0
    nan_edges: bool = False
    with_mask: bool = False


@dataclass(slots=True)
class EmulatedObject:
    """One object served: its position, stamp style, records and light curve."""

    object_id: int
    ra: float
    dec: float
    style: Style
    template_flux: float
    records: list[dict[str, Any]]  # newest first; replaced, never mutated in place
    peak: float | None = None  # time of the light curve's maximum
    amplitude: float = 1e4  # its psfFlux there, nJy


class Population:
    """The objects and sources of a catalog, and how new ones are drawn.

    Parameters
    ----------
    alerts : sequence of RealAlert
        Real alerts to serve (their objects, sources and cutouts).
    seed : int, optional
        Seed of every generated id, record and pixel.
    """

    def __init__(self, alerts: Sequence[RealAlert] = (), *, seed: int = 0) -> None:
        self._seed = int(seed)
        self._lock = threading.RLock()
        self._objects: dict[int, EmulatedObject] = {}
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
            obj = EmulatedObject(
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
    def _style_of(alert: RealAlert) -> Style:
        """Noise levels of the alert's own cutouts, for the stamps generated beside them."""
        return Style(*alert.noise_sigmas())

    def _spec_from_record(self, record: dict[str, Any], style: Style) -> CutoutSpec:
        return cutout_spec(
            record,
            sigma_science=style.sigma_science,
            sigma_template=style.sigma_template,
            nan_edges=style.nan_edges,
            with_mask=style.with_mask,
        )

    def _new_object(self, style: Style, object_id: int | None = None) -> EmulatedObject:
        rng = self._rng
        obj = EmulatedObject(
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
        obj: EmulatedObject,
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
        plain = Style()

        def make(
            name: str, count: int, style: Style = plain, sides: Sequence[int] = ()
        ) -> EmulatedObject:
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
        make("nan_edges", 8, Style(nan_edges=True), sides=rng.integers(30, 61, 8).tolist())
        make("with_mask", 6, Style(with_mask=True))
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
