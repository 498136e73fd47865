"""The unit of work of the pipeline: one :class:`Job` per object, and the checks of its options.

A job says which source records of one object to fetch, and how to make the cube from them:
anew (a build) or merged into the cube the store holds (an update). Jobs are plain, picklable
data, so that the same job runs on this process's threads or as a dask.distributed task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from finkcube.config import MAX_SIZE
from finkcube.errors import InputError
from finkcube.names import (
    ALIGN_ARGS,
    DEFAULT_COLUMNS,
    OBJECT_ID,
    PLANES_ARGS,
    REQUIRED_COLUMNS,
    PlanesArg,
    bare_column,
    rubin_column,
)

__all__ = ["Job", "as_columns", "check_align", "check_planes", "check_size", "wire_columns"]


@dataclass(frozen=True, slots=True)
class Job:
    """One object's work.

    Attributes
    ----------
    object_id : int
        The diaObjectId.
    records : tuple of mapping
        The source records whose cutouts are fetched (for an update, only the new ones).
    planes : {"data", "all"}
        What is fetched per source: the array reply, or the three FITS files.
    size : int or None
        A fixed canvas side (builds only; an update keeps the cube's own).
    columns : tuple of str or None
        The source columns asked for (None: the defaults).
    merge : bool
        Merge into the stored cube (an update) rather than build a new one.
    forced_photometry : bool
        Fetch the object's forced light curve (one ``/api/v1/fp`` request) and put it on
        the cube's ``fp_time`` dimension; an update refetches it.
    align : {"sky"} or None
        Resample the stamps onto one sky grid (the ``aligned`` variable); with
        ``planes="data"`` one FITS file per source is fetched too, for its WCS.
    """

    object_id: int
    records: tuple[Mapping[str, Any], ...]
    planes: PlanesArg = "data"
    size: int | None = None
    columns: tuple[str, ...] | None = None
    merge: bool = False
    forced_photometry: bool = False
    align: str | None = None

    @property
    def cube_columns(self) -> list[str]:
        """The bare names of the per-epoch columns the cube keeps (the object id is an
        attribute, not a column).

        Examples
        --------
        >>> Job(1, (), columns=("r:psfFlux",)).cube_columns
        ['diaSourceId', 'midpointMjdTai', 'band', 'psfFlux']
        """
        names = (bare_column(c) for c in wire_columns(self.columns))
        return [name for name in names if name != bare_column(OBJECT_ID)]


def wire_columns(columns: Sequence[str] | None) -> list[str]:
    """Return the ``r:``-prefixed columns to ask for: the required ones plus ``columns``.

    Examples
    --------
    >>> wire_columns(["psfFlux", "r:band"])
    ['r:diaSourceId', 'r:diaObjectId', 'r:midpointMjdTai', 'r:band', 'r:psfFlux']
    """
    chosen = DEFAULT_COLUMNS if columns is None else columns
    return list(dict.fromkeys(rubin_column(c) for c in (*REQUIRED_COLUMNS, *chosen)))


def check_planes(planes: str) -> PlanesArg:
    """Return ``planes`` if it is one of ``"data"``, ``"all"``; InputError otherwise."""
    if planes not in PLANES_ARGS:
        raise InputError(f"invalid planes {planes!r}: expected one of {', '.join(PLANES_ARGS)}")
    return planes  # type: ignore[return-value]


def check_align(align: str | None) -> str | None:
    """Return ``align`` if it is None or ``"sky"``; InputError otherwise."""
    if align is not None and align not in ALIGN_ARGS:
        raise InputError(f"invalid align {align!r}: expected one of {', '.join(ALIGN_ARGS)}")
    return align


def check_size(size: int | None) -> int | None:
    """Return ``size`` if it is None or an int in ``1..MAX_SIZE``; InputError otherwise.

    Stamps are 30 to 102 pixels square: a canvas past ``MAX_SIZE`` is a typo that would
    allocate terabytes, refused before anything is sent.
    """
    if size is not None and (
        isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE
    ):
        raise InputError(f"invalid size {size!r}: expected a number of pixels from 1 to {MAX_SIZE}")
    return size


def as_columns(columns: Sequence[str] | None) -> tuple[str, ...] | None:
    """``columns`` as a tuple (jobs are immutable), None kept."""
    return None if columns is None else tuple(columns)
