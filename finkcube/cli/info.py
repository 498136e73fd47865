"""``finkcube info``: human summaries of a store and of one cube."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from finkcube.ids import parse_id
from finkcube.pipeline.completeness import LeftOut, left_out
from finkcube.store import (
    CubeSummary,
    cube_attributes,
    cube_summary,
    locate,
    repair_store,
    store_summary,
)

__all__ = ["describe_cube", "describe_store", "repair"]


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


#: How many left-out sources ``finkcube info STORE ID`` names one by one.
_NAMED_LEFT_OUT = 20


def _reasons(gone: Sequence[LeftOut]) -> str:
    """``"3 no_cutout, 1 service_error"``: left-out sources counted by reason."""
    counts = Counter(o.reason for o in gone)
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))


def _kept(cube: CubeSummary) -> str:
    """``kept/listed`` sources of a cube."""
    return f"{cube.epochs}/{cube.epochs + cube.missing}"


def _completeness(kept: int, gone: Sequence[LeftOut]) -> str:
    """The completeness line of a store or cube: kept of listed, left-outs by reason."""
    listed = kept + len(gone)
    share = 100.0 * kept / listed if listed else 100.0
    text = f"completeness: {kept} of {listed} listed sources kept ({share:.1f} %)"
    if gone:
        text += f"; {len(gone)} left out ({_reasons(gone)}): `finkcube update` asks for them again"
    return text


def repair(
    store: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
) -> str:
    """Repair a store (:func:`~finkcube.store.repair_store`), its catalog rewritten.

    Returns
    -------
    str
        One line: what was put right.
    """
    promoted = repair_store(store, storage_options=storage_options, rebuild_catalog=True)
    done = f"{len(promoted)} cube(s) promoted from a crashed rewrite, " if promoted else ""
    return f"{os.fspath(store)}: repaired: {done}catalog rewritten from the groups"


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
        Lines of text: a header, one line per object (``kept`` is the sources in the cube
        of those the service listed), the store's completeness, the interrupted objects.
    """
    summary = store_summary(store, storage_options=storage_options)
    located = locate(store, storage_options)
    gaps = [c.object_id for c in summary.cubes if c.missing]
    attrs = cube_attributes(located, gaps) if gaps else {}
    gone = [o for oid in gaps for o in left_out(attrs.get(oid, {}))]
    catalog = "current" if summary.finalized else "stale (`finkcube info --repair` rewrites it)"
    lines = [
        f"{summary.store}: finkcube store (layout {summary.layout}), "
        f"{summary.objects} objects, {summary.epochs} epochs, {_size(summary.nbytes)}; "
        f"catalog {catalog}",
    ]
    if summary.cubes:
        lines.append(f"{'diaObjectId':>20}  {'epochs':>6}  {'canvas':>6}  {'planes':<20}  "
                     f"{'MJD (TAI)':<23}  {'kept':>11}  {'size':>9}")  # fmt: skip
    for cube in summary.cubes:
        lines.append(
            f"{cube.object_id:>20}  {cube.epochs:>6}  {cube.canvas:>6}  "
            f"{','.join(cube.planes):<20}  {_span(cube):<23}  {_kept(cube):>11}  "
            f"{_size(cube.nbytes):>9}"
        )
    if summary.cubes:
        lines.append(_completeness(summary.epochs, gone))
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
        Lines of text; a cube that lacks sources names them (the first 20) with why and
        when they were last asked for.
    """
    cube = cube_summary(store, object_id, storage_options=storage_options)
    gone: list[LeftOut] = []
    if cube.missing:
        attrs = cube_attributes(locate(store, storage_options), [parse_id(object_id)])
        gone = left_out(attrs.get(cube.object_id, {}))
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
    lines.append("  " + _completeness(cube.epochs, gone))
    for item in gone[:_NAMED_LEFT_OUT]:
        tried = item.tried.isoformat().replace("+00:00", "Z") if item.tried else "unknown"
        lines.append(f"    diaSourceId {item.source_id}: {item.reason}, last tried {tried}")
    if len(gone) > _NAMED_LEFT_OUT:
        lines.append(f"    ... and {len(gone) - _NAMED_LEFT_OUT} more")
    return "\n".join(lines)
