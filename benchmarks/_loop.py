"""The baseline of B1: the loop the Fink documentation shows, written as a user would.

One ``requests.post`` for the object's sources, then one ``requests.post`` per source,
sequentially, with ``kind=All`` and ``output-format=array``; ``np.stack`` of the three
kinds, padding to the largest side, a stack over time, an xarray Dataset, ``to_zarr``.
Nothing of finkcube is used, so that the comparison is against what users write today.
"""

from __future__ import annotations

import warnings

import numpy as np
import requests
import xarray as xr

KINDS = ("Science", "Template", "Difference")


def documentation_loop(url: str, object_id: int, store: str) -> int:
    """Fetch every cutout of ``object_id`` one request at a time, write a Zarr v3 cube.

    Returns the number of epochs written.
    """
    sources = requests.post(
        url + "/api/v1/sources",
        json={"diaObjectId": str(object_id), "columns": "r:diaSourceId,r:midpointMjdTai"},
    ).json()
    stamps, times, ids = [], [], []
    for source in sources:
        sid = source["r:diaSourceId"]
        reply = requests.post(
            url + "/api/v1/cutouts",
            json={"diaSourceId": str(sid), "kind": "All", "output-format": "array"},
        ).json()  # the json module accepts the bare NaN tokens
        stamps.append(np.stack([np.asarray(reply["b:cutout" + k], np.float32) for k in KINDS]))
        times.append(source["r:midpointMjdTai"])
        ids.append(sid)
    side = max(s.shape[-1] for s in stamps)
    cube = np.full((len(stamps), len(KINDS), side, side), np.nan, np.float32)
    for i, stamp in enumerate(stamps):
        s = stamp.shape[-1]
        o = (side - s) // 2
        cube[i, :, o : o + s, o : o + s] = stamp
    order = np.argsort(times)  # the service answers newest first
    ds = xr.Dataset(
        {"cutout": (("time", "kind", "y", "x"), cube[order])},
        coords={
            "time": np.asarray(times)[order],
            "kind": list(KINDS),
            "diaSourceId": ("time", np.asarray(ids, np.int64)[order]),
        },
    )
    with warnings.catch_warnings():
        # zarr warns that the "kind" strings' dtype has no Zarr v3 spec yet: noise here.
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification")
        ds.to_zarr(store, mode="w", zarr_format=3, consolidated=False)
    return len(stamps)
