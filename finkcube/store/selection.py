"""How a store's objects were selected: a record in the root group's attributes.

A build that selects its objects through the service's search endpoints (a cone, a tag, a
name) records the selection and the options it built with in the root attribute
:data:`SELECTIONS_ATTR`, a JSON list with one entry per distinct selection, so that
``finkcube update --reselect`` can run the same searches again and build the objects that
joined since. The root's other attributes are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from finkcube.errors import StoreError
from finkcube.store.location import StoreLike, locate
from finkcube.store.rootattrs import root_attribute, set_root_attribute

__all__ = ["SELECTIONS_ATTR", "record_selection", "stored_selections"]

logger = logging.getLogger(__name__)

#: The root attribute that lists the selections a store was built from.
SELECTIONS_ATTR = "finkcube_selections"


def stored_selections(
    store: StoreLike, *, storage_options: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The selection records of a store, oldest first (``[]`` when none was recorded).

    Raises
    ------
    StoreRefusedError
        When ``store`` is not a finkcube store.
    StoreError
        When the record is not a list of JSON objects.

    Examples
    --------
    >>> from finkcube.store.write import init_store
    >>> init_store("memory://doc-selections.zarr")
    >>> record_selection("memory://doc-selections.zarr", {"selection": {"tag": "in_tns"}})
    >>> stored_selections("memory://doc-selections.zarr")
    [{'selection': {'tag': 'in_tns'}}]
    """
    where = locate(store, storage_options)
    found = root_attribute(where, SELECTIONS_ATTR, [])
    if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
        raise StoreError(f"{where.url}: the root attribute {SELECTIONS_ATTR} is not a list of "
                         "selections; rebuild the store")  # fmt: skip
    return found


def record_selection(
    store: StoreLike,
    record: Mapping[str, Any],
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Add a selection record to the store's root attributes (once: an equal one is kept).

    Parameters
    ----------
    store : str, path or Store
        A finkcube store (:func:`~finkcube.store.init_store`).
    record : mapping
        A JSON object: the selection and the build options it was built with.

    Raises
    ------
    StoreRefusedError
        When ``store`` is not a finkcube store.
    StoreError
        When the store cannot be written.
    """
    where = locate(store, storage_options)
    held = stored_selections(where)
    if dict(record) in held:
        return
    set_root_attribute(where, SELECTIONS_ATTR, [*held, dict(record)])
    logger.debug("%s: selection recorded", where.url)
