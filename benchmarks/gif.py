"""G1: the GIF of one object of 1,200 epochs, written by ``finkcube plot --gif``: time and memory.

``python benchmarks/gif.py [--epochs 1200] [--dpi 100] [--workdir DIR] [--json FILE]``

Builds a store holding one generated object (stamps of 30 to 102 px, the Rubin range, on a
102 px canvas; a point source in the Difference whose flux varies), then writes its GIF in
a fresh process (``--child``), timing the ``render`` call (imports excluded) and reading the
process's peak resident set (``VmHWM``, else ``ru_maxrss``), imports included. The frames
and figures printed: wall time, frames per second, peak RSS, RSS after imports, GIF size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _child import _maxrss_mb  # noqa: E402

OBJECT_ID = 170000000000000001
SOURCE_ID = 2**60 + 17


def make_cube(epochs: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """Return the cube of one generated object of ``epochs`` epochs (``planes="data"``)."""
    from finkcube.cube import assemble_cube
    from finkcube.cutouts import SourceCutouts, Stamp
    from finkcube.names import KINDS

    rng = np.random.default_rng(seed)
    times = 60800.0 + np.sort(rng.uniform(0, 900, epochs))
    records, cutouts = [], {}
    for i in range(epochs):
        sid = SOURCE_ID + 7919 * i
        side = int(rng.integers(30, 103))
        flux = 2000.0 + 1500.0 * np.sin(i / 40.0)
        yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
        star = np.exp(-(xx**2 + yy**2) / 8.0)
        template = 300.0 + 800.0 * star
        difference = flux * star
        planes = {
            "Science": template + difference,
            "Template": template,
            "Difference": difference,
        }
        stamps = tuple(
            Stamp(kind, {"data": (planes[kind] + rng.normal(0, 40, (side, side))).astype("f4")})
            for kind in KINDS
        )
        cutouts[sid] = SourceCutouts(sid, stamps)
        records.append({
            "r:diaSourceId": sid, "r:diaObjectId": OBJECT_ID,
            "r:midpointMjdTai": float(times[i]), "r:band": "ugrizy"[i % 6],
            "r:psfFlux": float(flux), "r:psfFluxErr": 40.0,
        })  # fmt: skip
    return assemble_cube(OBJECT_ID, records, cutouts)


def child(store: str, out: str, dpi: int) -> None:
    """Write the GIF (the work of ``finkcube plot --gif``) and print the figures as JSON."""
    from finkcube.viz.plot import render

    after_import = _maxrss_mb()
    started = time.perf_counter()
    path = render(store, OBJECT_ID, out, gif=True, dpi=dpi, progress=False)
    seconds = time.perf_counter() - started
    from PIL import Image

    with Image.open(path) as gif:
        frames = gif.n_frames
    sys.stdout.write(json.dumps({
        "seconds": seconds, "maxrss_mb": _maxrss_mb(), "rss_after_import_mb": after_import,
        "frames": frames, "gif_mb": path.stat().st_size / 1e6,
    }) + "\n")  # fmt: skip


def main() -> None:
    """Build the store, write the GIF in a fresh process, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1200)
    parser.add_argument("--dpi", type=int, default=100)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=3, metavar=("STORE", "OUT", "DPI"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    from finkcube.store import init_store, write_cube

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="finkcube-gif-"))
    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / "gif.zarr"
    if not store.exists():
        init_store(store)
        write_cube(make_cube(args.epochs), store)
    out = workdir / "object.gif"
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(store), str(out), str(args.dpi)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"G1 | GIF of {figures['frames']} frames at {args.dpi} dpi | "
        f"{figures['seconds']:.1f} s ({figures['frames'] / figures['seconds']:.1f} frames/s) | "
        f"peak RSS {figures['maxrss_mb']:.0f} MB (after imports "
        f"{figures['rss_after_import_mb']:.0f} MB) | {figures['gif_mb']:.1f} MB file"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
