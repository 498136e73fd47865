"""Fetching an object's forced light curve: one ``/api/v1/fp`` request per object.

Forced photometry is cheap next to the cutouts (one small request per object, against one
per source for the stamps), but it is another request per object and another dimension in
every cube, so it is asked for (``forced_photometry=True``, ``--forced-photometry``) rather
than done by default.
"""

from __future__ import annotations

from typing import Any

from finkcube.cube.photometry import FP_COLUMNS
from finkcube.names import OBJECT_ID
from finkcube.service.client import FinkClient

__all__ = ["fetch_forced"]


def fetch_forced(client: FinkClient, object_id: int) -> dict[str, Any]:
    """The forced light curve of one object as served: its columns by bare name.

    Only :data:`~finkcube.cube.photometry.FP_COLUMNS` are asked for. The columns are those
    of an astropy table (masked where the service sent nulls), in the order served.
    """
    table = client.forced_photometry([object_id], columns=[OBJECT_ID, *FP_COLUMNS])
    if OBJECT_ID in table.colnames:  # one object asked: keep only its rows, if tagged
        table = table[[int(v) == object_id for v in table[OBJECT_ID].tolist()]]
    return {name: table[name] for name in table.colnames}
