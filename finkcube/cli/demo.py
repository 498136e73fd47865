"""``finkcube demo``: the whole pipeline on the built-in emulator, no network needed."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["run_demo"]

logger = logging.getLogger(__name__)

#: The sample object the demo builds: a real Rubin object of the packaged alerts.
DEMO_OBJECT = "real"


def run_demo(out: str | Path = "finkcube-demo") -> Iterator[str]:
    """Start the emulator, build a store for a sample object, draw a preview.

    Parameters
    ----------
    out : str or path
        The folder to write ``cubes.zarr`` and ``preview.png`` into (created if needed).

    Yields
    ------
    str
        One line per step, saying what was done.
    """
    from finkcube.emulator import Emulator
    from finkcube.pipeline.build import build_store
    from finkcube.store import open_cube
    from finkcube.viz.plot import render

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "cubes.zarr"
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
    preview = render(store, oid, folder / "preview.png")
    yield f"preview (stamps of epochs spread over time, light curve): {preview}"
    yield f"reopen it with: xarray.open_zarr({str(store)!r}, group='{oid}')"
