"""Items of :class:`finkcube.ml.CubeDataset` read from a store's cubes (not a training set).

One object's epochs are read in one xarray selection of its lazy cube, then resized,
normalised and filled as :func:`finkcube.accessor.resize_cube` and
:func:`finkcube.accessor.normalize_cube` do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from finkcube.cube.canvas import normalize_stamps, resize_stamps
from finkcube.cube.columns import as_str
from finkcube.ml.training import FEATURES
from finkcube.names import BAND, CUTOUT_VAR, DATA_PLANE, DIMS, KINDS, OBJECT_ID, SOURCE_ID

__all__ = ["cube_stamps", "epoch_features", "id_table"]

TIME, KIND, Y, X, PLANE = DIMS


def cube_stamps(
    cube: Any,
    times: slice | np.ndarray,
    *,
    kinds: Sequence[str],
    planes: Sequence[str],
    size: int,
    normalize: str | None,
    fill: float | None,
    sides: np.ndarray | None,
) -> np.ndarray:
    """Epochs ``times`` of one cube as items: float32 ``(n, kinds x planes, size, size)``.

    ``sides`` is the cube's ``side`` per epoch (None without one); normalising reads the
    data plane for its statistics even when ``planes`` lacks it.
    """
    read_planes = tuple(planes)
    if normalize is not None and DATA_PLANE not in read_planes:
        read_planes = (*read_planes, DATA_PLANE)
    held = [str(p) for p in cube[PLANE].values]
    sub = cube[CUTOUT_VAR].isel(
        {
            TIME: times,
            KIND: [KINDS.index(k) for k in kinds],
            PLANE: [held.index(p) for p in read_planes],
        }
    )
    stamps = np.asarray(sub.transpose(TIME, KIND, PLANE, Y, X).values)  # (n, K, P, S, S)
    if size != stamps.shape[-1]:
        chosen = None if sides is None else sides[times][:, None, None]
        stamps = resize_stamps(stamps, chosen, size=size)
    if normalize is not None:
        stamps = normalize_stamps(stamps, read_planes, normalize, fill)
        stamps = stamps[:, :, : len(planes)]  # drop a data plane read only for statistics
    elif fill is not None:
        stamps = np.where(np.isnan(stamps), np.float32(fill), stamps)
    shape = (len(kinds) * len(planes), size, size)
    return np.ascontiguousarray(stamps, dtype=np.float32).reshape(-1, *shape)


def id_table(cubes: Mapping[int, Any], object_ids: Sequence[int], starts: np.ndarray) -> np.ndarray:
    """The id table of the items (see :attr:`finkcube.ml.CubeDataset.index`)."""
    parts = []
    for oid in object_ids:
        cube = cubes[oid]
        n = cube.sizes[TIME]
        parts.append(
            {
                OBJECT_ID: np.full(n, oid, dtype=np.int64),
                SOURCE_ID: np.asarray(cube[SOURCE_ID].values, dtype=np.int64),
                TIME: np.asarray(cube[TIME].values, dtype=np.float64),
                BAND: as_str(cube[BAND].values),
            }
        )
    width = max([1, *(len(b) for p in parts for b in p[BAND])])
    dtype = [(OBJECT_ID, np.int64), (SOURCE_ID, np.int64), (TIME, np.float64), (BAND, f"U{width}")]
    table = np.empty(int(starts[-1]), dtype=dtype)
    for part, start, stop in zip(parts, starts[:-1], starts[1:], strict=True):
        for name, values in part.items():
            table[name][start:stop] = values
    return table


def epoch_features(cube: Any) -> dict[str, np.ndarray]:
    """The cube's per-epoch flux columns among :data:`~finkcube.ml.training.FEATURES`."""
    return {
        name: np.asarray(cube[name].values, dtype=np.float64)
        for name in FEATURES
        if name in cube.coords
    }
