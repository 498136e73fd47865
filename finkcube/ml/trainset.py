"""Reading a training set written by :func:`finkcube.ml.export`, item by item or in batches.

:class:`TrainingSet` is what :class:`finkcube.ml.CubeDataset` uses for a training set. Its
pickled state is the path and the options only: each process (a ``DataLoader`` worker,
forked or spawned) opens the Zarr array and reads the table itself, on first use: only the
target column, unless ``meta=True`` asks for every row.

A batch (:meth:`TrainingSet.__getitems__`, what ``DataLoader`` calls) is one zarr-python
orthogonal selection of its sorted, distinct indices: zarr reads the chunks it touches
concurrently, each once. With ``in_memory=True`` each process reads the whole ``stamps``
array once, on first use (one zarr-python read), and serves every batch from that copy:
for sets that fit in memory several times over (each worker holds its own copy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from finkcube.errors import InputError
from finkcube.ml.labels import LABEL
from finkcube.ml.output import open_group
from finkcube.ml.training import SAMPLE, STAMPS, TRAINING_SET_ATTR
from finkcube.names import BAND, OBJECT_ID, SOURCE_ID

__all__ = ["TrainingSet", "is_training_set"]


def _open_group(path: Any, storage_options: dict[str, Any] | None = None) -> Any:
    return open_group(path, storage_options)


def is_training_set(path: Any, storage_options: dict[str, Any] | None = None) -> bool:
    """Whether ``path`` is a complete training set (its root carries the layout version)."""
    try:
        group = _open_group(path, storage_options)
    except Exception:  # not a Zarr group at all: a store, a missing path
        return False
    return TRAINING_SET_ATTR in group.attrs


class TrainingSet:
    """A training set as a map-style dataset: item ``i`` is ``(x, target)``.

    ``x`` is sample ``i`` of ``stamps`` (float32 ``(channel, y, x)``, after ``transform``),
    ``target`` its ``label`` (its diaObjectId without labels). With ``meta=True`` items are
    ``(x, target, meta)``, ``meta`` the sample's row of the table (a dict). With
    ``in_memory=True`` each process reads every sample once, on first use, and serves items
    from that copy.
    """

    def __init__(
        self,
        path: Any,
        *,
        transform: Callable[[np.ndarray], Any] | None = None,
        meta: bool = False,
        in_memory: bool = False,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self.transform = transform
        self.meta = meta
        self.in_memory = bool(in_memory)
        self.storage_options = storage_options
        self._array: Any = None
        self._memory: np.ndarray | None = None
        self._table: dict[str, np.ndarray] | None = None
        self._target: np.ndarray | None = None
        group = _open_group(path, storage_options)
        if TRAINING_SET_ATTR not in group.attrs:
            raise InputError(f"{path} is not a finkcube training set (or was not completed)")
        array = group[STAMPS]
        self.shape: tuple[int, ...] = tuple(int(s) for s in array.shape[1:])
        self._length = int(array.shape[0])
        self.channels: list[str] = [str(c) for c in group["channel"][...]]
        self.attrs: dict[str, Any] = dict(group.attrs)

    # Only the path and the options travel: each process opens the data itself.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_array"] = state["_table"] = state["_target"] = state["_memory"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def array(self) -> Any:
        """The ``stamps`` Zarr array (opened on first use in each process)."""
        if self._array is None:
            self._array = _open_group(self.path, self.storage_options)[STAMPS]
        return self._array

    @property
    def stamps(self) -> Any:
        """What items are read from: the Zarr array, or with ``in_memory`` its one copy."""
        if not self.in_memory:
            return self.array
        if self._memory is None:
            self._memory = np.asarray(self.array[...], dtype=np.float32)
        return self._memory

    @property
    def table(self) -> dict[str, np.ndarray]:
        """The per-sample table: every coordinate along ``sample``, one array each."""
        if self._table is None:
            group = _open_group(self.path, self.storage_options)
            dims = {name: a.metadata.dimension_names for name, a in group.arrays()}
            self._table = {
                name: np.asarray(group[name][...])
                for name in sorted(dims)
                if name != STAMPS and tuple(dims[name] or ()) == (SAMPLE,)
            }
        return self._table

    def __len__(self) -> int:
        return self._length

    def objects(self) -> tuple[tuple[int, ...], np.ndarray]:
        """The objects in sample order and where each one's samples start (and the end)."""
        ids = self.table[OBJECT_ID]
        starts = np.flatnonzero(np.diff(ids)) + 1
        first = ids[np.concatenate([[0], starts]).astype(np.int64)] if len(ids) else ids
        bounds = np.concatenate([[0], starts, [len(ids)]]).astype(np.int64)
        return tuple(int(i) for i in first), bounds

    def index(self) -> np.ndarray:
        """The id table as :attr:`finkcube.ml.CubeDataset.index` gives it (structured)."""
        band = np.asarray([str(b) for b in self.table[BAND]])
        fields = [(OBJECT_ID, np.int64), (SOURCE_ID, np.int64), ("time", np.float64)]
        out = np.empty(len(self), dtype=[*fields, (BAND, band.dtype)])
        for name, _ in fields:
            out[name] = self.table[name]
        out[BAND] = band
        return out

    def targets(self) -> np.ndarray:
        """Every sample's target: the labels, else the diaObjectIds."""
        return np.asarray(self.table.get(LABEL, self.table[OBJECT_ID]))

    def _index(self, i: Any) -> int:
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise TypeError(f"training set indices must be integers, not {type(i).__name__}")
        if not -self._length <= i < self._length:
            raise IndexError(f"index {i} out of range for {self._length} samples")
        return int(i) % self._length

    def _targets(self) -> np.ndarray:
        """The target column alone (read on first use in each process, without the table)."""
        if self._target is None:
            if self._table is not None:
                self._target = self.targets()
            else:
                group = _open_group(self.path, self.storage_options)
                name = LABEL if LABEL in group else OBJECT_ID
                self._target = np.asarray(group[name][...])
        return self._target

    def target(self, i: int) -> Any:
        """The target of sample ``i``: its label, else its diaObjectId."""
        value = self._targets()[i]
        return value.item() if hasattr(value, "item") else value

    def row(self, i: int) -> dict[str, Any]:
        """Sample ``i``'s row of the table."""
        return {
            k: (v[i].item() if hasattr(v[i], "item") else str(v[i])) for k, v in self.table.items()
        }

    def _item(self, i: int, x: np.ndarray, target: Any) -> tuple[Any, ...]:
        x = self.transform(x) if self.transform is not None else x
        if self.meta:
            return x, target, self.row(i)
        return x, target

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        i = self._index(i)
        return self._item(i, np.array(self.stamps[i], dtype=np.float32), self.target(i))

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, ...]]:
        """Items of many indices at once: one read of the Zarr array (``DataLoader`` batches).

        Each item's ``x`` is a view into one block of the samples read.
        """
        wanted = np.asarray([self._index(i) for i in indices], dtype=np.int64)
        if self.in_memory:  # numpy's fancy indexing: one copy, in the order asked
            block, where = self.stamps[wanted], np.arange(len(wanted))
        else:  # zarr reads each chunk touched once, for the sorted distinct indices
            order, where = np.unique(wanted, return_inverse=True)
            block = np.asarray(self.array.get_orthogonal_selection((order,)), dtype=np.float32)
        targets = self._targets()[wanted].tolist()  # Python scalars, as target() gives
        return [
            self._item(int(i), block[k], t) for i, k, t in zip(wanted, where, targets, strict=True)
        ]
