"""``finkcube demo``: the whole pipeline on the built-in emulator, no network needed."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from finkcube.errors import InputError

__all__ = ["run_demo"]

logger = logging.getLogger(__name__)

#: The sample object the demo builds: a real Rubin object of the packaged alerts.
DEMO_OBJECT = "real"

#: What the demo writes into its folder; a folder holding anything else is not the demo's.
STORE_NAME, PREVIEW_NAME = "cubes.zarr", "preview.png"


def check_demo_folder(folder: Path) -> None:
    """Refuse a ``--out`` the demo did not make, before anything is started or written.

    The demo writes into a new or empty folder, or into its own earlier output (a folder
    holding only ``cubes.zarr`` and ``preview.png``), which it then resumes; anything else
    (a file, a folder of other things, a path under a file) may be the user's and is left
    alone.

    Parameters
    ----------
    folder : path
        The demo's ``--out``.

    Raises
    ------
    InputError
        When ``folder`` is a file, lies under a file, or holds something the demo did not
        write. A ``cubes.zarr`` that is not a finkcube store is refused later by the build,
        with a :class:`~finkcube.errors.StoreRefusedError`.
    """
    hint = "pass another --out DIR (a new or empty folder)"
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--out {folder} is a file, not a folder: {hint}")
    for parent in folder.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"--out {folder} lies under {parent}, a file: {hint}")
            break
    if not folder.is_dir():
        return
    others = sorted(p.name for p in folder.iterdir() if p.name not in (STORE_NAME, PREVIEW_NAME))
    if others:
        raise InputError(
            f"--out {folder} is not an earlier demo output (it holds {others[0]!r}"
            f"{f' and {len(others) - 1} more' if len(others) > 1 else ''}): {hint}"
        )


def run_demo(out: str | Path = "finkcube-demo") -> Iterator[str]:
    """Start the emulator, build a store for a sample object, draw a preview.

    Parameters
    ----------
    out : str or path
        The folder to write ``cubes.zarr`` and ``preview.png`` into: a new or empty folder
        (created if needed), or the output of an earlier demo, whose store is resumed.

    Yields
    ------
    str
        One line per step, saying what was done.

    Raises
    ------
    InputError
        When ``out`` is not a folder the demo may write into (see
        :func:`check_demo_folder`), before the emulator is started.
    """
    from finkcube.emulator import Emulator
    from finkcube.pipeline.build import build_store
    from finkcube.store import open_cube
    from finkcube.viz.plot import render

    folder = Path(out)
    check_demo_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / STORE_NAME
    with Emulator() as emu:
        oid = emu.catalog.named(DEMO_OBJECT)
        yield f"emulator of the Fink LSST API serving real Rubin alerts at {emu.url}"
        started = time.perf_counter()
        report = build_store([oid], store, url=emu.url, workers=8, progress=None)
        yield f"built {store}: {report.summary().split(': ', 1)[1]}"
        yield f"  ({time.perf_counter() - started:.1f} s, {emu.requests.total()} requests)"
    cube = open_cube(store, oid)
    dims = ", ".join(f"{d}={n}" for d, n in cube.cutout.sizes.items())
    yield f"cube of diaObjectId {oid}: cutout({dims}) float32, lazy (dask)"
    first, last = float(cube.time[0]), float(cube.time[-1])
    yield f"  {cube.sizes['time']} epochs from MJD {first:.3f} to {last:.3f}, bands " + "".join(
        sorted(set(cube.band.values.tolist()))
    )
    preview = render(store, oid, folder / PREVIEW_NAME)
    yield f"preview (stamps of epochs spread over time, light curve): {preview}"
    yield f"reopen it with: xarray.open_zarr({f'{store}/{oid}'!r})"
