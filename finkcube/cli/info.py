"""``finkcube info``: human summaries of a store and of one cube."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from finkcube.store import CubeSummary, cube_summary, store_summary

__all__ = ["describe_cube", "describe_store"]


def _size(nbytes: int) -> str:
    """Return a byte count in binary units.

    Examples
    --------
    >>> _size(512), _size(3 * 2**20)
    ('512 B', '3.0 MiB')
    """
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _span(cube: CubeSummary) -> str:
    if cube.first_mjd is None or cube.last_mjd is None:
        return "-"
    return f"{cube.first_mjd:.3f}..{cube.last_mjd:.3f}"


def describe_store(
    store: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
) -> str:
    """Return a table of the objects of a store: epochs, canvas, time span, size.

    Parameters
    ----------
    store : str or path
        A finkcube store, local or fsspec URL.
    storage_options : mapping, optional
        Passed to fsspec.

    Returns
    -------
    str
        Lines of text, the last a total.
    """
    summary = store_summary(store, storage_options=storage_options)
    lines = [
        f"{summary.store}: finkcube store (layout {summary.layout}), "
        f"{summary.objects} objects, {summary.epochs} epochs, {_size(summary.nbytes)}",
    ]
    if summary.cubes:
        lines.append(f"{'diaObjectId':>20}  {'epochs':>6}  {'canvas':>6}  {'planes':<20}  "
                     f"{'MJD (TAI)':<23}  {'missing':>7}  {'size':>9}")  # fmt: skip
    for cube in summary.cubes:
        lines.append(
            f"{cube.object_id:>20}  {cube.epochs:>6}  {cube.canvas:>6}  "
            f"{','.join(cube.planes):<20}  {_span(cube):<23}  {cube.missing:>7}  "
            f"{_size(cube.nbytes):>9}"
        )
    if summary.incomplete:
        ids = ", ".join(str(i) for i in summary.incomplete)
        lines.append(f"incomplete (interrupted; `finkcube build` redoes them): {ids}")
    return "\n".join(lines)


def describe_cube(
    store: str | os.PathLike[str],
    object_id: int | str,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Return a few lines about one cube: epochs per band, canvas, planes, time span.

    Parameters
    ----------
    store : str or path
        A finkcube store.
    object_id : int or str
        The diaObjectId.
    storage_options : mapping, optional
        Passed to fsspec.

    Returns
    -------
    str
        Lines of text.
    """
    cube = cube_summary(store, object_id, storage_options=storage_options)
    bands = ", ".join(f"{band}: {n}" for band, n in (cube.bands or {}).items())
    lines = [
        f"diaObjectId {cube.object_id}: {cube.epochs} epochs ({bands})",
        f"  cutout (time, kind, y, x, plane) = ({cube.epochs}, 3, {cube.canvas}, "
        f"{cube.canvas}, {len(cube.planes)}); planes: {', '.join(cube.planes)}",
        f"  MJD (TAI) {_span(cube)}; {cube.missing} sources without cutouts; "
        f"{_size(cube.nbytes)} on disk",
    ]
    if cube.created:
        lines.append(f"  built {cube.created}")
    return "\n".join(lines)
