"""Fetching: list the sources of objects in batches, stream their cutouts on one pool.

Fetching is one stream of ``(job, source)`` tasks over the client's pool of ``workers``
threads, shared by all objects of a build or an update, with a bounded look-ahead so that
memory follows the work in flight, not the number of objects. Each object is handed back as
soon as its last source is in, while the pool keeps fetching the next objects.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from finkcube.cutouts import SourceCutouts
from finkcube.errors import (
    BadRequestError,
    CubeError,
    DecodeError,
    FinkcubeWarning,
    InvalidIdError,
    NotFoundError,
    ServiceError,
)
from finkcube.ids import parse_id
from finkcube.names import PlanesArg
from finkcube.pipeline.completeness import DECODE_ERROR, NO_CUTOUT, SERVICE_ERROR
from finkcube.pipeline.jobs import Job, wire_columns
from finkcube.service.client import FinkClient
from finkcube.service.limits import MAX_ROWS_PER_OBJECT
from finkcube.service.replies import RetriesSpentError

__all__ = ["Fetched", "fetch_jobs", "list_sources"]

logger = logging.getLogger(__name__)

#: How many objects one ``/api/v1/sources`` request lists (comma-separated ``diaObjectId``).
SOURCES_BATCH = 50
#: The HTTP status with which the service answers a cutout that is missing from its alert.
_MISSING_CUTOUT_STATUS = 500
_ID_KEY = "r:diaSourceId"

#: What :func:`fetch_jobs` yields per job: the job, its stamps by diaSourceId, and the
#: diaSourceIds left out with their reason (of :data:`~.completeness.REASONS`).
Fetched = tuple[Job, dict[int, SourceCutouts], dict[int, str]]


#: The diaSourceId a record is given when the service sent none valid (0 is no valid id).
INVALID_SOURCE_ID = 0


def _checked(record: dict[str, Any], object_id: object) -> dict[str, Any]:
    """Return ``record`` with its diaSourceId an int, or marked invalid with a warning.

    A malformed id is the service's fault on that record only: the record is kept, so that
    its object is not mistaken for an unknown one, but with :data:`INVALID_SOURCE_ID`, which
    is never fetched, and the cube is made from the other records.
    """
    value = record.get(_ID_KEY)
    try:
        source_id = parse_id(value, what="diaSourceId")
    except InvalidIdError:
        shown = f"no {_ID_KEY}" if _ID_KEY not in record else f"{_ID_KEY} {value!r:.60}"
        logger.warning(
            "diaObjectId %s: the service sent a source record with %s; record skipped",
            object_id, shown,
        )  # fmt: skip
        source_id = INVALID_SOURCE_ID
    if source_id is value:
        return record
    return {**record, _ID_KEY: source_id}


def _source_id(record: Mapping[str, Any]) -> int | None:
    """The diaSourceId of a record, or None when it is not a valid one (not fetched)."""
    try:
        return parse_id(record.get(_ID_KEY), what="diaSourceId")
    except InvalidIdError:
        return None


def list_sources(
    client: FinkClient, object_ids: Sequence[int], columns: Sequence[str] | None
) -> dict[int, list[dict[str, Any]]]:
    """Return each object's source records, listing objects in comma-separated batches.

    A record whose diaSourceId is not a valid id (a float, a negative, a path, none) is
    kept with the id :data:`INVALID_SOURCE_ID` after a warning naming it: it is never
    fetched, and an object whose every record is such fails alone (see
    :func:`finkcube.cube.epochs.pair_epochs`).

    An object listed with the service's cap of 10,000 sources gets a
    :class:`~finkcube.errors.FinkcubeWarning`: the service returns the *oldest* 10,000 and
    never the newer ones (no pagination), so its cube lacks its latest sources.
    """
    wanted = wire_columns(columns)
    grouped: dict[int, list[dict[str, Any]]] = {oid: [] for oid in object_ids}
    for start in range(0, len(object_ids), SOURCES_BATCH):
        batch = list(object_ids[start : start + SOURCES_BATCH])
        for record in client.source_records(batch, columns=wanted):
            oid = record.get("r:diaObjectId")
            if oid in grouped:
                grouped[oid].append(_checked(record, oid))
            elif len(batch) == 1:
                grouped[batch[0]].append(_checked(record, batch[0]))
    for oid, records in grouped.items():
        if len(records) >= MAX_ROWS_PER_OBJECT:
            warnings.warn(
                f"diaObjectId {oid}: the service listed {len(records)} sources, its cap; it "
                f"lists the oldest {MAX_ROWS_PER_OBJECT} of an object and hides the newer "
                "ones, which its cube lacks",
                FinkcubeWarning,
                stacklevel=2,
            )
    return grouped


def _fetcher(
    client: FinkClient, planes: PlanesArg, align: str | None = None
) -> Callable[[int], SourceCutouts | str]:
    """Return a function fetching one source's three cutouts, or the reason they are missing.

    A source is left out, with a log message saying why, and its reason (see
    :mod:`~finkcube.pipeline.completeness`): ``no_cutout`` when the service has no cutout
    behind it (an empty reply), ``service_error`` when the service fails on it (a 500, its
    error page in a 200, or retries spent on 5xx, timeouts or dropped connections),
    ``decode_error`` when its reply still cannot be decoded once retries are spent or its
    three kinds disagree in shape. Every one of these can be transient: the source is
    asked again by a later update. One source never stops the work of the others; only a
    request that cannot be sent at all (a TLS failure, an invalid URL) or a refused reply
    (400, oversize) does.
    """
    fetch = client.cutout_arrays if planes == "data" else client.cutout_fits
    if planes == "data" and align is not None:  # one FITS file more per source, for its WCS
        fetch = client.cutout_arrays_wcs

    def fetch_one(source_id: int) -> SourceCutouts | str:
        try:
            return fetch(source_id)
        except NotFoundError:
            logger.warning("diaSourceId %s: no cutout behind it (empty reply); left out", source_id)
            return NO_CUTOUT
        except CubeError as exc:
            logger.warning("%s; source left out", exc)
            return DECODE_ERROR
        except BadRequestError:
            raise
        except ServiceError as exc:
            if isinstance(exc.__cause__, DecodeError):
                logger.warning("diaSourceId %s left out: %s", source_id, exc)
                return DECODE_ERROR
            if exc.status == _MISSING_CUTOUT_STATUS:
                logger.warning("diaSourceId %s: the service failed on it (HTTP 500); left out",
                               source_id)  # fmt: skip
            else:
                logger.warning("diaSourceId %s left out: %s", source_id, exc)
            return SERVICE_ERROR
        except RetriesSpentError as exc:  # not a TLS failure: those stop the work
            logger.warning("diaSourceId %s left out: %s", source_id, exc)
            return SERVICE_ERROR

    return fetch_one


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


def fetch_jobs(
    client: FinkClient, jobs: Sequence[Job], progress: bool | None = False
) -> Iterator[Fetched]:
    """Fetch the cutouts of every job, yielding each job once all its sources are in.

    Jobs come back in the order given; an object with no source left to fetch comes back
    at once. A record without a valid diaSourceId is not fetched (the cube is made from
    the others).
    """
    fetchers = {key: _fetcher(client, *key) for key in {(job.planes, job.align) for job in jobs}}
    tasks = [
        (index, source_id)
        for index, job in enumerate(jobs)
        for source_id in map(_source_id, job.records)
        if source_id is not None
    ]
    left = [0] * len(jobs)
    for index, _ in tasks:
        left[index] += 1
    bar = _Progress(progress, len(tasks), "cutouts")
    done = 0
    current: dict[int, SourceCutouts] = {}
    missing: dict[int, str] = {}

    def fetch(task: tuple[int, int]) -> SourceCutouts | str:
        return fetchers[jobs[task[0]].planes, jobs[task[0]].align](task[1])

    try:
        # client.map keeps a bounded window in flight and yields in task order.
        results = client.map(fetch, tasks)
        for (index, sid), got in zip(tasks, results, strict=True):
            while done < index:  # jobs with nothing to fetch
                yield jobs[done], {}, {}
                done += 1
            bar.update()
            if isinstance(got, str):
                missing[sid] = got
            else:
                current[sid] = got
            del got  # the job's dict holds the stamps alone: its cube may release them
            left[index] -= 1
            if left[index] == 0:
                yield jobs[index], current, missing
                current, missing = {}, {}
                done = index + 1
        for index in range(done, len(jobs)):
            yield jobs[index], {}, {}
    finally:
        bar.close()
