"""Training sets: the stamps of a store as one packed, fixed-size Zarr dataset for ML.

:func:`export` writes, with ``xarray.Dataset.to_zarr``, one Zarr v3 group:

- ``stamps (sample, channel, y, x)`` float32: one sample per exported epoch of an object,
  in object order (ascending diaObjectId, or the order given), then time order; stored
  uncompressed in chunks of about :data:`CHUNK_BYTES` of whole samples (see below);
- coordinates along ``sample``, the per-sample table: ``diaObjectId``, ``diaSourceId``
  (int64), ``time`` (float64, MJD TAI), ``band`` (str), ``side`` (the stamp's own side
  before cropping or padding), the cubes' flux columns among :data:`FEATURES` (float64)
  and ``label`` when labels are given;
- ``channel (channel)``: the channel names, ``"Difference/data"``, and ``"Science/data:mask"``
  for a NaN-mask channel (1.0 where the pixel was blank or padding);
- attributes: ``finkcube_training_set`` (the layout version, written last, so that an
  interrupted export is never taken for a training set), ``preset``, ``options`` (JSON),
  ``source_store`` (with ``source_snapshot`` when it is an Icechunk repository) and
  ``finkcube_version``.

An Icechunk repository (``icechunk://PATH``) takes the whole set as one commit, named for
good by ``tag=`` (:mod:`finkcube.ml.output`).

Plain ``xarray.open_zarr(out)`` and ``zarr.open_group(out)`` open it without a warning;
:class:`finkcube.ml.CubeDataset` reads it item by item. Memory holds one object's cube and
a few chunks of samples, never the whole store.

The chunks: noise-dominated float32 stamps barely compress, and decoding zstd made
streaming 3-4 times slower; zarr's sharding codec with small inner chunks (tried for
shuffled reads) was slower still, in reading one sample as in streaming
(``benchmarks/README.md``). zarr-python pays a fixed cost per chunk read (its event loop,
a thread hop, the indexing), so chunks of about 16 MiB stream faster than 4 MiB ones, with
dask most of all (one task per chunk), and a shuffled batch, which touches most chunks of a
set of up to a few hundred thousand samples anyway, reads fewer of them. The table's
columns are chunked by a multiple of the stamps' chunk, so
``xr.open_zarr(out, chunks={"sample": n})`` with ``n``
the table's chunk (``encoding["chunks"]`` of ``diaObjectId``) aligns every variable.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import xarray as xr

from finkcube._version import __version__
from finkcube.cube.canvas import resize_stamps
from finkcube.cube.columns import as_str
from finkcube.errors import InputError
from finkcube.ids import parse_ids
from finkcube.ml.labels import LABEL, label_arrays, load_labels
from finkcube.ml.output import Output
from finkcube.ml.presets import NORMALISERS, PRESETS, channel_names, parse_channel
from finkcube.names import BAND, CUTOUT_VAR, DIMS, KINDS, OBJECT_ID, SIDE, SOURCE_ID

__all__ = ["FEATURES", "TRAINING_SET_ATTR", "ExportReport", "export"]

logger = logging.getLogger(__name__)

TIME, KIND, Y, X, PLANE = DIMS
SAMPLE, CHANNEL, STAMPS = "sample", "channel", "stamps"
#: The root attribute of a training set: its layout version.
TRAINING_SET_ATTR: Final = "finkcube_training_set"
LAYOUT: Final = 1
#: Per-epoch flux columns copied to the table when the cubes have them.
FEATURES: Final = ("psfFlux", "psfFluxErr", "scienceFlux", "scienceFluxErr", "snr")
#: About how many bytes of samples one chunk of ``stamps`` holds.
CHUNK_BYTES: Final = 16 << 20
#: About how many samples one file of a table's column holds.
TABLE_CHUNK: Final = 1 << 16
MASK_SUFFIX: Final = ":mask"
EPOCHS: Final = ("all", "first", "last")

Normaliser = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What :func:`export` wrote: where, how many samples of which shape."""

    path: str
    samples: int
    objects: int
    channels: tuple[str, ...]
    size: int
    #: The Icechunk commit that holds the set, and the tag naming it (None otherwise).
    snapshot: str | None = None
    tag: str | None = None

    def summary(self) -> str:
        """One line for the command line."""
        line = (
            f"{self.path}: {self.samples} samples of {len(self.channels)}x{self.size}x"
            f"{self.size} from {self.objects} objects"
        )
        if self.snapshot is not None:
            line += f", commit {self.snapshot}" + (f" tagged {self.tag!r}" if self.tag else "")
        return line


def _epochs(n: int, epochs: str | int) -> slice:
    if epochs == "all":
        return slice(None)
    if epochs == "first":
        return slice(0, 1)
    if epochs == "last":
        return slice(max(n - 1, 0), n)
    return slice(max(n - int(epochs), 0), n)


def _check_epochs(epochs: str | int) -> str | int:
    if isinstance(epochs, str) and epochs.isdigit():
        epochs = int(epochs)
    if epochs in EPOCHS or (
        isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1
    ):
        return epochs
    raise InputError(f"bad epochs {epochs!r}: expected one of {EPOCHS} or a whole number >= 1")


def _normaliser(normalise: str | Normaliser | None) -> Normaliser | None:
    if normalise is None or callable(normalise):
        return normalise
    if normalise not in NORMALISERS:
        raise InputError(
            f"unknown normalisation {normalise!r}: expected one of {sorted(NORMALISERS)}"
        )
    return NORMALISERS[normalise]


def _samples(
    cube: xr.Dataset,
    oid: int,
    channels: Sequence[tuple[str, str]],
    size: int,
    epochs: str | int,
    normalise: Normaliser | None,
    fill: float | None,
    mask: bool,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One object's samples ``(n, channels, size, size)`` and its rows of the table."""
    cutout = cube.get(CUTOUT_VAR)
    if cutout is None or tuple(cutout.dims) != DIMS:
        raise InputError(f"object {oid} is not a finkcube cube: no {CUTOUT_VAR!r} {DIMS}")
    held = [str(p) for p in cube[PLANE].values]
    lacking = sorted({p for _, p in channels if p not in held})
    if lacking:
        raise InputError(
            f"object {oid} has no plane {lacking[0]!r} (it holds {held}): build the store "
            "with planes='all' or choose other channels"
        )
    times = _epochs(cube.sizes[TIME], epochs)
    kinds = sorted({KINDS.index(k) for k, _ in channels})
    planes = sorted({held.index(p) for _, p in channels})
    block = np.asarray(cutout.isel({TIME: times, KIND: kinds, PLANE: planes}).values)
    pick_k = [kinds.index(KINDS.index(k)) for k, _ in channels]
    pick_p = [planes.index(held.index(p)) for _, p in channels]
    stamps = np.moveaxis(block[:, pick_k, :, :, pick_p], 0, 1)  # (n, C, S, S)
    canvas = cutout.sizes[Y]
    n = stamps.shape[0]
    sides = (
        np.asarray(cube[SIDE].values, dtype=np.int64)[times]
        if SIDE in cube.coords
        else np.full(n, canvas, dtype=np.int64)
    )
    if size != canvas:
        stamps = resize_stamps(stamps, sides[:, None], size=size)
    stamps = np.asarray(stamps, dtype=np.float32)
    blank = np.isnan(stamps).astype(np.float32) if mask else None
    if normalise is not None:
        stamps = np.asarray(normalise(stamps), dtype=np.float32)
        if stamps.shape != (n, len(channels), size, size):
            raise InputError(f"the normalisation changed the stamps' shape to {stamps.shape}")
    if fill is not None:
        stamps = np.where(np.isnan(stamps), np.float32(fill), stamps)
    if blank is not None:
        stamps = np.concatenate([stamps, blank], axis=1)
    table = {
        OBJECT_ID: np.full(n, oid, dtype=np.int64),
        SOURCE_ID: np.asarray(cube[SOURCE_ID].values, dtype=np.int64)[times],
        TIME: np.asarray(cube[TIME].values, dtype=np.float64)[times],
        BAND: np.asarray(as_str(cube[BAND].values)[times], dtype=object),
        SIDE: sides,
    }
    for name in FEATURES:
        values = cube.coords.get(name)
        table[name] = (
            np.full(n, np.nan)
            if values is None
            else np.asarray(values.values, dtype=np.float64)[times]
        )
    return np.ascontiguousarray(stamps), table


class _Writer:
    """Appends samples to the output in whole chunks (the rest carried to the next write)."""

    def __init__(self, out: Any, channels: list[str], size: int, attrs: dict[str, Any]) -> None:
        self.out, self.channels, self.attrs = out, channels, attrs
        per_sample = 4 * len(channels) * size * size
        self.chunk = max(1, CHUNK_BYTES // per_sample)
        self.table_chunk = self.chunk * max(1, TABLE_CHUNK // self.chunk)
        self.stamps: list[np.ndarray] = []
        self.rows: list[dict[str, np.ndarray]] = []
        self.pending = self.written = 0

    def add(self, stamps: np.ndarray, rows: dict[str, np.ndarray]) -> None:
        self.stamps.append(stamps)
        self.rows.append(rows)
        self.pending += len(stamps)
        if self.pending >= self.chunk:
            self.flush(whole=True)

    def flush(self, *, whole: bool = False) -> None:
        if not self.pending:
            return
        stamps = np.concatenate(self.stamps)
        rows = {k: np.concatenate([r[k] for r in self.rows]) for k in self.rows[0]}
        n = (len(stamps) // self.chunk) * self.chunk if whole else len(stamps)
        self._write(stamps[:n], {k: v[:n] for k, v in rows.items()})
        self.stamps, self.rows = [stamps[n:]], [{k: v[n:] for k, v in rows.items()}]
        self.pending = len(stamps) - n

    def _write(self, stamps: np.ndarray, rows: dict[str, np.ndarray]) -> None:
        ds = xr.Dataset(
            {STAMPS: ((SAMPLE, CHANNEL, Y, X), stamps)},
            coords={CHANNEL: np.asarray(self.channels, dtype=object)}
            | {k: (SAMPLE, v) for k, v in rows.items()},
        )
        if self.written == 0:
            ds.attrs.update(self.attrs)
            shape = stamps.shape[1:]
            encoding: dict[str, Any] = {k: {"chunks": (self.table_chunk,)} for k in rows}
            encoding[STAMPS] = {"chunks": (self.chunk, *shape), "compressors": None}
            ds.to_zarr(self.out, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
        else:
            ds.drop_vars(CHANNEL).to_zarr(self.out, append_dim=SAMPLE, consolidated=False)
        self.written += len(stamps)


def export(
    store: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    preset: str | None = None,
    channels: Sequence[str] | None = None,
    size: int | None = None,
    epochs: str | int = "all",
    normalise: str | Normaliser | None = None,
    fill: float | None = 0.0,
    mask: bool | None = None,
    labels: Mapping[Any, Any] | str | os.PathLike[str] | None = None,
    object_ids: Iterable[int | str] | None = None,
    overwrite: bool = False,
    tag: str | None = None,
) -> ExportReport:
    """Write the stamps of a store as one fixed-size training set (see the module's layout).

    Each exported epoch becomes a sample: its channels taken from the cube, centre-cropped
    or NaN-padded to ``size`` as the cube builder places stamps (offset ``(S - s) // 2``),
    the NaN-mask channels noted, normalised per image and channel, NaN -> ``fill``.

    Parameters
    ----------
    store : str or path
        A finkcube store.
    out : str or path
        The training set to write: a Zarr v3 group (a path or fsspec URL), or an Icechunk
        repository (``icechunk://PATH``, ``icechunk+s3://BUCKET/PREFIX``), written in one
        commit.
    preset : str, optional
        A name of :data:`finkcube.ml.presets.PRESETS` (``"alerce"``,
        ``"rubin-reliability"``, ``"btsbot"``): its channels, size, normalisation and mask
        channels, each overridden by an explicit argument.
    channels : sequence of str, optional
        ``"Kind/plane"`` names in order (default: the three kinds' data planes).
    size : int, optional
        The side of every sample (required without a preset).
    epochs : {"all", "first", "last"} or int
        Which epochs of each object: all, its first, its last, or its last ``k``.
    normalise : str or callable, optional
        A name of :data:`~finkcube.ml.presets.NORMALISERS` or ``f(x) -> y`` on float32
        ``(n, channel, y, x)``.
    fill : float or None
        What NaN left after the normalisation become (None keeps NaN).
    mask : bool, optional
        Append a NaN-mask channel per channel.
    labels : mapping, or path of a CSV / Parquet file, optional
        ``diaObjectId -> label``; every exported object must have one and every id must
        be exported.
    object_ids : iterable of int, optional
        The objects, in this order (default: every complete cube, ascending id).
    overwrite : bool
        Replace what is at ``out`` (in a repository: a new commit, earlier ones kept).
    tag : str, optional
        Name the export's commit in an Icechunk ``out``: ``repo.readonly_session(tag=tag)``
        reads this very training set for good.

    Returns
    -------
    ExportReport
        The path, the counts and the channels.

    Raises
    ------
    InputError
        For a bad option, preset or label file, labels that do not match the objects, an
        ``out`` that exists (without ``overwrite``), a tag without an Icechunk ``out`` or
        one it already has, or nothing to export.
    """
    from finkcube.store import IcechunkStore, list_objects, locate, open_cube

    chosen = None
    if preset is not None:
        if preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r}: expected one of {sorted(PRESETS)}")
        chosen = PRESETS[preset]
    names = channel_names(channels or (chosen.channels if chosen else [f"{k}/data" for k in KINDS]))
    size = size if size is not None else (chosen.size if chosen else None)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InputError(
            f"size must be a positive number of pixels (or give a preset), got {size!r}"
        )
    epochs = _check_epochs(epochs)
    function = (
        _normaliser(normalise) if normalise is not None else (chosen.normalise if chosen else None)
    )
    mask = bool(mask) if mask is not None else bool(chosen and chosen.mask)
    if fill is not None and not math.isfinite(fill):
        raise InputError(f"fill must be a finite number or None, got {fill!r}")
    source = locate(store)  # once: an Icechunk source is read in one snapshot
    ids = list_objects(source) if object_ids is None else parse_ids(object_ids)
    by_id = load_labels(labels) if labels is not None else None
    if by_id is not None:
        missing = [i for i in ids if i not in by_id]
        unknown = sorted(set(by_id) - set(ids))
        if missing or unknown:
            bad = (
                f"no label for {len(missing)} object(s), e.g. {missing[0]}"
                if missing
                else (f"{len(unknown)} labelled id(s) not exported, e.g. {unknown[0]}")
            )
            raise InputError(f"labels do not match the objects of {store}: {bad}")
    output = Output(out, tag)
    if output.exists() and not overwrite:
        raise InputError(
            f"{output.url} already exists: pass overwrite=True (--overwrite) to replace it"
        )
    pairs = [parse_channel(c) for c in names]
    all_channels = [*names, *(f"{c}{MASK_SUFFIX}" for c in names if mask)]
    options = {"channels": list(names), "size": size, "epochs": epochs, "fill": fill,
               "mask": mask, "normalise": getattr(function, "__name__", None)}  # fmt: skip
    attrs = {"preset": preset or "", "options": json.dumps(options),
             "source_store": os.fspath(store), "finkcube_version": __version__}  # fmt: skip
    if isinstance(source, IcechunkStore) and source.snapshot is not None:
        attrs["source_snapshot"] = source.snapshot
    label_of = label_arrays(by_id, ids) if by_id is not None else None
    writer = _Writer(output.target, all_channels, size, attrs)
    for oid in ids:
        stamps, rows = _samples(
            open_cube(source, oid), oid, pairs, size, epochs, function, fill, mask
        )
        if label_of is not None:
            rows[LABEL] = np.repeat(label_of[oid], len(stamps))
        writer.add(stamps, rows)
    writer.flush()
    if writer.written == 0:
        raise InputError(f"nothing to export: no epoch of any object of {store}")
    message = f"finkcube {__version__}: export of {writer.written} samples from {store}"
    snapshot = output.finish({TRAINING_SET_ATTR: LAYOUT}, message)
    logger.info("wrote %d samples to %s", writer.written, output.url)
    return ExportReport(output.url, writer.written, len(ids), tuple(all_channels), size,
                        snapshot, tag)  # fmt: skip
