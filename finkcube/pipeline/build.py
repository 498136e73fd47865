"""Orchestration: list sources, fetch cutouts on a bounded pool, assemble cubes, write them.

This is the only module that mixes I/O and logic. Everything it calls is either pure
(:mod:`finkcube.service.decode`, :mod:`finkcube.cube.assemble`) or a thin I/O layer
(:mod:`finkcube.service.client`, :mod:`finkcube.store`).

Cutouts are fetched by :mod:`finkcube.pipeline.fetch` on one bounded pool shared by all objects of
a build; cubes are assembled and written in the calling thread while the pool keeps
fetching the next objects.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import xarray as xr

from finkcube.cube.assemble import assemble_cube
from finkcube.errors import FinkcubeError, InputError, NotFoundError
from finkcube.ids import parse_id, parse_ids
from finkcube.names import PLANES_ARGS, PlanesArg, bare_column
from finkcube.pipeline.fetch import fetch_objects, list_sources, wire_columns
from finkcube.service.client import FinkClient
from finkcube.service.decode import SourceCutouts
from finkcube.store import (
    check_store,
    delete_cube,
    finalize_store,
    init_store,
    list_objects,
    write_cube,
)

__all__ = ["BuildReport", "ObjectResult", "build_cube", "build_store"]

logger = logging.getLogger(__name__)

Status = Literal["built", "skipped", "updated", "unchanged", "failed"]
#: Why an object the service lists no source for fails.
UNKNOWN_OBJECT = "the service lists no source for it (unknown diaObjectId?)"


@dataclass(frozen=True, slots=True)
class ObjectResult:
    """What a build or update did to one object.

    Attributes
    ----------
    object_id : int
        The diaObjectId.
    status : {"built", "skipped", "updated", "unchanged", "failed"}
        ``skipped``: already complete in the store; ``unchanged``: no new source.
    epochs : int
        Epochs in the object's cube after the operation.
    added : int
        Epochs added by this operation.
    missing : tuple of int
        diaSourceIds whose cutouts the service could not give.
    error : str or None
        Why the object failed, when it did.
    not_found : bool
        The object failed because the service lists no source for it (an unknown id: the
        user's to fix, not a failure of the service).
    """

    object_id: int
    status: Status
    epochs: int = 0
    added: int = 0
    missing: tuple[int, ...] = ()
    error: str | None = None
    not_found: bool = False

    @classmethod
    def unknown(cls, object_id: int) -> ObjectResult:
        """The result of an object the service lists no source for.

        Examples
        --------
        >>> ObjectResult.unknown(12).not_found
        True
        """
        return cls(object_id, "failed", error=UNKNOWN_OBJECT, not_found=True)


@dataclass(slots=True)
class BuildReport:
    """The outcome of :func:`build_store` or :func:`update_store`, one result per object."""

    store: str
    results: list[ObjectResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        """Return how many objects ended with ``status``."""
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[ObjectResult]:
        """The objects that failed."""
        return [r for r in self.results if r.status == "failed"]

    def summary(self) -> str:
        """Return a one-line human summary.

        Examples
        --------
        >>> BuildReport("s.zarr", [ObjectResult(1, "built", 3, 3)], 1.5).summary()
        's.zarr: 1 built, 0 updated, 0 skipped, 0 unchanged, 0 failed; 3 epochs added in 1.5 s'
        """
        added = sum(r.added for r in self.results)
        parts = ", ".join(
            f"{self.count(s)} {s}" for s in ("built", "updated", "skipped", "unchanged", "failed")
        )
        return f"{self.store}: {parts}; {added} epochs added in {self.seconds:.1f} s"


def _cube_columns(columns: Sequence[str] | None) -> list[str]:
    """The bare names of the per-epoch columns a cube keeps (the object id is an attribute)."""
    return [bare_column(c) for c in wire_columns(columns) if bare_column(c) != "diaObjectId"]


def _check_planes(planes: str) -> PlanesArg:
    if planes not in PLANES_ARGS:
        raise InputError(f"invalid planes {planes!r}: expected one of {', '.join(PLANES_ARGS)}")
    return planes  # type: ignore[return-value]


def _check_size(size: int | None) -> int | None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise InputError(f"invalid size {size!r}: expected a positive number of pixels")
    return size


def build_cube(
    object_id: int | str,
    *,
    client: FinkClient | None = None,
    url: str | None = None,
    planes: PlanesArg = "data",
    size: int | None = None,
    columns: Sequence[str] | None = None,
    progress: bool | None = False,
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
    planes = _check_planes(planes)
    size = _check_size(size)
    own = client is None
    active = FinkClient(url) if client is None else client
    try:
        records = list_sources(active, [oid], columns)[oid]
        if not records:
            raise NotFoundError(f"diaObjectId {oid}: {UNKNOWN_OBJECT}")
        for _, recs, cutouts, _missing in fetch_objects(active, [(oid, records)], planes, progress):
            return _assemble(active, oid, recs, cutouts, planes, size, columns)
        raise AssertionError("unreachable: one object planned, none fetched")
    finally:
        if own:
            active.close()


def _assemble(
    client: FinkClient,
    oid: int,
    records: list[dict[str, Any]],
    cutouts: Mapping[int, SourceCutouts],
    planes: PlanesArg,
    size: int | None,
    columns: Sequence[str] | None,
) -> xr.Dataset:
    attrs = {"api_url": client.url}
    return assemble_cube(
        oid,
        records,
        cutouts,
        planes=planes,
        size=size,
        columns=_cube_columns(columns),
        attrs=attrs,
    )


def build_store(
    object_ids: Iterable[int | str],
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
    object_ids : iterable of int or str
        The diaObjectIds; validated before anything is sent or written.
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
        such as ``tcp://host:8786``, or a connected client); see
        :func:`finkcube.distributed.build_store_distributed`. The result is the same store.

    Returns
    -------
    BuildReport
        One :class:`ObjectResult` per object.

    Raises
    ------
    InputError
        For a bad id or option (nothing is sent).
    StoreError
        When ``store`` holds something other than a finkcube store and ``overwrite`` is
        false (nothing is sent).
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
    if scheduler is not None:
        from finkcube.pipeline.distributed import build_store_distributed

        return build_store_distributed(
            object_ids,
            store,
            scheduler=scheduler,
            url=client.url if client is not None else url,
            planes=planes,
            size=size,
            columns=columns,
            workers=workers,
            overwrite=overwrite,
            storage_options=storage_options,
        )
    started = time.perf_counter()
    ids = parse_ids(object_ids)
    if not ids:
        raise InputError("no diaObjectId given: pass ids or --objects-file")
    planes = _check_planes(planes)
    size = _check_size(size)
    # Read only, before any request: a foreign path is refused, a store to resume is found.
    resume = check_store(store, storage_options=storage_options, overwrite=overwrite)
    resume = resume and not overwrite
    done = set(list_objects(store, storage_options=storage_options)) if resume else set()
    own = client is None
    active = FinkClient(url, workers=workers or 8) if client is None else client
    report = BuildReport(str(store))
    ready = False
    try:
        todo = [oid for oid in ids if oid not in done]
        report.results.extend(ObjectResult(oid, "skipped") for oid in ids if oid in done)
        listed = list_sources(active, todo, columns) if todo else {}
        plan: list[tuple[int, list[dict[str, Any]]]] = []
        for oid in todo:
            if listed[oid]:
                plan.append((oid, listed[oid]))
            else:
                logger.info("diaObjectId %s: %s", oid, UNKNOWN_OBJECT)
                report.results.append(ObjectResult.unknown(oid))
        if not plan and not resume:
            logger.info("%s: nothing to build; nothing written", store)
            report.seconds = time.perf_counter() - started
            return report
        init_store(store, storage_options=storage_options, overwrite=overwrite)
        ready = True
        for oid, _ in plan:
            delete_cube(store, oid, storage_options=storage_options)
        for oid, recs, cutouts, missing in fetch_objects(active, plan, planes, progress):
            try:
                cube = _assemble(active, oid, recs, cutouts, planes, size, columns)
            except FinkcubeError as exc:
                logger.error("diaObjectId %s: %s", oid, exc)
                report.results.append(ObjectResult(oid, "failed", error=str(exc)))
                continue
            write_cube(cube, store, storage_options=storage_options)
            n = cube.sizes["time"]
            report.results.append(ObjectResult(oid, "built", n, n, tuple(missing)))
            logger.info("diaObjectId %s: %d epochs written", oid, n)
    finally:
        if ready:
            finalize_store(store, storage_options=storage_options)
        if own:
            active.close()
    report.seconds = time.perf_counter() - started
    return report
