"""Builds: one object's cube in memory (:func:`build_cube`), or many into a store
(:func:`build_store`, which resumes when re-run)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import xarray as xr

from finkcube.errors import InputError, NotFoundError
from finkcube.ids import parse_id, parse_ids
from finkcube.names import PlanesArg
from finkcube.pipeline.executors import executor_for
from finkcube.pipeline.fetch import fetch_jobs, list_sources
from finkcube.pipeline.forced import fetch_forced
from finkcube.pipeline.jobs import Job, as_columns, check_align, check_planes, check_size
from finkcube.pipeline.plan import plan_build
from finkcube.pipeline.report import UNKNOWN_OBJECT, BuildReport
from finkcube.pipeline.run import make_cube
from finkcube.pipeline.select import Selection, select_objects
from finkcube.service.client import FinkClient
from finkcube.store import check_store, delete_cube, finalize_store, init_store, locate
from finkcube.store.selection import record_selection

__all__ = ["build_cube", "build_record", "build_store"]

logger = logging.getLogger(__name__)


def build_cube(
    object_id: int | str,
    *,
    client: FinkClient | None = None,
    url: str | None = None,
    planes: PlanesArg = "data",
    size: int | None = None,
    columns: Sequence[str] | None = None,
    progress: bool | None = False,
    forced_photometry: bool = False,
    align: str | None = None,
) -> xr.Dataset:
    """Fetch every source of one object and stack its cutouts into a cube.

    Parameters
    ----------
    object_id : int or str
        The diaObjectId.
    client : FinkClient, optional
        The client to use; by default one is made for ``url``.
    url : str, optional
        The API's base URL when no client is given (default: ``$FINKCUBE_URL``, else the
        Fink LSST API).
    planes : {"data", "all"}
        ``"data"``: the data block of each cutout (``output-format=array``, one request per
        source); ``"all"``: data, variance and mask, the PSF and the WCS cards from the FITS
        files (three requests per source).
    size : int, optional
        A fixed canvas side; by default the largest cutout side of the object.
    columns : sequence of str, optional
        Source columns kept as per-epoch coordinates (default: ``DEFAULT_COLUMNS``).
    progress : bool or None
        Show a progress bar (None: only when stderr is a terminal).
    forced_photometry : bool
        Also fetch the object's forced light curve (one ``/api/v1/fp`` request) onto the
        ``fp_time`` dimension (``fp_psfFlux``, ``fp_band``, ...; see the README).
    align : {"sky"}, optional
        Also resample every epoch and kind onto one sky grid, north up, east left, the
        object's mean position at the centre (the ``aligned`` variable, see
        :meth:`FinkAccessor.align`). It needs each epoch's WCS: with ``planes="data"`` one
        Science FITS file per source is fetched besides the array reply (two requests per
        source instead of one); ``planes="all"`` has it already.

    Returns
    -------
    xarray.Dataset
        The cube, described in the README (dims ``time, kind, y, x, plane``).

    Raises
    ------
    InvalidIdError
        For an id that is not a positive decimal integer; nothing is sent.
    NotFoundError
        When the service knows no source of the object.

    Examples
    --------
    >>> from finkcube.emulator import Emulator
    >>> with Emulator() as emu:
    ...     cube = build_cube(emu.catalog.named("small"), url=emu.url)
    >>> cube.cutout.dims
    ('time', 'kind', 'y', 'x', 'plane')
    """
    oid = parse_id(object_id)
    job = Job(oid, (), check_planes(planes), check_size(size), as_columns(columns),
              align=check_align(align))  # fmt: skip
    active = FinkClient(url) if client is None else client
    try:
        records = list_sources(active, [oid], columns)[oid]
        if not records:
            raise NotFoundError(f"diaObjectId {oid}: {UNKNOWN_OBJECT}")
        job = replace(job, records=tuple(records))
        ((_, cutouts, missing),) = fetch_jobs(active, [job], progress)
        forced = fetch_forced(active, oid) if forced_photometry else None
        return make_cube(job, active.url, cutouts, missing, forced=forced)
    finally:
        if client is None:
            active.close()


def build_store(
    object_ids: Iterable[int | str] | None,
    store: str | os.PathLike[str],
    *,
    client: FinkClient | None = None,
    url: str | None = None,
    planes: PlanesArg = "data",
    size: int | None = None,
    columns: Sequence[str] | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    progress: bool | None = False,
    scheduler: Any = None,
    selection: Selection | Mapping[str, Any] | None = None,
    forced_photometry: bool = False,
    align: str | None = None,
) -> BuildReport:
    """Build one cube per object into one Zarr store; a re-run resumes.

    Objects already complete in the store are skipped; an object whose write was
    interrupted is redone. Sources of many objects are listed in batches, and the cutout
    requests of all objects share one bounded pool of ``workers`` threads.

    Nothing is written before it is needed: ``store`` is checked first (a path that holds
    something else is refused before any request is sent), and it is created only once
    some object has sources to build. An object the service lists no source for ends
    ``failed`` with ``not_found`` set; the others are built.

    Parameters
    ----------
    object_ids : iterable of int or str, or None
        The diaObjectIds; validated before anything is sent or written. None or empty
        with a ``selection``.
    store : str or path
        A local path or an fsspec URL (``s3://bucket/cubes.zarr``).
    client, url, planes, size, columns, progress
        As for :func:`build_cube`.
    workers : int, optional
        Concurrent requests of a new client (default 8); a given ``client`` keeps its own.
    overwrite : bool
        Replace whatever is at ``store`` (a finkcube store is otherwise resumed, anything
        else refused).
    storage_options : mapping, optional
        Passed to fsspec for URLs.
    scheduler : str or distributed.Client, optional
        Run the per-object work as tasks on a dask.distributed cluster (a scheduler address
        such as ``tcp://host:8786``, or a connected client): each task fetches, assembles and
        writes one object's cube, with ``workers`` requests in flight inside it; this process
        lists the sources, creates and finalises the store. The result is the same store. A
        local ``store`` path is made absolute; the workers must see the same filesystem (or
        use an fsspec URL such as ``s3://``); ``storage_options`` travel with each task.
    selection : Selection or mapping, optional
        Objects to select through the service's search endpoints (a cone, a tag, a name:
        :class:`~finkcube.Selection` or its fields), built after ``object_ids``. The store
        records it, with ``planes``, ``size``, ``columns`` and ``forced_photometry``, so that
        :func:`~finkcube.update_store` with ``reselect=True`` can run it again.
    forced_photometry : bool
        As for :func:`build_cube`: each cube also carries its forced light curve.
    align : {"sky"}, optional
        As for :func:`build_cube`: each cube also carries its stamps aligned on the sky.
        An update of an aligned cube aligns it anew.

    Returns
    -------
    BuildReport
        One :class:`ObjectResult` per object.

    Raises
    ------
    InputError
        For a bad id or option (nothing is sent).
    StoreRefusedError
        When ``store`` holds something other than a finkcube store and ``overwrite`` is
        false, or can never be one (nothing is sent).
    InputError
        When complete cubes to skip were built with other ``planes`` or ``size`` (nothing
        is sent): build into another store, or pass ``overwrite=True``.
    StoreError
        When the store cannot be written.
    TransportError, ServiceError
        When the service cannot be reached or keeps failing once retries are spent; the
        objects written so far stay complete and a re-run resumes.

    Examples
    --------
    >>> import tempfile
    >>> from finkcube.emulator import Emulator
    >>> with Emulator() as emu, tempfile.TemporaryDirectory() as tmp:
    ...     report = build_store([emu.catalog.named("small")], f"{tmp}/cubes.zarr", url=emu.url)
    >>> report.count("built")
    1
    """
    started = time.perf_counter()
    ids = parse_ids(object_ids or ())
    chosen = _as_selection(selection)
    if not ids and chosen is None:
        raise InputError("no diaObjectId given: pass ids or --objects-file, or a selection")
    planes, size, align = check_planes(planes), check_size(size), check_align(align)
    target = locate(store, storage_options)  # once: every step below gets this one
    if chosen is not None:  # a refused path is refused before the search is sent
        check_store(target, overwrite=overwrite)
    executor = executor_for(scheduler, target)
    active = FinkClient(url, workers=workers or 8) if client is None else client
    report = BuildReport(str(store))
    ready = False
    try:
        if chosen is not None:
            ids = _selected(active, chosen, ids)
        plan = plan_build(
            active, target, ids, planes=planes, size=size, columns=columns, overwrite=overwrite,
            forced_photometry=forced_photometry, align=align,
        )  # fmt: skip
        report.results.extend(plan.settled)
        if not plan.jobs and not plan.resume:
            logger.info("%s: nothing to build; nothing written", store)
            return report
        init_store(target, overwrite=overwrite)
        ready = True
        if chosen is not None:
            record = build_record(chosen, planes, size, columns, forced_photometry, align)
            record_selection(target, record)
        for job in plan.jobs:  # an interrupted earlier write of these is redone
            delete_cube(target, job.object_id)
        report.results.extend(executor.run(plan.jobs, active, target, progress))
    finally:
        if ready:
            finalize_store(target)
        if client is None:
            active.close()
        executor.close()
        report.seconds = time.perf_counter() - started
    return report


def _as_selection(selection: Selection | Mapping[str, Any] | None) -> Selection | None:
    if selection is None or isinstance(selection, Selection):
        return selection
    if isinstance(selection, Mapping):
        return Selection.from_dict(selection)
    raise InputError(f"invalid selection {selection!r}: expected a Selection or its fields")


def _selected(client: FinkClient, selection: Selection, ids: list[int]) -> list[int]:
    """The given ids, then those the selection gives (InputError when there are none)."""
    found = select_objects(client, selection)
    if not ids and not found:
        raise InputError(f"the {selection.describe()} search selected no object; nothing written")
    logger.info("%s: %d object(s) selected", selection.describe(), len(found))
    return list(dict.fromkeys((*ids, *found)))


def build_record(
    selection: Selection,
    planes: str,
    size: int | None,
    columns: Sequence[str] | None,
    forced_photometry: bool,
    align: str | None = None,
) -> dict[str, Any]:
    """What a store records of a selection: the selection and the options it built with."""
    return {
        "selection": selection.to_dict(),
        "planes": planes,
        "size": size,
        "columns": None if columns is None else list(columns),
        "forced_photometry": bool(forced_photometry),
        "align": align,
    }
