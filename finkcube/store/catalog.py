"""The catalog of a store: one row per complete cube, kept in the store's group ``catalog``.

Each cube's row is computed from the cube when it is written and kept in its group's
``zarr.json`` (the attribute :data:`~finkcube.store.layout.SUMMARY_ATTR`), so that the
catalog is rebuilt from the groups' documents alone, with no array read. It is written by
:func:`~finkcube.store.finalize_store` at the end of every build, update and ingest, as
plain Zarr arrays along the dimension ``object`` (written by xarray, with the group's own
consolidated metadata), so that any tool opens it: ``xr.open_zarr(f"{store}/catalog")``.

Every write or delete first marks the catalog stale in the root's attributes
(:data:`~finkcube.store.layout.CATALOG_ATTR`); :func:`read_catalog` also checks the catalog
against a listing of the groups. A stale or missing catalog is rebuilt from the groups
(:func:`build_catalog`), in memory by :func:`finkcube.open_store`, on disk by
:func:`~finkcube.store.finalize_store` and ``finkcube info --repair``.

Columns, along ``object`` (the diaObjectId, int64, ascending):

``epochs``, ``canvas``
    The cube's sources (length of ``time``) and the side of its canvas in pixels.
``planes``, ``bands``
    Its ``plane`` coordinate and the bands it has epochs in, comma-separated strings.
``band_epochs``
    Epochs per band, dims ``(object, band)``.
``first_time``, ``last_time``
    The first and last ``time`` (MJD, TAI); NaN for a cube without epochs.
``ra``, ``dec``
    The mean of the per-epoch ``ra`` and ``dec`` (degrees); NaN when the cube has none.
``missing``, ``completeness``, ``complete``
    The sources left out for lack of cutouts, the share of listed sources kept
    (``epochs / (epochs + missing)``) and whether none was left out.
``created``
    When the cube was built (UTC, ISO 8601; ``""`` when unknown).

Its attribute ``incomplete`` lists the groups that were not complete cubes when it was made.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from finkcube.names import BAND, CUTOUT_VAR, MISSING_ATTR
from finkcube.store.layout import (
    CATALOG,
    CONSOLIDATED,
    SUMMARY_ATTR,
    catalog_current,
    loads_or_none,
    marked_complete,
)
from finkcube.store.location import META, Store
from finkcube.store.staging import cube_files
from finkcube.store.versions import Version, promote, settle

__all__ = [
    "INCOMPLETE",
    "OBJECT",
    "build_catalog",
    "catalog_dataset",
    "cube_row",
    "read_catalog",
    "row_of",
    "write_catalog",
]

# Logged under the public module's name, where users set the store's log level.
logger = logging.getLogger("finkcube.store.write")

#: The catalog's dimension and index: the diaObjectId of each row.
OBJECT = "object"
#: The catalog attribute listing the groups that were incomplete when it was made.
INCOMPLETE = "incomplete"
#: The usual order of bands (others follow, sorted).
_BAND_ORDER = "ugrizy"


def _finite(value: Any) -> float | None:
    """A float, or None for NaN and infinity (JSON has neither)."""
    number = float(value)
    return number if np.isfinite(number) else None


def _mean(ds: xr.Dataset, name: str) -> float | None:
    if name not in ds.variables or ds[name].size == 0:
        return None
    values = np.asarray(ds[name].values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return _finite(finite.mean()) if finite.size else None


def _band_key(band: str) -> tuple[int, str]:
    return (_BAND_ORDER.index(band) if band in _BAND_ORDER else len(_BAND_ORDER), band)


def cube_row(ds: xr.Dataset) -> dict[str, Any]:
    """The catalog row of a cube, as a JSON object (reads its coordinates, not its pixels).

    Examples
    --------
    >>> ds = xr.Dataset(
    ...     {"cutout": (("time", "kind", "y", "x", "plane"), np.zeros((2, 3, 4, 4, 1)))},
    ...     coords={"time": [60000.5, 60001.5], "band": ("time", ["g", "r"]), "plane": ["data"]},
    ...     attrs={"missing_diaSourceIds": ["7"]},
    ... )
    >>> row = cube_row(ds)
    >>> row["epochs"], row["canvas"], row["bands"], row["last_time"], row["missing"]
    (2, 4, {'g': 1, 'r': 1}, 60001.5, 1)
    """
    epochs = int(ds.sizes.get("time", 0))
    cutout = ds.get(CUTOUT_VAR)
    canvas = int(cutout.sizes.get("y", 0)) if cutout is not None else 0
    planes = [str(p) for p in ds["plane"].values] if "plane" in ds.coords else []
    bands = Counter(str(b) for b in ds[BAND].values) if BAND in ds.variables else Counter()
    times = np.asarray(ds["time"].values if "time" in ds.variables else [], dtype=np.float64)
    created = ds.attrs.get("created")
    return {
        "epochs": epochs,
        "canvas": canvas,
        "planes": planes,
        "bands": {band: bands[band] for band in sorted(bands, key=_band_key)},
        "first_time": _finite(np.min(times)) if times.size else None,
        "last_time": _finite(np.max(times)) if times.size else None,
        "ra": _mean(ds, "ra"),
        "dec": _mean(ds, "dec"),
        "missing": len(ds.attrs.get(MISSING_ATTR, [])),
        "created": str(created) if created is not None else None,
    }


def _floats(rows: list[Mapping[str, Any]], key: str) -> np.ndarray:
    values = [row.get(key) for row in rows]
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _ints(rows: list[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array([int(row.get(key) or 0) for row in rows], dtype=np.int64)


def _strings(values: Iterable[str]) -> np.ndarray:
    return np.array(list(values), dtype=object)


def catalog_dataset(
    rows: Mapping[int, Mapping[str, Any]], incomplete: Iterable[int | str] = ()
) -> xr.Dataset:
    """The catalog of the given rows (by diaObjectId), as an :class:`xarray.Dataset`.

    Examples
    --------
    >>> row = {"epochs": 3, "canvas": 40, "planes": ["data"], "bands": {"g": 2, "r": 1}}
    >>> cat = catalog_dataset({42: row})
    >>> cat.object.values.tolist(), cat.bands.values.tolist(), cat.complete.values.tolist()
    ([42], ['g,r'], [True])
    """
    ids = sorted(rows)
    table = [rows[i] for i in ids]
    seen = {band for row in table for band in row.get("bands", {})}
    bands = sorted(seen, key=_band_key)
    per_band = np.array(
        [[int(row.get("bands", {}).get(b, 0)) for b in bands] for row in table], dtype=np.int64
    ).reshape(len(ids), len(bands))
    epochs, missing = _ints(table, "epochs"), _ints(table, "missing")
    listed = epochs + missing
    share = np.divide(epochs, listed, out=np.ones(len(ids)), where=listed > 0)
    one = (OBJECT,)
    return xr.Dataset(
        {
            "epochs": (one, epochs, {"long_name": "sources in the cube"}),
            "canvas": (one, _ints(table, "canvas"), {"long_name": "canvas side, pixels"}),
            "planes": (one, _strings(",".join(r.get("planes", [])) for r in table)),
            "bands": (one, _strings(",".join(r.get("bands", {})) for r in table)),
            "band_epochs": ((OBJECT, BAND), per_band, {"long_name": "epochs per band"}),
            "first_time": (one, _floats(table, "first_time"), {"units": "MJD (TAI)"}),
            "last_time": (one, _floats(table, "last_time"), {"units": "MJD (TAI)"}),
            "ra": (one, _floats(table, "ra"), {"units": "deg", "long_name": "mean ra"}),
            "dec": (one, _floats(table, "dec"), {"units": "deg", "long_name": "mean dec"}),
            "missing": (one, missing, {"long_name": "sources left out"}),
            "completeness": (one, share, {"long_name": "share of listed sources kept"}),
            "complete": (one, missing == 0, {"long_name": "no source left out"}),
            "created": (one, _strings(str(r.get("created") or "") for r in table)),
        },
        coords={
            OBJECT: (one, np.array(ids, dtype=np.int64), {"long_name": "diaObjectId"}),
            BAND: ((BAND,), _strings(bands)),
        },
        attrs={INCOMPLETE: sorted((str(g) for g in incomplete), key=int)},
    )


def row_of(where: Store, version: Version) -> dict[str, Any]:
    """A complete version's row: from its document, else from the cube's coordinates.

    A cube written without its row (by an older finkcube, or by plain xarray, maybe without
    consolidated metadata) is opened with xarray at its folder; its pixels are not read.
    """
    from zarr.storage import StorePath

    row = version.meta.get("attributes", {}).get(SUMMARY_ATTR)
    if isinstance(row, dict):
        return row
    folder: Any = StorePath(where.zarr(read_only=True), version.prefix)  # a zarr store
    with xr.open_dataset(
        folder,
        engine="zarr",
        consolidated=where.consolidates and CONSOLIDATED in version.meta,
        chunks=None,
    ) as ds:
        return cube_row(ds)


def _row(where: Store, version: Version) -> dict[str, Any] | None:
    try:
        return row_of(where, version)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        logger.warning("%s: cube %s left out of the catalog: %s", where.url, version.group, exc)
        return None


def build_catalog(where: Store) -> xr.Dataset:
    """The catalog of a store, rebuilt from its groups' ``zarr.json`` (one batch of reads).

    Each document is parsed and dropped once its row is taken (a store's documents, parsed
    and kept, are millions of small objects that Python's garbage collector would scan
    again and again). A cube written without its row (by an older finkcube) is opened to
    compute it; a group that is not complete is read as its staged copy, if any.
    """
    names = where.children()
    raw = where.read_many(f"{name}/{META}" for name in names)
    rows: dict[int, dict[str, Any]] = {}
    pending: dict[str, dict[str, Any] | None] = {}
    for name in names:
        meta = loads_or_none(raw.pop(f"{name}/{META}", None))
        if meta is not None and marked_complete(meta):
            _add(rows, where, Version(name, name, meta))
        else:
            pending[name] = meta
    staged = settle(where, pending) if pending else {}
    for version in staged.values():
        _add(rows, where, version)
    return catalog_dataset(rows, (g for g in pending if g not in staged))


def _add(rows: dict[int, dict[str, Any]], where: Store, version: Version) -> None:
    row = _row(where, version)
    if row is not None:
        rows[int(version.group)] = row


def write_catalog(where: Store, catalog: xr.Dataset) -> None:
    """Write the catalog group, its ``zarr.json`` deleted first and written last.

    While it is being replaced, readers find no catalog and rebuild it from the groups.
    """
    promote(where, CATALOG, cube_files(CATALOG, catalog), existed=True)


def _as_objects(ds: xr.Dataset) -> xr.Dataset:
    """String variables as Python ``str`` objects, as the catalog is built."""
    strings = {n: v.astype(object) for n, v in ds.variables.items() if v.dtype.kind in "TU"}
    coords = {n: v for n, v in strings.items() if n in ds.coords}
    return ds.assign_coords(coords).assign({n: v for n, v in strings.items() if n not in coords})


def read_catalog(where: Store, root: Mapping[str, Any]) -> xr.Dataset | None:
    """The store's catalog if it is current, loaded; None when it is stale or missing.

    Current means: the root says so, the catalog's ``zarr.json`` did not change while it
    was read, and its objects (with the groups it found incomplete) are the groups listed.
    """
    from zarr.storage import StorePath

    if not catalog_current(root):
        return None
    head = f"{CATALOG}/{META}"
    before = where.read_many([head]).get(head)
    if loads_or_none(before) is None:
        return None
    folder: Any = StorePath(where.zarr(read_only=True), CATALOG)  # a zarr store
    try:
        with xr.open_dataset(
            folder,
            engine="zarr",
            consolidated=where.consolidates,
            chunks=None,
        ) as opened:
            catalog = _as_objects(opened.load())
    except (OSError, KeyError, ValueError, TypeError) as exc:
        logger.info("%s: the catalog is unreadable (%s)", where.url, exc)
        return None
    if where.read_many([head]).get(head) != before or OBJECT not in catalog.coords:
        return None  # replaced while read
    listed = set(where.children())
    known = {str(i) for i in catalog[OBJECT].values.tolist()}
    known.update(str(g) for g in catalog.attrs.get(INCOMPLETE, []))
    if listed != known:
        logger.info("%s: the catalog does not list the store's groups", where.url)
        return None
    return catalog
