"""Streaming the pixels of a whole store, object after object, as plain numpy arrays.

A training loop or a survey-wide statistic wants every stamp, in order, as fast as the
disk gives them, not a tree of lazy datasets. :func:`iter_cutouts` checks every requested
cube first, then reads the objects' arrays with zarr-python's asynchronous API: objects go
in batches of about :data:`BATCH_BYTES`, the arrays of one batch read at once
(``asyncio.gather`` of :meth:`zarr.AsyncArray.getitem`, each array opened with
:meth:`zarr.AsyncArray.from_dict` from the group's consolidated metadata, zarr reading and
decoding on the loop's worker threads), on an event loop of its own thread that reads ahead
of the consumer. At most ``2 x threads`` batches are read ahead; a consumer that stops early
cancels them.

Every object read is checked (its group's ``zarr.json`` read after its array): a cube
rewritten while it was read is read again, in the version it then reads as
(:mod:`finkcube.store.versions`), never returned as a mix.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections import deque
from collections.abc import Coroutine, Iterable, Iterator, Mapping
from concurrent.futures import Future, wait
from typing import Any, TypeVar

import numpy as np

from finkcube.errors import IncompleteCubeError, InputError, NotFoundError
from finkcube.ids import parse_ids
from finkcube.names import CUTOUT_VAR
from finkcube.store.failures import failures
from finkcube.store.layout import CONSOLIDATED, loads_or_none, object_groups, root_meta
from finkcube.store.location import META, Store, StoreLike, locate
from finkcube.store.versions import (
    RETRIES,
    CubeChangedError,
    Version,
    check_unchanged,
    fingerprint,
    settle,
)

__all__ = ["BATCH_BYTES", "iter_cutouts", "read_with_attributes"]

#: About how many bytes of arrays are read at once, in one batch handed to the consumer
#: (the fastest of the sizes ``benchmarks/run.py`` tried).
BATCH_BYTES = 8 << 20

_T = TypeVar("_T")

#: Each object to read: its id, its array's size (bytes), the version it reads as and the
#: array's metadata in that version.
Plan = list[tuple[int, int, Version, Mapping[str, Any]]]


def _array_meta(where: Store, version: Version, variable: str) -> Mapping[str, Any]:
    """The metadata of ``variable`` in a version (from the group's consolidated metadata,
    else its own ``zarr.json``), or InputError when it has none."""
    members = (version.meta.get(CONSOLIDATED) or {}).get("metadata")
    if members is not None:
        array = members.get(variable)
    else:  # a group plain xarray wrote (its metadata consolidated at the root, if at all)
        with failures(where.url, f"reading cube {version.group}"):
            key = f"{version.prefix}/{variable}/{META}"
            array = loads_or_none(where.read_many([key]).get(key))
    if array is None or array.get("node_type") != "array":
        raise InputError(
            f"the cube of diaObjectId {version.group} has no array {variable!r} "
            f"(psf is kept only by builds with planes='all')"
        )
    return array


def _read_checked(where: Store, version: Version, variable: str) -> np.ndarray:
    """One array of a version, whole, read with zarr-python; CubeChangedError when the
    cube changed meanwhile (a failure then says so, not what broke)."""
    import zarr

    path = f"{version.prefix}/{variable}"
    with failures(where.url, f"reading {path}"):
        try:
            array = zarr.open_array(where.zarr(read_only=True), path=path, mode="r", zarr_format=3)
            values = np.asarray(array[...])
        except Exception:
            check_unchanged(where, version.check)
            raise
        check_unchanged(where, version.check)
    return values


def _read_again(where: Store, version: Version, variable: str) -> np.ndarray:
    """The array of the version a cube reads as now, read in the caller's thread; a cube
    rewritten while read is read again, up to :data:`RETRIES` times."""
    current = version
    for attempt in range(RETRIES):
        _array_meta(where, current, variable)
        try:
            return _read_checked(where, current, variable)
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


def _plan(where: Store, object_ids: Iterable[int | str] | None, variable: str) -> Plan:
    """Each object's id, array size (bytes) and version, every one checked first."""
    with failures(where.url, "listing the cubes"):
        root_meta(where)
        ids = parse_ids(object_ids) if object_ids is not None else None
        groups = object_groups(where, None if ids is None else map(str, ids))
        versions = settle(where, groups)
    if ids is None:
        ids = sorted(int(g) for g in versions)
    plan = []
    for oid in ids:
        version = versions.get(str(oid))
        if version is None and groups.get(str(oid)) is None and not where.exists(str(oid)):
            raise NotFoundError(
                f"no cube of diaObjectId {oid} in {where.url}; "
                f"see what is there with `finkcube info {where.url}`"
            )
        if version is None:
            raise IncompleteCubeError(
                f"the cube of diaObjectId {oid} in {where.url} was not completely written "
                "(interrupted build?); run `finkcube build` again to redo it"
            )
        array = _array_meta(where, version, variable)
        size = math.prod(array.get("shape", ())) * np.dtype(array.get("data_type", "f4")).itemsize
        plan.append((oid, size, version, array))
    return plan


def iter_cutouts(
    store: StoreLike,
    object_ids: Iterable[int | str] | None = None,
    *,
    variable: str = CUTOUT_VAR,
    storage_options: Mapping[str, Any] | None = None,
    threads: int = 2,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(diaObjectId, array)`` for every cube of a store, read ahead.

    The fast way through a whole store: each ``array`` is the object's whole ``variable``
    as a numpy array (for ``cutout``: ``(time, kind, y, x, plane)`` float32, the same
    values as ``open_cube(store, id).cutout.values``), read by zarr-python with no xarray
    or dask in between, many arrays at once.

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
        How far to read ahead: at most ``2 x threads`` batches of about
        :data:`BATCH_BYTES`, read by zarr's asynchronous API on a thread of the
        iterator's own (0: read in the caller's thread, one object at a time).

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
        return ((oid, _read_again(where, v, variable)) for oid, _, v, _ in plan)
    return _read_ahead(where, _batches(plan), variable, 2 * threads)


def read_with_attributes(
    store: StoreLike,
    object_ids: Iterable[int | str],
    *,
    variable: str,
    threads: int = 2,
) -> dict[int, tuple[dict[str, Any], np.ndarray]]:
    """Each cube's attributes and whole ``variable``, by id, from one read of its group
    document: what :func:`~finkcube.store.cube_attributes` then :func:`iter_cutouts` give,
    at half the reading and parsing (an update's plan reads every cube's ``diaSourceId``).

    The attributes are those of the version planned; a cube rewritten while read is read
    again, as in :func:`iter_cutouts`.

    Raises
    ------
    NotFoundError, IncompleteCubeError, InputError, StoreError
        As :func:`iter_cutouts`.
    """
    where = locate(store)
    plan = _plan(where, object_ids, variable)
    attrs = {oid: dict(version.meta.get("attributes", {})) for oid, _, version, _ in plan}
    arrays = _read_ahead(where, _batches(plan), variable, 2 * max(1, threads))
    return {oid: (attrs[oid], values) for oid, values in arrays}


def _batches(plan: Plan) -> list[Plan]:
    """Consecutive objects grouped into batches of about :data:`BATCH_BYTES` (at least one)."""
    batches, start, size = [], 0, 0
    for i, (_, nbytes, _, _) in enumerate(plan):
        size += nbytes
        if size >= BATCH_BYTES:
            batches.append(plan[start : i + 1])
            start, size = i + 1, 0
    if start < len(plan):
        batches.append(plan[start:])
    return batches


#: One object as the event loop read it: its array, or the error met, and whether the
#: cube was unchanged afterwards.
_Read = tuple[np.ndarray | BaseException, bool]


async def _read_one(
    zstore: Any, version: Version, variable: str, meta: Mapping[str, Any]
) -> np.ndarray | BaseException:
    """One object's array, opened from the metadata of the version planned."""
    import zarr
    from zarr.storage import StorePath

    try:
        path = StorePath(zstore, f"{version.prefix}/{variable}")
        return np.asarray(await zarr.AsyncArray.from_dict(path, dict(meta)).getitem(...))
    except Exception as exc:
        return exc


async def _read_batch(where: Store, zstore: Any, batch: Plan, variable: str) -> list[_Read]:
    """Every array of a batch, read at once; then each cube's ``zarr.json`` (is it still
    the version read?)."""
    got = await asyncio.gather(*(_read_one(zstore, v, variable, m) for _, _, v, m in batch))
    heads = await asyncio.to_thread(where.read_many, [v.head for _, _, v, _ in batch])
    return [
        (values, fingerprint(loads_or_none(heads.get(v.head))) == v.check[2])
        for values, (_, _, v, _) in zip(got, batch, strict=True)
    ]


def _settled(where: Store, batch: Plan, variable: str, got: list[_Read]) -> list[Any]:
    """The batch's arrays: a cube that changed while read is read again (in the caller's
    thread); a failure on an unchanged cube is a StoreError naming the array."""
    out = []
    for (oid, _, version, _), (values, unchanged) in zip(batch, got, strict=True):
        if not unchanged:
            values = _read_again(where, version, variable)
        elif isinstance(values, BaseException):
            with failures(where.url, f"reading {version.prefix}/{variable}"):
                raise values
        out.append((oid, values))
    return out


class _Loop:
    """The event loop of streamed reads, on a thread of its own for the life of the process
    (as zarr's and fsspec's own I/O loops are).

    One loop for every iterator, because an asynchronous file system (s3fs) belongs to the
    event loop it first ran on and fsspec caches one per thread: a loop per iterator, closed
    with it, would leave the next iterator's thread (whose id may be the old one's) a cached
    file system bound to a closed loop. Started at the first stream, never at import, and
    started again in a forked child, whose copy of the thread does not run.
    """

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="finkcube-stream",
                                          daemon=True)  # fmt: skip
                thread.start()
                cls._loop = loop
            return cls._loop

    @classmethod
    def forget(cls) -> None:
        """In a forked child: the parent's loop thread is not running here."""
        cls._loop = None
        cls._lock = threading.Lock()


os.register_at_fork(after_in_child=_Loop.forget)


def _submit(coroutine: Coroutine[Any, Any, _T]) -> Future[_T]:
    return asyncio.run_coroutine_threadsafe(coroutine, _Loop.get())


async def _zarr_store(where: Store) -> Any:
    return where.zarr(read_only=True)


def _read_ahead(
    where: Store, batches: list[Plan], variable: str, ahead: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield the batches' arrays in order, up to ``ahead`` batches read ahead."""
    # zarr's store is made on the loop's thread: an asynchronous file system (s3fs)
    # belongs to the event loop that first uses it, and fsspec keeps one per thread.
    zstore = _submit(_zarr_store(where)).result()
    pending: deque[tuple[Plan, Future[list[_Read]]]] = deque()
    try:
        todo = iter(batches)
        for batch in todo:
            pending.append((batch, _submit(_read_batch(where, zstore, batch, variable))))
            if len(pending) >= ahead:
                break
        while pending:
            batch, future = pending.popleft()
            with failures(where.url, "reading the cubes"):
                got = future.result()
            for more in todo:  # one batch in for each batch out
                pending.append((more, _submit(_read_batch(where, zstore, more, variable))))
                break
            yield from _settled(where, batch, variable, got)
    finally:  # the consumer stopped early or a read failed: cancel what is queued
        for _, future in pending:
            future.cancel()
        wait([future for _, future in pending])
