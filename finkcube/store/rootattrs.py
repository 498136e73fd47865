"""Small records a store keeps about itself, as attributes of its root group.

A store's own bookkeeping (how its objects were selected, the sources an ingest left out
of objects that have no cube yet) lives in the root group's ``zarr.json`` attributes,
where any Zarr tool sees it and none takes it for data, rather than in files of its own
beside the groups (which zarr, listing the root, would warn about). Writing one replaces
the root document whole and keeps the other attributes (the catalog's mark among them: a
root attribute does not make the catalog stale).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from finkcube.store.failures import failures
from finkcube.store.layout import root_meta
from finkcube.store.location import META, StoreLike, locate
from finkcube.store.staging import root_document

__all__ = ["root_attribute", "set_root_attribute"]

logger = logging.getLogger(__name__)


def root_attribute(
    store: StoreLike,
    name: str,
    default: Any = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """The value of the root attribute ``name`` (``default`` when the store has none).

    Raises
    ------
    StoreRefusedError
        When ``store`` is not a finkcube store.
    StoreError
        When the root document cannot be read.
    """
    where = locate(store, storage_options)
    with failures(where.url, f"reading the root attribute {name}"):
        return root_meta(where).get("attributes", {}).get(name, default)


def set_root_attribute(
    store: StoreLike,
    name: str,
    value: Any,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Set the root attribute ``name`` to the JSON value ``value`` (``None`` deletes it).

    Nothing is written when the attribute already holds ``value``.

    Raises
    ------
    StoreRefusedError
        When ``store`` is not a finkcube store.
    StoreError
        When the store cannot be written.

    Examples
    --------
    >>> from finkcube.store import init_store
    >>> init_store("memory://doc-rootattrs.zarr")
    >>> set_root_attribute("memory://doc-rootattrs.zarr", "note", {"a": [1, 2]})
    >>> root_attribute("memory://doc-rootattrs.zarr", "note")
    {'a': [1, 2]}
    >>> set_root_attribute("memory://doc-rootattrs.zarr", "note", None)
    >>> root_attribute("memory://doc-rootattrs.zarr", "note", "gone")
    'gone'
    """
    where = locate(store, storage_options)
    with failures(where.url, f"writing the root attribute {name}"):
        attrs = dict(root_meta(where).get("attributes", {}))
        if attrs.get(name) == value:
            return
        if value is None:
            attrs.pop(name, None)
        else:
            attrs[name] = value
        where.replace(META, root_document(attrs))
    logger.debug("%s: root attribute %s written", where.url, name)
