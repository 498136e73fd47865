"""Machine-learning datasets: the stamps of a store or a training set as fixed-shape items.

:class:`CubeDataset` is a map-style dataset over a store or a training set
(:func:`finkcube.ml.export`): item ``i`` is the stamp stack of one epoch of one object,
channels first, with its target. It works with ``torch.utils.data.DataLoader`` as it is
(``__len__``, ``__getitem__``, and ``__getitems__`` for whole batches), offers
:meth:`CubeDataset.as_torch` for a true ``torch.utils.data.Dataset`` when PyTorch is
installed, and writes everything to one ``.npz`` (or a ``.npy`` plus a CSV table of ids)
with :meth:`CubeDataset.to_numpy`.

PyTorch is never required: it is imported only by :meth:`CubeDataset.as_torch`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finkcube.cube.canvas import NORMALIZE_METHODS
from finkcube.errors import InputError
from finkcube.ids import parse_id, parse_ids
from finkcube.ml.storeitems import cube_stamps, epoch_features, id_table
from finkcube.ml.trainset import TrainingSet, is_training_set
from finkcube.names import (
    CUTOUT_VAR,
    DATA_PLANE,
    DIMS,
    KINDS,
    OBJECT_ID,
    PLANES,
    SIDE,
)

__all__ = ["CubeDataset"]

logger = logging.getLogger(__name__)

TIME, KIND, Y, X, PLANE = DIMS


def _choose(values: Sequence[str] | str, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    chosen = (values,) if isinstance(values, str) else tuple(values)
    bad = [v for v in chosen if v not in allowed]
    if bad or not chosen or len(set(chosen)) != len(chosen):
        raise InputError(f"bad {what} {list(chosen)}: choose distinct values among {allowed}")
    return chosen


class CubeDataset:
    """The stamps of a store or a training set, one item per (object, epoch), as float32.

    Item ``i`` is ``(x, target)``:

    - ``x``: float32, shape ``(len(kinds) * len(planes), size, size)``, channels first;
      channel ``k * len(planes) + p`` is kind ``kinds[k]``, plane ``planes[p]``
      (:attr:`channels` names them);
    - ``target``: ``labels[diaObjectId]`` when ``labels`` is given, else the diaObjectId.

    Items are ordered by object (in ``object_ids`` order), then by time. The stamps go
    through, in order: the resize to ``size`` (:func:`finkcube.accessor.resize_cube`),
    the normalisation (:func:`finkcube.accessor.normalize_cube`), then NaN -> ``fill``;
    so ``x`` equals the same selection of
    ``ds.fink.resize(size).fink.normalize(normalize, fill)``.

    Given a training set written by :func:`finkcube.ml.export`, item ``i`` is its sample
    ``i`` with its ``label`` (else its diaObjectId) as target; the stamp options and
    ``labels`` are then fixed by the export and ignored here. With ``meta=True`` items are
    ``(x, target, meta)``. The dataset pickles as its path and options: each ``DataLoader``
    worker (fork or spawn) opens the data itself.

    Parameters
    ----------
    store : str or pathlib.Path
        A finkcube store or a training set (a path, fsspec or ``icechunk://`` URL), or
        a training set's zarr store (an Icechunk session's ``store``: a tagged set).
    object_ids : iterable of int, optional
        The objects to use, in this order; default: every complete object of the store.
    kinds : sequence of str
        The kinds to stack, among ``("Science", "Template", "Difference")``.
    planes : sequence of str
        The planes to stack (``"data"``, ``"variance"``, ``"mask"``); every cube must hold
        them.
    size : int, optional
        Crop or pad every stamp to ``size x size``, centred. None keeps the cubes' canvas,
        which must then be the same for every object.
    normalize : {None, "robust", "minmax"}
        Per-stamp normalisation (robust: median and 1.4826 x MAD of the data plane).
    fill : float or None
        What NaN pixels become (None keeps NaN).
    labels : mapping of int to anything, optional
        A target per diaObjectId; every object must have one.
    storage_options : dict, optional
        fsspec options for a remote store.
    transform : callable, optional
        Applied to each item's ``x``.
    meta : bool
        Add each item's table row to the item: for a store, its :attr:`index` row and the
        cube's flux columns at its epoch (``psfFlux``, ``snr``, ...); for a training set,
        its row of the training set's table.
    in_memory : bool
        Read every item once per process, on first use, and serve items from that copy
        (for sets that fit in memory: each ``DataLoader`` worker holds its own). Without
        it (the default) each batch is read from the Zarr chunks it touches.

    Raises
    ------
    InputError
        For a bad kind, plane, size or normalisation, a missing label, a cube lacking a
        plane, or canvases that differ while ``size`` is None.

    Notes
    -----
    Opening a store opens every cube lazily (metadata only) and computes nothing; a batch
    then reads, per object it touches, those epochs in one selection.
    """

    def __init__(
        self,
        store: str | Path,
        object_ids: Iterable[int | str] | None = None,
        *,
        kinds: Sequence[str] = KINDS,
        planes: Sequence[str] = (DATA_PLANE,),
        size: int | None = None,
        normalize: str | None = None,
        fill: float | None = 0.0,
        labels: Mapping[int, Any] | None = None,
        storage_options: dict[str, Any] | None = None,
        transform: Callable[[np.ndarray], Any] | None = None,
        meta: bool = False,
        in_memory: bool = False,
    ) -> None:
        from finkcube.store import list_objects

        self.store, self.storage_options = store, storage_options
        self.transform, self.meta, self.in_memory = transform, meta, bool(in_memory)
        self._set: TrainingSet | None = None
        self._opened: dict[int, Any] | None = None
        self._memory: np.ndarray | None = None
        self._sides: dict[int, np.ndarray | None] = {}
        self._features: dict[int, dict[str, np.ndarray]] = {}
        if is_training_set(store, storage_options):
            self._open_training_set()
            return
        self.kinds = _choose(kinds, KINDS, "kinds")
        self.planes = _choose(planes, PLANES, "planes")
        if normalize is not None and normalize not in NORMALIZE_METHODS:
            raise InputError(
                f"unknown normalisation {normalize!r}: expected None or one of {NORMALIZE_METHODS}"
            )
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise InputError(f"size must be a positive integer number of pixels, got {size!r}")
        self.normalize = normalize
        self.fill = fill
        if object_ids is None:
            ids = list_objects(store, storage_options=storage_options)
        else:
            ids = parse_ids(object_ids)
        self.object_ids: tuple[int, ...] = tuple(ids)
        self.labels = None if labels is None else {parse_id(k): v for k, v in labels.items()}
        if self.labels is not None:
            missing = [oid for oid in self.object_ids if oid not in self.labels]
            if missing:
                raise InputError(
                    f"no label for {len(missing)} object(s), e.g. {missing[0]}: "
                    "give labels for every object or leave labels out"
                )
        # Planes read from the cube: normalising needs the data plane even if not returned.
        self._read_planes = self.planes
        if normalize is not None and DATA_PLANE not in self.planes:
            self._read_planes = (*self.planes, DATA_PLANE)
        canvases = {oid: self._check_cube(oid) for oid in self.object_ids}
        if size is None:
            sides = sorted(set(canvases.values()))
            if len(sides) > 1:
                raise InputError(
                    f"the cubes have different canvases ({sides[0]} to {sides[-1]} pixels): "
                    "pass size= to crop or pad them to one"
                )
            size = sides[0] if sides else 0
        self.size: int = size
        counts = [self._cubes[oid].sizes[TIME] for oid in self.object_ids]
        self._starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])

    def _open_training_set(self) -> None:
        self._set = TrainingSet(
            self.store, transform=self.transform, meta=self.meta, in_memory=self.in_memory,
            storage_options=self.storage_options,
        )  # fmt: skip
        self.object_ids, self._starts = self._set.objects()
        self.kinds = self.planes = ()
        self.normalize, self.fill, self.labels = None, None, None
        self.size = self._set.shape[-1]

    @property
    def _cubes(self) -> dict[int, Any]:
        """The lazy cubes (nodes read straight from their chunk files), opened on first use."""
        if self._opened is None:
            from finkcube.store import open_cubes

            self._opened = open_cubes(
                self.store, self.object_ids, storage_options=self.storage_options
            )
        return self._opened

    def __getstate__(self) -> dict[str, Any]:
        """The path and the options only: each process opens the cubes itself."""
        state = dict(self.__dict__)
        state["_opened"], state["_memory"] = None, None
        state["_sides"], state["_features"] = {}, {}
        return state

    def _check_cube(self, oid: int) -> int:
        cube = self._cubes[oid]
        cutout = cube.get(CUTOUT_VAR)
        if cutout is None or tuple(cutout.dims) != DIMS:
            raise InputError(f"object {oid} is not a finkcube cube: no {CUTOUT_VAR!r} {DIMS}")
        held = [str(p) for p in cube[PLANE].values]
        lacking = [p for p in self._read_planes if p not in held]
        if lacking:
            raise InputError(
                f"object {oid} has no plane {lacking[0]!r} (it holds {held}): "
                "build the store with planes='all' or choose other planes"
            )
        return int(cutout.sizes[Y])

    # --- the sequence -------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._starts[-1])

    def __repr__(self) -> str:
        c, s, _ = self.shape
        return (
            f"CubeDataset({len(self.object_ids)} objects, {len(self)} stamps of {c}x{s}x{s}, "
            f"normalize={self.normalize!r})"
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """The shape of every item's ``x``: ``(channels, size, size)``."""
        if self._set is not None:
            c, s, _ = self._set.shape
            return (c, s, s)
        return (len(self.kinds) * len(self.planes), self.size, self.size)

    @property
    def channels(self) -> list[tuple[str, str]]:
        """The ``(kind, plane)`` of each channel of ``x``, in order."""
        if self._set is not None:
            return [(c.split("/", 1)[0], c.split("/", 1)[-1]) for c in self._set.channels]
        return [(k, p) for k in self.kinds for p in self.planes]

    def locate(self, i: int) -> tuple[int, int]:
        """Return ``(diaObjectId, time position)`` of item ``i`` (negative counts from the end).

        Raises
        ------
        IndexError
            When ``i`` is out of range.
        """
        n = len(self)
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise TypeError(f"CubeDataset indices must be integers, not {type(i).__name__}")
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a CubeDataset of {n} stamps")
        i = int(i) % n
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self.object_ids[k], i - int(self._starts[k])

    def target(self, object_id: int) -> Any:
        """Return the target of an object's items: its label, or the id itself."""
        return object_id if self.labels is None else self.labels[object_id]

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        if self._set is not None:
            return self._set[i]
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, ...]]:
        """Many items at once (``DataLoader`` batches).

        A training set is read in one zarr-python selection; a store in one read per object
        touched (all its epochs asked for at once); with ``in_memory`` from the copy.
        """
        if self._set is not None:
            return self._set.__getitems__(indices)
        located = [self.locate(i) for i in indices]
        rows = [int(i) % len(self) for i in indices]
        if self.in_memory:
            if self._memory is None:
                self._memory = self._all_items()
            xs = list(self._memory[rows])
        else:
            by_object: dict[int, set[int]] = {}
            for oid, t in located:
                by_object.setdefault(oid, set()).add(t)
            read: dict[tuple[int, int], np.ndarray] = {}
            for oid, times in by_object.items():
                block = self._stamps(oid, np.asarray(wanted := sorted(times), dtype=np.int64))
                read |= {(oid, t): block[k] for k, t in enumerate(wanted)}
            xs = [read[key] for key in located]
        items: list[tuple[Any, ...]] = []
        for row, (oid, t), x in zip(rows, located, xs, strict=True):
            x = self.transform(x) if self.transform is not None else x
            meta = (self._meta(oid, t, row),) if self.meta else ()
            items.append((x, self.target(oid), *meta))
        return items

    def _meta(self, oid: int, t: int, row: int) -> dict[str, Any]:
        """Item ``row``'s row of :attr:`index` and the cube's flux columns at its epoch."""
        if oid not in self._features:
            self._features[oid] = epoch_features(self._cubes[oid])
        ids = self.index[row]
        meta = {k: ids[k].item() for k in ids.dtype.names or ()}
        return meta | {k: float(v[t]) for k, v in self._features[oid].items()}

    def _all_items(self) -> np.ndarray:
        """Every item of a store, ``(n, channels, size, size)``: one read per object."""
        out = np.empty((len(self), *self.shape), dtype=np.float32)
        for k, (_, stamps) in enumerate(self.iter_objects()):
            out[int(self._starts[k]) : int(self._starts[k + 1])] = stamps
        return out

    # --- reading ------------------------------------------------------------------------
    def _object_sides(self, oid: int) -> np.ndarray | None:
        """The ``side`` of every epoch of an object (read once), or None without one."""
        if oid not in self._sides:
            cube = self._cubes[oid]
            self._sides[oid] = (
                np.asarray(cube[SIDE].values, dtype=np.int64) if SIDE in cube.coords else None
            )
        return self._sides[oid]

    def _stamps(self, oid: int, times: slice | np.ndarray) -> np.ndarray:
        """The items of epochs ``times`` of one object: ``(n, channels, size, size)``."""
        return cube_stamps(
            self._cubes[oid], times, kinds=self.kinds, planes=self.planes, size=self.size,
            normalize=self.normalize, fill=self.fill, sides=self._object_sides(oid),
        )  # fmt: skip

    def iter_objects(self) -> Iterable[tuple[int, np.ndarray]]:
        """Yield ``(diaObjectId, x)`` per object, ``x`` the stack of all its items.

        Faster than item by item: one read per object.
        """
        for k, oid in enumerate(self.object_ids):
            if self._set is not None:
                a, b = int(self._starts[k]), int(self._starts[k + 1])
                yield oid, np.asarray(self._set.array[a:b], dtype=np.float32)
            else:
                yield oid, self._stamps(oid, slice(None))

    # --- tables and export --------------------------------------------------------------
    @functools.cached_property
    def index(self) -> np.ndarray:
        """The id table, one row per item: a structured array with fields ``diaObjectId``,
        ``diaSourceId`` (int64), ``time`` (float64, MJD TAI) and ``band`` (str).

        Reading it loads the per-epoch coordinates of every cube (small).
        """
        if self._set is not None:
            return self._set.index()
        return id_table(self._cubes, self.object_ids, self._starts)

    @property
    def targets(self) -> np.ndarray:
        """The target of every item, as one array."""
        if self._set is not None:
            return self._set.targets()
        return np.asarray([self.target(int(oid)) for oid in self.index[OBJECT_ID]])

    def to_numpy(self, path: str | Path, *, compress: bool = False) -> Path:
        """Write every item to one ``.npz`` (or ``.npy`` + CSV table), with the targets.

        See :func:`finkcube.ml.numpyfile.write_numpy` for the files and errors.
        """
        from finkcube.ml.numpyfile import write_numpy

        return write_numpy(self, path, compress=compress)

    def as_torch(self) -> Any:
        """Return this dataset as a ``torch.utils.data.Dataset`` yielding tensors.

        Items become ``(torch.Tensor x, target)``. This class already works with
        ``DataLoader`` as it is; use this for code that checks ``isinstance``.

        Raises
        ------
        InputError
            When PyTorch is not installed (``pip install torch``).
        """
        from finkcube.ml.torchdata import TorchCubeDataset

        return TorchCubeDataset(self)
