"""Bulk ingest: cubes from alert files (Fink's Data Transfer or livestream), no request sent.

Each packet of an Avro or Parquet alert file is one alert: its ``diaSource`` and its three
cutouts as FITS files, so an ingested cube has every plane (``planes="all"``: data,
variance, mask when present, PSF, WCS cards), in the same schema as a REST build.

How it runs (two passes, so that memory is bounded by the rows in flight, not the night):

1. **scan**: the ids of every row of every file (:func:`~finkcube.bulk.packets.scan_file`;
   the cutouts are skipped), one task per file on a cluster;
2. **plan** (:mod:`~finkcube.pipeline.ingest_plan`): rows grouped by diaObjectId; rows whose
   diaSourceId the object's stored cube already holds are dropped, and an object left with
   none is ``unchanged`` (not written); the others are packed into groups of about ``batch``
   rows;
3. **run** (:mod:`~finkcube.pipeline.ingest_run`): each group reads its rows, decodes their
   FITS and writes each of its objects' cubes once, assembled or merged into the stored
   cube by diaSourceId (time-sorted, re-padded when a larger stamp arrives); on a cluster,
   one task per group, so every cube is written by exactly one task and the store is the
   same with any number of workers.

The result depends only on the set of alerts: ingesting a file twice changes nothing, and
files in any order or split give the same cubes (up to the ``created`` and ``updated``
times): an object with no alert holding all three cutouts yet gets no cube, and its
left-out ids wait in the store's record (the root attribute
:data:`~finkcube.pipeline.ingest_plan.LEFT_OUT_ATTR`) for the run that brings its first stamp.
An interrupted ingest (even ``kill -9``) is finished by running it again: complete
cubes are found unchanged, incomplete ones are written. Solar-system alerts (diaObjectId 0
or null) are skipped and counted. A file that cannot be read stops the ingest with an error
naming it; it is found by the scan, before anything is written.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from finkcube.bulk.files import AlertFile, find_alert_files
from finkcube.bulk.packets import FileIndex, scan_file
from finkcube.errors import InputError
from finkcube.pipeline.executors import connect, refuse_cluster, worker_url
from finkcube.pipeline.ingest_plan import Group, plan_ingest, write_left_out
from finkcube.pipeline.ingest_run import GroupResult, counts, run_group
from finkcube.pipeline.jobs import Job, as_columns
from finkcube.pipeline.report import BuildReport
from finkcube.store import Store, check_store, finalize_store, init_store, locate, repair_store

__all__ = ["IngestReport", "ingest"]

logger = logging.getLogger(__name__)

#: The key prefix of the tasks of an ingest on a cluster.
TASK_PREFIX = "finkcube-ingest"


@dataclass(slots=True)
class IngestReport(BuildReport):
    """The outcome of :func:`~finkcube.ingest`: a result per object, and counts of alerts.

    Attributes
    ----------
    files : int
        Alert files read.
    alerts : int
        Rows (alerts) in them.
    ingested : int
        Epochs added to cubes.
    known : int
        Alerts whose diaSourceId the store already held (not read again).
    duplicates : int
        Alerts repeated in the files (read once).
    left_out : int
        Alerts with a null cutout, listed in their cube's ``missing_diaSourceIds``.
    solar_system : int
        Solar-system alerts (diaObjectId 0 or null), skipped.
    """

    files: int = 0
    alerts: int = 0
    ingested: int = 0
    known: int = 0
    duplicates: int = 0
    left_out: int = 0
    solar_system: int = 0

    def summary(self) -> str:
        """Return a one-line human summary.

        Examples
        --------
        >>> print(IngestReport("s.zarr", files=1, alerts=5, ingested=3, solar_system=2).summary())
        s.zarr: 1 file, 5 alerts: 3 ingested, 0 already stored, 0 left out (null cutout), 2 solar-system skipped; 0 built, 0 updated, 0 unchanged, 0 failed in 0.0 s
        """  # noqa: E501
        objects = ", ".join(
            f"{self.count(s)} {s}" for s in ("built", "updated", "unchanged", "failed")
        )
        files = f"{self.files} file{'' if self.files == 1 else 's'}"
        alerts = f"{self.alerts} alert{'' if self.alerts == 1 else 's'}"
        return (
            f"{self.store}: {files}, {alerts}: {self.ingested} ingested, "
            f"{self.known + self.duplicates} already stored, {self.left_out} left out (null "
            f"cutout), {self.solar_system} solar-system skipped; {objects} in {self.seconds:.1f} s"
        )


class _Progress:
    """A tqdm bar over alerts, or nothing (None: only on a terminal)."""

    def __init__(self, enabled: bool | None, total: int) -> None:
        self._bar = None
        if enabled is None:
            enabled = os.isatty(2)
        if enabled and total:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc="alerts", unit="alert", leave=False)

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _scan_task(file: AlertFile) -> FileIndex:
    return scan_file(file)


def _group_task(
    files: Sequence[AlertFile],
    group: Group,
    store: str,
    options: dict[str, Any],
    columns: list[str],
) -> GroupResult:
    return run_group(files, group, locate(store, options), columns)


class _Local:
    def scan(self, files: Sequence[AlertFile]) -> list[FileIndex]:
        return [scan_file(f) for f in files]

    def run(
        self,
        files: Sequence[AlertFile],
        groups: Sequence[Group],
        store: Store,
        columns: list[str],
        bar: _Progress,
    ) -> list[GroupResult]:
        return [run_group(files, g, store, columns, bar.update) for g in groups]

    def close(self) -> None:
        pass


class _Cluster:
    """Scan and group tasks on a dask.distributed cluster (an address or a Client)."""

    def __init__(self, scheduler: Any) -> None:
        self._client, self._own = connect(scheduler)

    def scan(self, files: Sequence[AlertFile]) -> list[FileIndex]:
        futures = [
            self._client.submit(_scan_task, f, key=f"{TASK_PREFIX}-scan-{i}", pure=False)
            for i, f in enumerate(files)
        ]
        return list(self._client.gather(futures))

    def run(
        self,
        files: Sequence[AlertFile],
        groups: Sequence[Group],
        store: Store,
        columns: list[str],
        bar: _Progress,
    ) -> list[GroupResult]:
        from distributed import as_completed

        url = worker_url(store)
        futures = [
            self._client.submit(
                _group_task,
                list(files),
                g,
                url,
                dict(store.options),
                columns,
                key=f"{TASK_PREFIX}-group-{i}",
                pure=False,
            )
            for i, g in enumerate(groups)
        ]
        sizes = {f.key: g.alerts for f, g in zip(futures, groups, strict=True)}
        for future in as_completed(futures):
            bar.update(sizes[future.key])
        return list(self._client.gather(futures))

    def close(self) -> None:
        if self._own:
            self._client.close()


def ingest(
    paths: Iterable[str | os.PathLike[str]],
    store: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    batch: int = 500,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    progress: bool | None = False,
    scheduler: Any = None,
) -> IngestReport:
    """Make or extend one cube per object from Avro or Parquet alert files; no request sent.

    Parameters
    ----------
    paths : iterable of str or path
        Alert files, folders (searched for ``*.avro``, ``*.parquet``) or globs, local paths
        or fsspec URLs, as Fink's Data Transfer service (fink-client) or livestream writes
        them: each row a full alert packet with its cutouts as FITS bytes.
    store : str or path
        A local path or an fsspec URL; a finkcube store there is merged into (cubes built
        from the REST API included), by diaSourceId.
    columns : sequence of str, optional
        ``diaSource`` fields kept as per-epoch coordinates (default: ``DEFAULT_COLUMNS``,
        as a build).
    batch : int
        About how many alerts are decoded and held at a time (a group): memory scales with
        it, not with the files.
    overwrite : bool
        Replace whatever is at ``store`` first.
    storage_options : mapping, optional
        Passed to fsspec, for the files and the store.
    progress : bool or None
        Show a progress bar in alerts (None: only when stderr is a terminal).
    scheduler : str or distributed.Client, optional
        Run on a dask.distributed cluster: one scan task per file, then one task per group
        (each cube written by exactly one task). The workers must see the files and the
        store (the same filesystem, or fsspec URLs).

    Returns
    -------
    IngestReport
        One result per object (``built``, ``updated``, ``unchanged``, ``failed``) and the
        counts of alerts.

    Raises
    ------
    InputError
        When no path is given or one matches no alert file (nothing is read or written).
    StoreRefusedError
        When ``store`` holds something other than a finkcube store and ``overwrite`` is false.
    DecodeError
        When a file cannot be read or holds no Rubin alerts (found before anything is
        written; the message names the file).
    StoreError
        When the store cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> from finkcube.emulator.alerts import sample_alerts_path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     report = ingest([sample_alerts_path()], f"{tmp}/cubes.zarr")
    >>> report.count("built"), report.solar_system
    (3, 2)
    """
    started = time.perf_counter()
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InputError(f"invalid batch {batch!r}: expected a positive number of alerts")
    options = dict(storage_options or {})
    files = find_alert_files(paths, options)
    target = locate(store, options)
    resume = check_store(target, overwrite=overwrite) and not overwrite
    cube_columns = Job(0, (), columns=as_columns(columns)).cube_columns
    if scheduler is not None:
        refuse_cluster(target)
    runner: _Local | _Cluster = _Local() if scheduler is None else _Cluster(scheduler)
    report = IngestReport(str(store), files=len(files))
    written = False
    bar = _Progress(False, 0)
    try:
        indexes = runner.scan(files)
        if resume:  # promote what a crashed earlier run staged, before planning
            repair_store(target)
        plan = plan_ingest(indexes, target, resume=resume, batch=batch)
        report.alerts, report.known = plan.alerts, plan.known
        report.solar_system = plan.solar_system
        report.results.extend(plan.settled)
        if plan.groups:
            init_store(target, overwrite=overwrite)
            written = True
            bar = _Progress(progress, sum(g.alerts for g in plan.groups))
            done = runner.run(files, plan.groups, target, cube_columns, bar)
            for name, value in counts(done).items():
                setattr(report, name, value)
            record = dict(plan.left_out)
            for group in done:
                record.update(group.waiting)
                for oid in group.placed:
                    record.pop(oid, None)
            if record != plan.left_out:
                write_left_out(target, record)
            report.results.extend(r for g in done for r in g.results)
    finally:
        bar.close()
        if written:
            finalize_store(target)
        runner.close()
        report.seconds = time.perf_counter() - started
    report.results.sort(key=lambda r: r.object_id)
    return report
