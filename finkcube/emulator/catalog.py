"""What the emulator serves: real alerts plus generated objects, one :class:`Catalog`.

Real alerts bring their own diaSource with its cutout files (served byte for byte) and
300-400 earlier sources (``prvDiaSources``) without cutouts: the catalog serves those
sources too and generates cutouts for them that imitate the alert's own. Generated objects
cover what real data will bring (sides 30 to 102, blank edges, a mask plane, a null cutout,
kinds of different shapes, a single source, a large object). Every generated value derives
from the catalog's seed; pixels are drawn lazily, on first request. How the objects are
read in and drawn is in :mod:`~.population`, what the search endpoints read (positions,
tags, TNS names, forced photometry) in :mod:`~.directory`; a :class:`Catalog` adds the
queries of sources and cutouts.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from finkcube.emulator.alerts import read_alerts, sample_alerts_path
from finkcube.emulator.directory import Directory
from finkcube.emulator.fitsgen import CutoutSpec, generate_cutouts
from finkcube.emulator.outages import Outages

# Importable from here, as they were before population.py held them.
from finkcube.emulator.population import DOC_OBJECT_ID as DOC_OBJECT_ID
from finkcube.emulator.population import DOC_SOURCE_ID as DOC_SOURCE_ID
from finkcube.emulator.population import NAMED_OBJECTS, Style
from finkcube.errors import InputError, NotFoundError
from finkcube.names import KINDS, MAX_SIDE, MIN_SIDE

__all__ = ["NAMED_OBJECTS", "Catalog", "load_catalog"]

#: What the service sends, with status 200, for a FITS cutout its cutout store failed on.
STORE_ERROR_BODY = b'{"message": "Internal Server Error"}\n'

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


class Catalog(Directory):
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

    #: Serve null text and boolean cells as the string ``"nan"``, as a server on pandas 2
    #: does (False: ``null``, as on pandas >= 3). Set it on a catalog to test a client.
    pandas2: bool = False

    def __init__(self, alerts: Any = (), *, seed: int = 0) -> None:
        super().__init__(alerts, seed=seed)
        self.outages = Outages()

    # -- the test-facing API ------------------------------------------------------------

    def fail_cutouts(self, source_id: int, reply: str = "null", times: int | None = None) -> None:
        """Make the next ``times`` cutout requests of a source fail, then serve it as usual.

        The service's holes are often transient: cutouts are ingested apart from sources
        (an empty 200 until they are), and cutout rows point at nightly files that move
        after the nightly merge (a 500, or an HTML page in a 200 for FITS).

        Parameters
        ----------
        source_id : int
            A served diaSourceId.
        reply : str, optional
            ``empty`` (200, empty body), ``500``, ``html`` (200 with the cutout service's
            HTML error page, any format), ``null`` (default: as a null cutout, FITS the
            HTML page in a 200, array and PNG a 500) or ``garbled`` (200, bytes that decode
            as nothing).
        times : int or None, optional
            How many requests (each kind of a FITS fetch is one, each retry too) fail;
            None (default): every one until :meth:`serve_cutouts`.
        """
        self.outages.add(source_id, reply, times)

    def serve_cutouts(self, source_id: int) -> None:
        """Serve the cutouts of a source given to :meth:`fail_cutouts` as usual again."""
        self.outages.end(source_id)

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
                obj = self._new_object(Style())
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
