"""Streaming the pixels of a whole store, object after object, as plain numpy arrays.

A training loop or a survey-wide statistic wants every stamp, in order, as fast as the
disk gives them, not a tree of lazy datasets. :func:`iter_cutouts` checks every requested
cube first, then reads each object's array straight from its chunk files
(:mod:`finkcube.store.chunks`; zarr for any other layout) on a few threads, ahead of the
consumer. File reads and Blosc decompression release the GIL, so the threads overlap with
each other and with the consumer. Objects go to the threads in batches of about
:data:`BATCH_BYTES`: handing over each small cube on its own costs more than reading it
(one hand-off per small cube ran slower than no thread at all). Memory holds at most
``2 x threads + 1`` batches; a consumer that stops early cancels what is still queued.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from finkcube.errors import IncompleteCubeError, InputError, NotFoundError
from finkcube.ids import parse_ids
from finkcube.names import CUTOUT_VAR
from finkcube.store.chunks import ChunkReader, simple_layout
from finkcube.store.failures import failures
from finkcube.store.layout import CONSOLIDATED, loads_or_none, root_meta
from finkcube.store.location import META, Store, StoreLike, locate
from finkcube.store.nodes import groups_metadata
from finkcube.store.versions import RETRIES, CubeChangedError, Version, check_unchanged, settle

__all__ = ["BATCH_BYTES", "iter_cutouts"]

#: About how many bytes of arrays one reading thread decodes per hand-off to the consumer
#: (the fastest of the sizes ``benchmarks/run.py`` tried).
BATCH_BYTES = 2 << 20

Plan = list[tuple[int, int, Callable[[], np.ndarray]]]


def _array_meta(oid: int, version: Version, variable: str) -> Mapping[str, Any]:
    """The metadata of ``variable`` in a version, or InputError when it has none."""
    array = (version.meta.get(CONSOLIDATED) or {}).get("metadata", {}).get(variable)
    if array is None or array.get("node_type") != "array":
        raise InputError(
            f"the cube of diaObjectId {oid} has no array {variable!r} "
            f"(psf is kept only by builds with planes='all')"
        )
    return array


def _whole_reader(
    where: Store,
    path: str,
    meta: Mapping[str, Any],
    check: tuple[str, str, bytes] | None = None,
) -> Callable[[], np.ndarray]:
    """A function reading one array whole: from its chunk files when its layout is simple,
    else with zarr; a failure is a StoreError naming the array. With ``check``, the read is
    followed by :func:`~finkcube.store.versions.check_unchanged`."""
    layout = simple_layout(meta)

    def read() -> np.ndarray:
        with failures(where.url, f"reading {path}"):
            try:
                if layout is not None:
                    values = ChunkReader(where, path, layout).read_all()
                else:
                    import zarr

                    array = zarr.open_array(where.zarr(read_only=True), path=path, mode="r")
                    values = np.asarray(array[...])
            except Exception:
                if check is not None:  # a file replaced midway: say so, not why
                    check_unchanged(where, check)
                raise
            if check is not None:
                check_unchanged(where, check)
        return values

    return read


def _version_reader(where: Store, version: Version, variable: str) -> Callable[[], np.ndarray]:
    """:func:`_whole_reader` of the version a cube reads as; a cube rewritten while read is
    read again, in the version it then reads as."""

    def read() -> np.ndarray:
        current = version
        for attempt in range(RETRIES):
            array = _array_meta(int(current.group), current, variable)
            try:
                return _whole_reader(where, f"{current.prefix}/{variable}", array, current.check)()
            except CubeChangedError:
                if attempt == RETRIES - 1:
                    raise
            with failures(where.url, f"reading cube {version.group}"):
                head = f"{version.group}/{META}"
                meta = loads_or_none(where.read_many([head]).get(head))
                found = settle(where, {version.group: meta}).get(version.group)
            if found is None:
                raise IncompleteCubeError(
                    f"the cube of diaObjectId {version.group} in {where.url} was deleted "
                    "while being read"
                )
            current = found
        raise AssertionError("unreachable")  # pragma: no cover

    return read


def _plan(where: Store, object_ids: Iterable[int | str] | None, variable: str) -> Plan:
    """Each object's id, array size (bytes) and reader of ``variable``, checked first."""
    with failures(where.url, "listing the cubes"):
        groups = groups_metadata(where, root_meta(where))
        ids = parse_ids(object_ids) if object_ids is not None else None
        wanted = groups if ids is None else {str(i): groups.get(str(i)) for i in ids}
        versions = settle(where, wanted)
    if ids is None:
        ids = sorted(int(g) for g in versions)
    plan = []
    for oid in ids:
        version = versions.get(str(oid))
        if version is None and str(oid) not in groups:
            raise NotFoundError(
                f"no cube of diaObjectId {oid} in {where.url}; "
                f"see what is there with `finkcube info {where.url}`"
            )
        if version is None:
            raise IncompleteCubeError(
                f"the cube of diaObjectId {oid} in {where.url} was not completely written "
                "(interrupted build?); run `finkcube build` again to redo it"
            )
        array = _array_meta(oid, version, variable)
        size = math.prod(array.get("shape", ())) * np.dtype(array.get("data_type", "f4")).itemsize
        plan.append((oid, size, _version_reader(where, version, variable)))
    return plan


def iter_cutouts(
    store: StoreLike,
    object_ids: Iterable[int | str] | None = None,
    *,
    variable: str = CUTOUT_VAR,
    storage_options: Mapping[str, Any] | None = None,
    threads: int = 2,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(diaObjectId, array)`` for every cube of a store, read ahead on threads.

    The fast way through a whole store: each ``array`` is the object's whole ``variable``
    as a numpy array (for ``cutout``: ``(time, kind, y, x, plane)`` float32, the same
    values as ``open_cube(store, id).cutout.values``), read from its chunk files with no
    xarray or dask in between.

    Parameters
    ----------
    store : str, path or Store
        A finkcube store (local path, fsspec URL or located store).
    object_ids : iterable of int or str, optional
        The objects, in the order wanted (default: every complete cube, ascending id).
    variable : str
        The array to read: ``"cutout"`` (default) or ``"psf"``.
    storage_options : mapping, optional
        Passed to fsspec for URLs.
    threads : int
        Reading threads (0: read in the caller's thread, one object at a time).

    Yields
    ------
    tuple of (int, numpy.ndarray)
        The diaObjectId and its array.

    Raises
    ------
    StoreError
        When ``store`` is not a finkcube store.
    NotFoundError, IncompleteCubeError
        When a requested object has no cube, or an incomplete one (before anything is read).
    InputError
        For a bad id or ``threads``, or a cube without ``variable``.

    Examples
    --------
    >>> from finkcube.names import KINDS
    >>> from finkcube.cube.assemble import assemble_cube
    >>> from finkcube.service.decode import stamps_from_arrays
    >>> from finkcube.store.write import init_store, write_cube
    >>> cut = stamps_from_arrays(5, {k: np.ones((30, 30), np.float32) for k in KINDS})
    >>> rec = {"r:diaSourceId": 5, "r:midpointMjdTai": 60000.5, "r:band": "g"}
    >>> init_store("memory://doc-stream.zarr")
    >>> write_cube(assemble_cube(42, [rec], {5: cut}), "memory://doc-stream.zarr")
    >>> [(oid, x.shape) for oid, x in iter_cutouts("memory://doc-stream.zarr")]
    [(42, (1, 3, 30, 30, 1))]
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise InputError(f"threads must be a whole number >= 0, got {threads!r}")
    where = locate(store, storage_options)
    plan = _plan(where, object_ids, variable)  # every check before the generator starts
    if threads == 0:
        return ((oid, read()) for oid, _, read in plan)
    return _read_ahead(_batches(plan), threads)


def _batches(plan: Plan) -> list[Plan]:
    """Consecutive objects grouped into batches of about :data:`BATCH_BYTES` (at least one)."""
    batches, start, size = [], 0, 0
    for i, (_, nbytes, _) in enumerate(plan):
        size += nbytes
        if size >= BATCH_BYTES:
            batches.append(plan[start : i + 1])
            start, size = i + 1, 0
    if start < len(plan):
        batches.append(plan[start:])
    return batches


def _read_batch(batch: Plan) -> list[Any]:
    return [(oid, read()) for oid, _, read in batch]


def _read_ahead(batches: list[Plan], threads: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield the batches' arrays in order, the threads reading up to 2 batches each ahead."""
    pool = ThreadPoolExecutor(threads, thread_name_prefix="finkcube-stream")
    pending: deque[Future[list[Any]]] = deque()
    todo = iter(batches)
    try:
        for batch in todo:
            pending.append(pool.submit(_read_batch, batch))
            if len(pending) >= 2 * threads:
                break
        while pending:
            done = pending.popleft().result()
            for batch in todo:  # one batch in for each batch out
                pending.append(pool.submit(_read_batch, batch))
                break
            yield from done
    finally:  # the consumer stopped early or a read failed: drop what is queued
        pool.shutdown(wait=True, cancel_futures=True)
