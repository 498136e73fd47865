"""Summaries of a store and of a cube, as ``finkcube info`` prints them.

Read from the groups' metadata (the catalog rebuilt, as a repair would write it, and
compared with the store's own) and the sizes of the files; :func:`cube_summary` reads the
cube's row in its group's ``zarr.json`` (a cube written without one, by an older finkcube
or plain xarray, is opened to compute it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from finkcube.store.catalog import INCOMPLETE, OBJECT, build_catalog, read_catalog, row_of
from finkcube.store.failures import failures
from finkcube.store.layout import STORE_ATTR, checked_group, root_meta
from finkcube.store.location import Store, StoreLike, locate
from finkcube.store.versions import Version

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
        Whether the store's catalog is current: marked so (:func:`~finkcube.store.finalize_store`
        ran since the last write) and listing what the groups hold; else ``finkcube info
        --repair`` rewrites it.
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
    for key, size in where.sizes().items():
        head = key.split("/", 1)[0] if "/" in key else ""
        sizes[head] = sizes.get(head, 0) + size
    return sizes


def _time(value: Any) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _summary(object_id: int, row: Mapping[str, Any], nbytes: int) -> CubeSummary:
    """A cube's summary from its catalog row."""
    return CubeSummary(
        object_id=object_id,
        epochs=int(row.get("epochs") or 0),
        canvas=int(row.get("canvas") or 0),
        planes=tuple(str(p) for p in row.get("planes", ())),
        first_mjd=_time(row.get("first_time")),
        last_mjd=_time(row.get("last_time")),
        nbytes=nbytes,
        missing=int(row.get("missing") or 0),
        bands=dict(sorted(row["bands"].items())) if isinstance(row.get("bands"), dict) else None,
        created=row.get("created") or None,
    )


def store_summary(
    store: StoreLike, *, storage_options: Mapping[str, Any] | None = None
) -> StoreSummary:
    """Summarise a store from its groups' metadata, and tell whether its catalog is current.

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
        stored = read_catalog(where, root)
        catalog = build_catalog(where)  # the groups themselves: what a repair would write
        current = stored is not None and all(
            np.array_equal(stored[name].values, catalog[name].values)
            for name in (OBJECT, "epochs", "missing")
        )
        sizes = _sizes(where)
        columns = {
            name: catalog[name].values.tolist()
            for name in ("epochs", "canvas", "planes", "first_time", "last_time", "missing")
        }
        created = catalog["created"].values.tolist()
        cubes = []
        for i, oid in enumerate(catalog[OBJECT].values.tolist()):
            row = {name: values[i] for name, values in columns.items()}
            row["planes"] = [p for p in str(row["planes"]).split(",") if p]
            row["created"] = created[i]
            cubes.append(_summary(int(oid), row, sizes.get(str(oid), 0)))
    return StoreSummary(
        store=where.url,
        layout=int(root["attributes"][STORE_ATTR]),
        finalized=current,
        cubes=tuple(cubes),
        incomplete=tuple(int(g) for g in catalog.attrs.get(INCOMPLETE, [])),
        nbytes=sum(sizes.values()),
    )


def cube_summary(
    store: StoreLike,
    object_id: int | str,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> CubeSummary:
    """Summarise one cube, with its epochs per band (from its group's ``zarr.json``).

    Raises
    ------
    NotFoundError, IncompleteCubeError, StoreError
        As :func:`finkcube.store.open_cube`.
    """
    where = locate(store, storage_options)
    with failures(where.url, f"summarising cube {object_id}"):
        group, meta = checked_group(where, object_id)
        row = row_of(where, Version(group, group, meta))
        nbytes = sum(where.sizes(group).values())
    return _summary(int(group), row, nbytes)
