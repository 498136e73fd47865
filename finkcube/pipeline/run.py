"""The one loop of builds and updates: fetch each job's cutouts, make its cube, write it.

:func:`run_jobs` is what every executor runs: on this process for a local build or update,
or inside one dask task per object on a cluster. A failure that concerns one object only
(its stamps cannot be stacked, a merge refuses them) becomes that object's result; a failure
of the service or of the store stops the loop with its error.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import xarray as xr

from finkcube.config import redact_url
from finkcube.cube.align import align_cube, attach_headers
from finkcube.cube.assemble import assemble_cube, merge_cubes
from finkcube.cube.photometry import attach_forced_photometry, same_forced_photometry
from finkcube.cube.quality import with_quality
from finkcube.cutouts import SourceCutouts
from finkcube.errors import FinkcubeError
from finkcube.names import ALIGNED_VAR, MISSING_ATTR, SOURCE_ID, WCS_VAR
from finkcube.pipeline.completeness import record_left_out
from finkcube.pipeline.fetch import fetch_jobs
from finkcube.pipeline.forced import fetch_forced
from finkcube.pipeline.jobs import Job
from finkcube.pipeline.report import ObjectResult
from finkcube.service.client import FinkClient
from finkcube.store import Store, open_cube, write_cube

__all__ = ["make_cube", "run_jobs"]

logger = logging.getLogger(__name__)

#: The dask scheduler that reads a cube to merge: this process's threads, even when a
#: dask.distributed client is the default (the read is small and the store is right here).
_HERE = "threads"


def make_cube(
    job: Job,
    url: str,
    cutouts: Mapping[int, SourceCutouts],
    missing: Mapping[int, str] | Sequence[int],
    old: xr.Dataset | None = None,
    forced: Mapping[str, Any] | None = None,
    when: dt.datetime | None = None,
) -> xr.Dataset:
    """The cube of a job: assembled anew, or ``old`` with the job's sources merged in; with
    ``forced`` (the ``/api/v1/fp`` columns), its forced light curve attached (replaced).

    ``cutouts`` is emptied as the stamps are placed on the canvas (a dict; all but an
    alignment that needs the stamps' WCS cards), so that a large build never holds its
    stamps and its cube whole at once.

    ``missing`` are the sources asked for and left out, with their reason (a plain sequence
    of ids: reason unknown); the cube records them with the time they were asked, ``when``
    (default: now), in ``missing_reasons`` and ``missing_tried``
    (:mod:`~finkcube.pipeline.completeness`), the sources not asked again keeping theirs.
    """
    asked = dict(missing) if isinstance(missing, Mapping) else dict.fromkeys(missing, "unknown")
    cube = _stack(job, url, cutouts, list(asked), old)
    moment = when or dt.datetime.now(dt.UTC)
    previous = None if old is None else old.attrs
    cube.attrs.update(record_left_out(cube.attrs, previous, asked, moment))
    if job.align is not None or (old is not None and ALIGNED_VAR in old):
        cube = _align(cube, cutouts, old)  # an aligned cube is aligned anew on update
    return cube if forced is None else attach_forced_photometry(cube, forced)


def _align(
    cube: xr.Dataset, cutouts: Mapping[int, SourceCutouts], old: xr.Dataset | None
) -> xr.Dataset:
    """The cube aligned on the sky; a ``planes="data"`` cube first gets the WCS cards that
    came with its stamps (one Science FITS file per source), and those of ``old``."""
    if WCS_VAR not in cube:
        headers: dict[int, str | None] = {}
        if old is not None and WCS_VAR in old:
            held = old[WCS_VAR].values[:, 0]
            headers.update(zip(old[SOURCE_ID].values.tolist(), held, strict=True))
        headers.update({sid: c.stamps[0].header for sid, c in cutouts.items()})
        cube = with_quality(attach_headers(cube, headers))  # the offsets need the cards
    return align_cube(cube)


def _filled(old: xr.Dataset | None, cube: xr.Dataset) -> int:
    """How many sources ``old`` lacked that ``cube`` holds."""
    if old is None:
        return 0
    lacked = {int(s) for s in old.attrs.get(MISSING_ATTR, [])}
    return len(lacked & {int(s) for s in cube[SOURCE_ID].values})


def _stack(
    job: Job,
    url: str,
    cutouts: Mapping[int, SourceCutouts],
    missing: Iterable[int],
    old: xr.Dataset | None,
) -> xr.Dataset:
    # Lazy: the cube's pixels are placed a chunk at a time as the store writes them; an
    # aligned cube is not (reproject reads every epoch whole).
    lazy = job.align is None
    if old is not None:
        return merge_cubes(old, job.records, cutouts, missing=missing, lazy=lazy)
    return assemble_cube(
        job.object_id,
        job.records,
        cutouts,
        planes=job.planes,
        size=job.size,
        columns=job.cube_columns,
        attrs={"api_url": redact_url(url)},  # the credentials are never stored
        lazy=lazy,
    )


def _finish(
    job: Job,
    client: FinkClient,
    cutouts: Mapping[int, SourceCutouts],
    missing: Mapping[int, str],
    store: Store,
) -> ObjectResult:
    oid = job.object_id
    # One /fp request, in this thread, while the pool fetches the next objects' cutouts.
    forced = fetch_forced(client, oid) if job.forced_photometry else None
    old = None
    if job.merge:
        held = open_cube(store, oid)
        if not job.records and forced is not None and same_forced_photometry(held, forced):
            logger.info("diaObjectId %s: no new source, forced light curve unchanged", oid)
            return ObjectResult(oid, "unchanged", held.sizes["time"])
        old = held.load(scheduler=_HERE)
    try:
        cube = make_cube(job, client.url, cutouts, missing, old, forced)
    except FinkcubeError as exc:
        logger.error("diaObjectId %s: %s", oid, exc)
        return ObjectResult(oid, "failed", error=str(exc))
    write_cube(cube, store)
    epochs = cube.sizes["time"]
    added = epochs - (old.sizes["time"] if old is not None else 0)
    filled = _filled(old, cube)
    logger.info("diaObjectId %s: %d epochs written, %d new, %d left out",
                oid, epochs, added, len(missing))  # fmt: skip
    return ObjectResult(
        oid, "updated" if job.merge else "built", epochs, added, tuple(missing),
        reasons=tuple(missing.values()), filled=filled,
    )  # fmt: skip


def run_jobs(
    jobs: Sequence[Job],
    client: FinkClient,
    store: Store,
    *,
    progress: bool | None = False,
) -> Iterator[ObjectResult]:
    """Fetch, make and write the cube of every job, yielding each object's result in turn.

    The cutout requests of all jobs share the client's bounded pool; each cube is made and
    written in the calling thread while the pool fetches the next objects.
    """
    for job, cutouts, missing in fetch_jobs(client, jobs, progress):
        yield _finish(job, client, cutouts, missing, store)
