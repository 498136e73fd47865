"""The layout of a finkcube store: its markers, and what its root and groups say of it.

The root group carries :data:`STORE_ATTR` (the layout version) and :data:`CATALOG_ATTR`
(whether the catalog is current); each object is a group named by its decimal diaObjectId,
marked :data:`COMPLETE_ATTR` once written, holding its own consolidated metadata and its
catalog row (:data:`SUMMARY_ATTR`); the catalog is the group :data:`CATALOG` (not an
object id). The root's metadata is not consolidated: plain xarray opens one group at the
group's own ``zarr.json`` whatever the number of objects. These functions read that
metadata and say what it means (a finkcube store or not, a cube complete or not);
:mod:`finkcube.store.write` writes it, through xarray and zarr-python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from finkcube.errors import IncompleteCubeError, NotFoundError, StoreRefusedError
from finkcube.ids import parse_id
from finkcube.store.location import META, Store

__all__ = [
    "CATALOG",
    "CATALOG_ATTR",
    "COMPLETE_ATTR",
    "CONSOLIDATED",
    "CURRENT",
    "HIDDEN_ATTRS",
    "LAYOUT_VERSION",
    "STALE",
    "STORE_ATTR",
    "SUMMARY_ATTR",
    "catalog_current",
    "checked_group",
    "complete_meta",
    "group_name",
    "loads_or_none",
    "marked_complete",
    "object_groups",
    "root_meta",
    "store_meta",
]

#: The root attribute that marks a finkcube store, and its layout version.
STORE_ATTR = "finkcube_store"
LAYOUT_VERSION = 1
#: The group attribute written last: the cube is complete.
COMPLETE_ATTR = "finkcube_complete"
#: The key of a group's consolidated metadata in its ``zarr.json``.
CONSOLIDATED = "consolidated_metadata"
#: The group attribute holding the cube's row of the catalog (a JSON object), written with
#: the cube: the catalog is rebuilt from the groups' documents alone, no array read.
SUMMARY_ATTR = "finkcube_summary"
#: What finkcube writes about a group rather than of its cube: its readers drop them.
HIDDEN_ATTRS = (COMPLETE_ATTR, SUMMARY_ATTR)
#: The group of the catalog, one row per complete cube (not an object id: never a cube).
CATALOG = "catalog"
#: The root attribute that says whether the catalog is :data:`CURRENT` or :data:`STALE`:
#: every write marks it stale first, :func:`~finkcube.store.finalize_store` current.
CATALOG_ATTR = "finkcube_catalog"
CURRENT = "current"
STALE = "stale"


def group_name(object_id: object) -> str:
    """The group of an object: its id, validated before it becomes a path."""
    return str(parse_id(object_id))


def store_meta(where: Store) -> dict[str, Any] | None:
    """The root's metadata if it is a finkcube store, else None; newer layouts refused."""
    meta = where.read_json(META)
    attrs = meta.get("attributes") if isinstance(meta, dict) else None
    version = attrs.get(STORE_ATTR) if isinstance(attrs, dict) else None
    if meta is None or not isinstance(version, int) or isinstance(version, bool):
        return None
    if version > LAYOUT_VERSION:
        raise StoreRefusedError(
            f"{where.url} has layout {version}, newer than this finkcube's ({LAYOUT_VERSION}); "
            "upgrade finkcube"
        )
    return meta


def root_meta(where: Store) -> dict[str, Any]:
    """The root's metadata, or StoreRefusedError when the store is not a finkcube store."""
    meta = store_meta(where)
    if meta is None:
        raise StoreRefusedError(
            f"{where.url} is not a finkcube store; create one with `finkcube build ID --out STORE`"
        )
    return meta


def catalog_current(root: Mapping[str, Any]) -> bool:
    """Whether the root says its catalog is current (no write since it was made).

    A root with consolidated metadata was finalised by a finkcube older than the catalog:
    whatever its attributes say, its catalog may be stale.
    """
    return CONSOLIDATED not in root and root.get("attributes", {}).get(CATALOG_ATTR) == CURRENT


def marked_complete(meta: Mapping[str, Any] | None) -> bool:
    """Whether a group's metadata carries the complete mark."""
    return bool(meta) and meta.get("attributes", {}).get(COMPLETE_ATTR) is True  # type: ignore[union-attr]


def object_groups(
    where: Store, names: Iterable[str] | None = None
) -> dict[str, dict[str, Any] | None]:
    """Each object group's metadata (None where it has no ``zarr.json`` yet), read in one
    batch: of the given groups, or of every group the store lists."""
    names = where.children() if names is None else list(names)
    found = where.read_many(f"{name}/{META}" for name in names)
    return {name: loads_or_none(found.get(f"{name}/{META}")) for name in names}


def loads_or_none(raw: bytes | None) -> dict[str, Any] | None:
    """A group's metadata, or None when it is absent or unreadable (an interrupted write)."""
    try:
        meta = orjson.loads(raw) if raw is not None else None
    except orjson.JSONDecodeError:
        return None
    return meta if isinstance(meta, dict) else None


def checked_group(where: Store, object_id: object) -> tuple[str, dict[str, Any]]:
    """The group of a complete cube and its metadata, or the error that says why not."""
    group = group_name(object_id)
    return group, complete_meta(where, group, where.read_json(group, META))


def complete_meta(where: Store, group: str, meta: dict[str, Any] | None) -> dict[str, Any]:
    """A group's metadata if it is a complete cube, else the error that says why not."""
    if meta is None and where.exists(group):
        meta = {}  # files but no group document: a write cut short before its last file
    if meta is None or not marked_complete(meta):
        root_meta(where)  # outside a finkcube store, the error says so first
    if meta is None:
        raise NotFoundError(
            f"no cube of diaObjectId {group} in {where.url}; "
            f"see what is there with `finkcube info {where.url}`"
        )
    if not marked_complete(meta):
        raise IncompleteCubeError(
            f"the cube of diaObjectId {group} in {where.url} was not completely written "
            "(interrupted build?); run `finkcube build` again to redo it"
        )
    return meta
