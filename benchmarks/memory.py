"""M1: peak memory of a ``planes="all"`` build of the emulator's 1,200-source object.

```bash
python benchmarks/memory.py               # the 1,200-source object, median of 3
python benchmarks/memory.py --quick       # a 200-source object, once (the smoke test)
```

The emulator serves the ``large`` object (1,200 sources, stamps of 30 to 40 pixels) at
latency 0 in this process; each build runs in a fresh process (``--child``) that imports
finkcube and reads its resident set (``VmRSS``), builds the one-source ``single`` object
(``planes="all"``) into a store of its own, which imports every library a build uses
(dask.array, zarr's codecs, astropy.io.fits and astropy.wcs, ...) and starts its threads,
reads its resident set again, then runs ``build_store([ID], STORE, planes="all")`` and
reads its peak resident set (``VmHWM``, else ``ru_maxrss``). M1 is the peak above the
imports (the second reading: what does not grow with the cube) against the cube's own size
in memory (``nbytes`` of the cube read back, the PSF's share shown apart); target <= 1.5x.
M1i shows the peak above ``import finkcube`` alone. Median of ``--repeats`` fresh processes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _child import _maxrss_mb  # noqa: E402

#: The target: peak memory above the imports, in cubes.
TARGET = 1.5


def _rss_mb() -> float:
    """This process's resident set now, in MB (``VmRSS``; the peak where there is none)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return _maxrss_mb()


def child(url: str, object_id: int, warm_id: int, store: str) -> None:
    """Build the object's cube into ``store`` and print the figures as JSON."""
    import finkcube

    after_finkcube = _rss_mb()
    finkcube.build_store([warm_id], f"{store}-warm", url=url, planes="all", workers=4)
    after_import = _rss_mb()
    report = finkcube.build_store([object_id], store, url=url, planes="all", workers=4)
    peak = _maxrss_mb()
    cube = finkcube.open_cube(store, object_id).load()
    figures = {
        "rss_after_finkcube_mb": after_finkcube,
        "rss_after_import_mb": after_import,
        "maxrss_mb": peak,
        "built": report.count("built"),
        "epochs": cube.sizes["time"],
        "cube_mb": cube.nbytes / 1e6,
        "psf_mb": cube["psf"].nbytes / 1e6 if "psf" in cube else 0.0,
        "cutout_mb": cube["cutout"].nbytes / 1e6,
    }
    sys.stdout.write(json.dumps(figures) + "\n")


def _one(url: str, object_id: int, warm_id: int, store: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", url, str(object_id), str(warm_id), str(store)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a 200-source object, once")
    parser.add_argument("--json", type=Path, help="save the figures")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)  # URL ID WARM_ID STORE
    args = parser.parse_args(argv)
    if args.child:
        url, oid, warm, store = args.child
        child(url, int(oid), int(warm), store)
        return 0
    from finkcube.emulator import Emulator

    repeats = 1 if args.quick else args.repeats
    with Emulator(latency_ms=0) as emu, tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            (oid,) = emu.catalog.bulk_objects(1, sources=(200, 200))
        else:
            oid = emu.catalog.named("large")
        warm = emu.catalog.named("single")
        runs = [_one(emu.url, oid, warm, Path(tmp) / f"run-{i}.zarr") for i in range(repeats)]
    above = statistics.median(r["maxrss_mb"] - r["rss_after_import_mb"] for r in runs)
    above_finkcube = statistics.median(r["maxrss_mb"] - r["rss_after_finkcube_mb"] for r in runs)
    first = runs[0]
    ratio = above / first["cube_mb"]
    figures = {
        "runs": runs,
        "peak_above_imports_mb": above,
        "peak_above_finkcube_mb": above_finkcube,
        "ratio": ratio,
    }
    print(
        f"cube: {first['epochs']} epochs, {first['cube_mb']:.0f} MB in memory "
        f"(cutout {first['cutout_mb']:.0f} MB, psf {first['psf_mb']:.0f} MB); finkcube "
        f"imported {statistics.median(r['rss_after_finkcube_mb'] for r in runs):.0f} MB, "
        f"with a build's libraries "
        f"{statistics.median(r['rss_after_import_mb'] for r in runs):.0f} MB"
    )
    print("id | what | finkcube | baseline | ratio | target | pass")
    print(
        f"M1 | peak RSS above imports, planes='all' build, fresh process, median of {repeats} | "
        f"{above:.0f} MB | {first['cube_mb']:.0f} MB (the cube's nbytes) | {ratio:.2f} | "
        f"<= {TARGET} | {'yes' if ratio <= TARGET else 'NO'}"
    )
    print(
        f"M1i | the same peak above `import finkcube` alone | {above_finkcube:.0f} MB | "
        f"{first['cube_mb']:.0f} MB | {above_finkcube / first['cube_mb']:.2f} | - | -"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
