"""Writing the items of a :class:`finkcube.ml.CubeDataset` to ``.npz``, or ``.npy`` + CSV."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any, Final

import numpy as np

from finkcube.errors import InputError

__all__ = ["EXPORT_SUFFIXES", "write_numpy"]

logger = logging.getLogger(__name__)

#: Suffixes :func:`write_numpy` writes.
EXPORT_SUFFIXES: Final = (".npz", ".npy")


def write_numpy(dataset: Any, path: str | Path, *, compress: bool = False) -> Path:
    """Write every item of a :class:`~finkcube.ml.CubeDataset` to one file, with its targets.

    Parameters
    ----------
    dataset : CubeDataset
        The items.
    path : str or pathlib.Path
        ``.npz``: one archive with arrays ``x`` (``(n, channels, size, size)``
        float32), ``diaObjectId``, ``diaSourceId``, ``time``, ``band`` and ``label``
        (the targets). ``.npy``: ``x`` alone, written item by item without holding
        it in memory, and beside it a CSV (same name, ``.csv``) with columns
        ``item, diaObjectId, diaSourceId, time, band, label``.
    compress : bool
        Compress an ``.npz`` (slower, smaller).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        For another suffix, a missing directory, or labels numpy cannot store without
        pickling (None or other objects: use numbers or strings; a mix of both is
        stored as strings).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise InputError(f"cannot export to {path.name}: use one of {EXPORT_SUFFIXES}")
    if not path.parent.is_dir():
        raise InputError(f"output directory {path.parent} does not exist: create it first")
    table = dataset.index
    labels = dataset.targets
    if labels.dtype == object:
        raise InputError("labels must be numbers or strings to be exported (no None, no objects)")
    shape = (len(dataset), *dataset.shape)
    if suffix == ".npz":
        x = np.empty(shape, dtype=np.float32)
        _fill(dataset, x)
        save = np.savez_compressed if compress else np.savez
        columns: dict[str, Any] = {name: table[name] for name in table.dtype.names or ()}
        save(path, x=x, label=labels, **columns)
    else:
        x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
        _fill(dataset, x)
        x.flush()
        del x
        with path.with_suffix(".csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["item", *(table.dtype.names or ()), "label"])
            for i, (row, label) in enumerate(zip(table, labels, strict=True)):
                writer.writerow([i, int(row[0]), int(row[1]), repr(float(row[2])), row[3], label])
    logger.info("wrote %d stamps to %s", len(dataset), path)
    return path


def _fill(dataset: Any, x: np.ndarray) -> None:
    start = 0
    for _, stamps in dataset.iter_objects():
        x[start : start + len(stamps)] = stamps
        start += len(stamps)
