"""Fetching: list the sources of objects in batches, stream their cutouts on one pool.

Fetching is one stream of ``(object, source)`` tasks over one pool of ``workers`` threads,
shared by all objects of a build, with a bounded look-ahead so that memory is bounded by the
work in flight, not by the number of objects. Each object is handed back as soon as its last
source is in, while the pool keeps fetching the next objects.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from finkcube.errors import CubeError, DecodeError, NotFoundError, ServiceError
from finkcube.ids import parse_id
from finkcube.names import DEFAULT_COLUMNS, REQUIRED_COLUMNS, PlanesArg, rubin_column
from finkcube.service.client import FinkClient
from finkcube.service.decode import SourceCutouts

__all__ = ["fetch_objects", "list_sources", "wire_columns"]

logger = logging.getLogger(__name__)

#: How many objects one ``/api/v1/sources`` request lists (comma-separated ``diaObjectId``).
SOURCES_BATCH = 50
#: The HTTP status with which the service answers a cutout that is missing from its alert.
_MISSING_CUTOUT_STATUS = 500


def wire_columns(columns: Sequence[str] | None) -> list[str]:
    """Return the ``r:``-prefixed columns to ask for: the required ones plus ``columns``.

    Examples
    --------
    >>> wire_columns(["psfFlux", "r:band"])
    ['r:diaSourceId', 'r:diaObjectId', 'r:midpointMjdTai', 'r:band', 'r:psfFlux']
    """
    chosen = DEFAULT_COLUMNS if columns is None else columns
    return list(dict.fromkeys(rubin_column(c) for c in (*REQUIRED_COLUMNS, *chosen)))


def _fetcher(client: FinkClient, planes: PlanesArg) -> Callable[[int], SourceCutouts | None]:
    """Return a function fetching one source's three cutouts, or None when they are unusable.

    A source is left out, with a log message saying why, when the service has no alert
    behind it (an empty reply), when its alert lacks a cutout (HTTP 500), when its reply
    still cannot be decoded once retries are spent (a FITS request answered with an error
    text: the service's cutout store failed on it), or when its three kinds disagree in
    shape. Any other failure (the service unreachable, 5xx after every retry) stops the
    build with the client's error.
    """
    fetch = client.cutout_arrays if planes == "data" else client.cutout_fits

    def fetch_one(source_id: int) -> SourceCutouts | None:
        try:
            return fetch(source_id)
        except NotFoundError:
            logger.warning("diaSourceId %s: no alert behind it; left out", source_id)
        except CubeError as exc:
            logger.warning("%s; source left out", exc)
        except ServiceError as exc:
            if isinstance(exc.__cause__, DecodeError):
                logger.warning("diaSourceId %s left out: %s", source_id, exc)
            elif exc.status == _MISSING_CUTOUT_STATUS:
                logger.warning("diaSourceId %s: cutout missing from the alert; left out", source_id)
            else:
                raise
        return None

    return fetch_one


def list_sources(
    client: FinkClient, object_ids: Sequence[int], columns: Sequence[str] | None
) -> dict[int, list[dict[str, Any]]]:
    """Return each object's source records, listing objects in comma-separated batches."""
    wanted = wire_columns(columns)
    grouped: dict[int, list[dict[str, Any]]] = {oid: [] for oid in object_ids}
    for start in range(0, len(object_ids), SOURCES_BATCH):
        batch = list(object_ids[start : start + SOURCES_BATCH])
        for record in client.source_records(batch, columns=wanted):
            oid = record.get("r:diaObjectId")
            if oid in grouped:
                grouped[oid].append(record)
            elif len(batch) == 1:
                grouped[batch[0]].append(record)
    return grouped


class _Progress:
    """A tqdm bar over fetched sources, or nothing."""

    def __init__(self, enabled: bool | None, total: int, desc: str) -> None:
        self._bar = None
        if enabled is None:
            enabled = os.isatty(2)
        if enabled and total:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="src", leave=False)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def fetch_objects(
    client: FinkClient,
    plan: Sequence[tuple[int, list[dict[str, Any]]]],
    planes: PlanesArg,
    progress: bool | None,
) -> Iterator[tuple[int, list[dict[str, Any]], dict[int, SourceCutouts], list[int]]]:
    """Fetch the cutouts of every planned object, yielding each object once all its are in.

    Yields ``(object_id, records, cutouts, missing_ids)`` in plan order.
    """
    tasks = [
        (oid, parse_id(record["r:diaSourceId"], what="diaSourceId"))
        for oid, records in plan
        for record in records
    ]
    counts = {oid: len(rs) for oid, rs in plan}
    fetch_one = _fetcher(client, planes)
    bar = _Progress(progress, len(tasks), "cutouts")
    records_of = dict(plan)
    current: dict[int, SourceCutouts] = {}
    missing: list[int] = []
    try:
        # client.map keeps a bounded window in flight and yields in task order.
        results = client.map(lambda task: fetch_one(task[1]), tasks)
        for (oid, sid), got in zip(tasks, results, strict=True):
            bar.update()
            if got is None:
                missing.append(sid)
            else:
                current[sid] = got
            counts[oid] -= 1
            if counts[oid] == 0:
                yield oid, records_of[oid], current, missing
                current, missing = {}, []
    finally:
        bar.close()
