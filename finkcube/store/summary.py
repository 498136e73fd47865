"""Summaries of a store and of a cube, as ``finkcube info`` prints them.

Read from the groups' metadata, each cube's ``time`` index and the sizes of the files;
:func:`cube_summary` also reads the cube's ``band`` coordinate. A group the fast path does
not understand (no consolidated metadata, a compressed ``time`` array, as plain xarray
writes it) is read with zarr-python instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from finkcube.names import BAND, CUTOUT_VAR, MISSING_ATTR, PLANES
from finkcube.store.failures import failures
from finkcube.store.layout import (
    CONSOLIDATED,
    STORE_ATTR,
    checked_group,
    marked_complete,
    object_groups,
    root_meta,
)
from finkcube.store.location import Store, StoreLike, locate
from finkcube.store.nodes import raw_time
from finkcube.store.read import open_group

__all__ = ["CubeSummary", "StoreSummary", "cube_summary", "store_summary"]


@dataclass(frozen=True, slots=True)
class CubeSummary:
    """What ``finkcube info`` tells about one cube.

    Attributes
    ----------
    object_id : int
        The diaObjectId.
    epochs : int
        Sources (length of ``time``).
    canvas : int
        The side of the common canvas in pixels.
    planes : tuple of str
        The ``plane`` coordinate.
    first_mjd, last_mjd : float or None
        The time range (MJD, TAI).
    nbytes : int
        Bytes on disk.
    missing : int
        Sources left out for lack of cutouts.
    bands : dict of str to int or None
        Epochs per band (:func:`cube_summary` only).
    created : str or None
        When the cube was built (UTC, ISO 8601).
    """

    object_id: int
    epochs: int
    canvas: int
    planes: tuple[str, ...]
    first_mjd: float | None
    last_mjd: float | None
    nbytes: int
    missing: int
    bands: dict[str, int] | None = None
    created: str | None = None


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """What ``finkcube info`` tells about a store.

    Attributes
    ----------
    store : str
        The store as given.
    layout : int
        The layout version.
    finalized : bool
        Whether the root holds consolidated metadata (plain xarray opens it quietly).
    cubes : tuple of CubeSummary
        The complete cubes, by ascending id.
    incomplete : tuple of int
        Objects whose cube was not completely written.
    nbytes : int
        Bytes on disk, all included.
    """

    store: str
    layout: int
    finalized: bool
    cubes: tuple[CubeSummary, ...]
    incomplete: tuple[int, ...]
    nbytes: int

    @property
    def objects(self) -> int:
        """The number of complete cubes."""
        return len(self.cubes)

    @property
    def epochs(self) -> int:
        """The epochs of all complete cubes."""
        return sum(cube.epochs for cube in self.cubes)


def _sizes(where: Store) -> dict[str, int]:
    """Bytes on disk per top-level entry of the store ("" for the root's own files)."""
    sizes: dict[str, int] = {}
    prefix = where.root + "/"
    for path, info in where.fs.find(where.root, detail=True).items():
        relative = str(path)[len(prefix) :] if str(path).startswith(prefix) else ""
        head = relative.split("/", 1)[0] if "/" in relative else ""
        sizes[head] = sizes.get(head, 0) + int(info.get("size") or 0)
    return sizes


def _fast_times(meta: Mapping[str, Any]) -> bool:
    """Whether the group's ``time`` array is one raw chunk, read here with a plain read."""
    time = (meta.get(CONSOLIDATED) or {}).get("metadata", {}).get("time")
    return isinstance(time, dict) and raw_time(time)


def _facts(
    where: Store, group: str, meta: Mapping[str, Any], time: bytes | None
) -> tuple[list[int], np.ndarray | None]:
    """The shape of the group's ``cutout`` and its times: from the metadata and the raw
    ``time`` chunk when it has both, else read with zarr-python."""
    members = (meta.get(CONSOLIDATED) or {}).get("metadata", {})
    shape = members.get(CUTOUT_VAR, {}).get("shape")
    if shape is not None and _fast_times(meta):
        n = int(members["time"]["shape"][0])
        return list(shape), (np.frombuffer(time, "<f8")[:n] if time else np.empty(0))
    import zarr

    zgroup = zarr.open_group(where.zarr(read_only=True), path=group, mode="r")
    members = dict(zgroup.arrays())
    cutout, times = members.get(CUTOUT_VAR), members.get("time")
    return (
        list(cutout.shape) if cutout is not None else [0, 0, 0, 0, 0],
        np.asarray(times[...], dtype=np.float64) if times is not None else None,
    )


def _summary(
    group: str, meta: Mapping[str, Any], facts: tuple[list[int], np.ndarray | None], nbytes: int
) -> CubeSummary:
    attrs = meta.get("attributes", {})
    cutout, times = facts
    n_planes = cutout[-1] if len(cutout) == 5 else 0
    return CubeSummary(
        object_id=int(group),
        epochs=int(cutout[0]) if cutout else 0,
        canvas=int(cutout[-2]) if len(cutout) == 5 else 0,
        planes=tuple(PLANES[:n_planes]),
        first_mjd=float(times.min()) if times is not None and times.size else None,
        last_mjd=float(times.max()) if times is not None and times.size else None,
        nbytes=nbytes,
        missing=len(attrs.get(MISSING_ATTR, [])),
        created=attrs.get("created"),
    )


def store_summary(
    store: StoreLike, *, storage_options: Mapping[str, Any] | None = None
) -> StoreSummary:
    """Summarise a store from its metadata (and each cube's time index).

    Raises
    ------
    StoreRefusedError
        When ``store`` is not a finkcube store.
    StoreError
        When the store cannot be read.

    Examples
    --------
    >>> from finkcube.store.write import init_store
    >>> init_store("memory://doc-summary.zarr")
    >>> store_summary("memory://doc-summary.zarr").objects
    0
    """
    where = locate(store, storage_options)
    with failures(where.url, "summarising the store"):
        root = root_meta(where)
        groups = object_groups(where)
        complete = {g: m for g, m in groups.items() if m is not None and marked_complete(m)}
        times = where.read_many(f"{g}/time/c/0" for g, m in complete.items() if _fast_times(m))
        sizes = _sizes(where)
        cubes = tuple(
            _summary(g, m, _facts(where, g, m, times.get(f"{g}/time/c/0")), sizes.get(g, 0))
            for g, m in complete.items()
        )
    return StoreSummary(
        store=where.url,
        layout=int(root["attributes"][STORE_ATTR]),
        finalized=CONSOLIDATED in root,
        cubes=cubes,
        incomplete=tuple(int(g) for g in groups if g not in complete),
        nbytes=sum(sizes.values()),
    )


def cube_summary(
    store: StoreLike,
    object_id: int | str,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> CubeSummary:
    """Summarise one cube, with its epochs per band (reads its coordinates).

    Raises
    ------
    NotFoundError, IncompleteCubeError, StoreError
        As :func:`finkcube.store.open_cube`.
    """
    where = locate(store, storage_options)
    with failures(where.url, f"summarising cube {object_id}"):
        group, meta = checked_group(where, object_id)
        ds = open_group(where, group, None)
        bands = Counter(str(band) for band in ds[BAND].values) if BAND in ds else Counter()
        found = where.fs.find(where.path(group), detail=True)
        nbytes = sum(int(info.get("size") or 0) for info in found.values())
        shape = list(ds[CUTOUT_VAR].shape) if CUTOUT_VAR in ds else [0, 0, 0, 0, 0]
        times = np.asarray(ds["time"].values, dtype=np.float64) if "time" in ds else None
        summary = _summary(group, meta, (shape, times), nbytes)
    return replace(summary, bands=dict(sorted(bands.items())))
