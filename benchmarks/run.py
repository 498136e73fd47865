"""finkcube benchmarks: speed against the documentation's loop and the latency bound, memory,
reads and bytes on disk. Every ratio is measured in the same run, on the same machine.

Usage (from the repository root, in the project's virtual environment)::

    python benchmarks/run.py                 # the full run (~5-10 minutes on 2 cores)
    python benchmarks/run.py --quick         # tiny sizes, seconds (the smoke test runs this)
    python benchmarks/run.py --only B1,B3 --json figures.json

B1  one object of --object-sources sources, emulator latency --latency-ms: ``build_store`` at
    --workers workers against the documentation's sequential loop and against the ideal bound
    ``N x latency / workers``.
B2  --objects generated objects (--bulk-sources sources each) into one store, each build in a
    fresh process: wall time; peak RSS for 10 % of the objects and for all of them.
B3  reading that store: ``open_store``, one object's cube, streaming every stamp, against
    reading the same float32 bytes from a plain ``.npy`` file (both warm in the page cache).
B4  bytes on disk per stamp against the raw float32 size, and the store's chunks and codecs.
B5  one object of 400 sources at the real service's regime (250 ms, 16 workers), each build
    in a fresh process, against the bound and the plain-threads floor.

The emulator runs in its own process (``benchmarks/_serve.py``) so that its threads do not
compete with the measured client for the GIL.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests
from _helpers import (
    child_build,
    median_run,
    median_time,
    plain_threads_fetch,
    say,
    served,
    timed,
    tree_bytes,
)
from _loop import documentation_loop
from _regime import QUICK_REGIME, REGIME, bench_b5
from _table import Row, machine, machine_line, render

HERE = Path(__file__).resolve().parent
ALL = ("B1", "B2", "B3", "B4", "B5")

FULL = {
    "object_sources": 400,
    "latency_ms": 100.0,
    "workers": 16,
    "objects": 500,
    "bulk_sources": (20, 40),
    "bulk_latency_ms": 0.0,
    "repeats": 3,
}
QUICK = {
    "object_sources": 40,
    "latency_ms": 10.0,
    "workers": 16,
    "objects": 10,
    "bulk_sources": (5, 10),
    "bulk_latency_ms": 0.0,
    "repeats": 1,
}


# ----------------------------------------------------------------------------------- B1


def bench_b1(p: dict[str, Any], workdir: Path, notes: list[str]) -> tuple[list[Row], dict]:
    """One object: finkcube against the documentation's loop and the latency bound."""
    from finkcube.pipeline.build import build_cube, build_store
    from finkcube.service import FinkClient
    from finkcube.service.decode import decode_cutout_arrays
    from finkcube.store import init_store, write_cube

    workers, latency = p["workers"], p["latency_ms"] / 1000
    with served(workdir, latency_ms=p["latency_ms"], object_sources=p["object_sources"]) as emu:
        url, oid = emu["url"], emu["object"]
        say(f"B1: emulator at {url}, {p['latency_ms']:g} ms; build_store x {p['repeats']}")
        # Warm-up, not timed: first use of the code paths, codecs and thread pool.
        warm = workdir / "b1-warmup.zarr"
        build_store([emu["warmup"]], warm, url=url, workers=workers, overwrite=True)

        runs = []
        for i in range(p["repeats"]):
            store = workdir / f"b1-{i}.zarr"
            seconds, report = timed(
                lambda store=store: build_store(
                    [oid], store, url=url, workers=workers, overwrite=True
                )
            )
            runs.append(seconds)
            shutil.rmtree(store, ignore_errors=True)
        n = report.results[0].epochs
        t_api = statistics.median(runs)

        cli_store = workdir / "b1-cli.zarr"
        shutil.rmtree(cli_store, ignore_errors=True)  # a fresh build, not a resume
        cli = [sys.executable, "-m", "finkcube", "build", str(oid), "--out", str(cli_store)]
        cli += ["--url", url, "--workers", str(workers)]
        t_cli, done = timed(lambda: subprocess.run(cli, capture_output=True, text=True))
        if done.returncode != 0:
            notes.append(f"B1 CLI failed ({done.returncode}): {done.stderr.strip()[-300:]}")
            t_cli = None
        elif said := re.search(r"added in ([0-9.]+) s", done.stdout):
            notes.append(
                f"B1: `finkcube build` took {t_cli:.2f} s in all; it reports its build as "
                f"{said.group(1)} s (start-up and imports before the build excluded)"
            )

        # Decoding one kind=All reply: finkcube's decoder against the loop's json + asarray.
        sources = requests.post(
            url + "/api/v1/sources",
            json={"diaObjectId": str(oid), "columns": "r:diaSourceId,r:bboxSize"},
        ).json()
        sid = sources[0]["r:diaSourceId"]
        body = requests.post(
            url + "/api/v1/cutouts",
            json={"diaSourceId": str(sid), "kind": "All", "output-format": "array"},
        ).content
        side = len(decode_cutout_arrays(body, source_id=sid)["Science"])
        reps = 200
        t_dec = median_time(lambda: decode_cutout_arrays(body, source_id=sid), reps)

        def loop_decode() -> None:
            reply = json.loads(body)
            for k in ("Science", "Template", "Difference"):
                np.asarray(reply["b:cutout" + k], np.float32)

        t_json = median_time(loop_decode, reps)

        # What one request costs beyond the injected latency (server, HTTP, transport).
        with requests.Session() as session:
            payload = {"diaSourceId": str(sid), "kind": "All", "output-format": "array"}
            t_req = median_time(lambda: session.post(url + "/api/v1/cutouts", json=payload), 10)
        notes.append(
            f"B1: one kind=All request on a kept-alive session takes {t_req * 1e3:.1f} ms, "
            f"{(t_req - latency) * 1e3:.1f} ms beyond the injected latency"
        )

        say(f"B1: the documentation's loop (about {p['object_sources'] * latency:.0f} s)")
        # Where build_store's time goes, and what the transport alone allows.
        say("B1: breakdown (build_cube, write_cube) and the transport floor")
        with FinkClient(url, workers=workers) as client:
            t_cube, cube = timed(lambda: build_cube(oid, client=client))
        init_store(workdir / "b1-split.zarr", overwrite=True)
        t_write, _ = timed(lambda: write_cube(cube, workdir / "b1-split.zarr"))
        ids = [s["r:diaSourceId"] for s in sources]
        t_floor = median_time(lambda: plain_threads_fetch(url, ids, workers), 2)

        t_loop, n_loop = timed(lambda: documentation_loop(url, oid, str(workdir / "loop.zarr")))

    bound = n_loop * latency / workers
    rows = [
        Row(
            "B1a",
            f"1 object, {n_loop} sources, {p['latency_ms']:g} ms: build_store "
            f"({workers} workers) vs the documentation's loop",
            t_api,
            t_loop,
            unit="s",
            ratio=f"{t_loop / t_api:.1f}x faster",
            target=f">= {13 * workers / 16:.0f}x",
            passed=t_loop / t_api >= 13 * workers / 16,
        ),
        Row(
            "B1b",
            f"build_store vs the ideal bound N x latency / workers = {n_loop} x "
            f"{p['latency_ms']:g} ms / {workers}",
            t_api,
            bound,
            unit="s",
            ratio=f"{bound / t_api:.0%} of the bound",
            target=">= 85%",
            passed=bound / t_api >= 0.85,
        ),
        Row(
            "B1c",
            "`finkcube build` CLI (interpreter start-up included) vs the bound",
            t_cli,
            bound,
            unit="s",
            ratio=f"{bound / t_cli:.0%} of the bound" if t_cli else "",
        ),
        Row(
            "B1d",
            f"decode one kind=All reply ({side}x{side} px, {len(body) / 1e3:.0f} kB) vs "
            "json.loads + np.asarray",
            t_dec * 1e3,
            t_json * 1e3,
            unit="ms",
            ratio=f"{t_json / t_dec:.1f}x faster",
            target="< 1 ms",
            passed=t_dec < 1e-3,
        ),
    ]
    rows.append(
        Row(
            "B1e",
            f"floor: the same {n_loop} requests on {workers} plain threads sharing one "
            "requests.Session (no decode, no store) vs the bound",
            t_floor,
            bound,
            unit="s",
            ratio=f"{bound / t_floor:.0%} of the bound",
        )
    )
    notes.append(
        f"B1: breakdown: build_cube (sources listing + fetch + decode + assemble) "
        f"{t_cube:.2f} s, write_cube {t_write:.2f} s, sum {t_cube + t_write:.2f} s "
        f"(build_store {t_api:.2f} s)"
    )
    if n != n_loop:
        notes.append(f"B1: build_store wrote {n} epochs, the loop {n_loop}")
    notes.append(
        f"B1: build_store runs (s): {', '.join(f'{t:.2f}' for t in runs)}; the bound counts "
        f"the cutout requests only (the sources request adds one latency, "
        f"{p['latency_ms']:g} ms)"
    )
    figures = {
        "sources": n_loop,
        "latency_ms": p["latency_ms"],
        "workers": workers,
        "build_store_s": runs,
        "cli_s": t_cli,
        "loop_s": t_loop,
        "bound_s": bound,
        "decode_ms": t_dec * 1e3,
        "json_decode_ms": t_json * 1e3,
        "reply_bytes": len(body),
        "reply_side": side,
        "request_s": t_req,
        "build_cube_s": t_cube,
        "write_cube_s": t_write,
        "floor_s": t_floor,
    }
    return rows, figures


# ----------------------------------------------------------------------------------- B2


def bench_b2(
    p: dict[str, Any], workdir: Path, store: Path, want_rss: bool, notes: list[str]
) -> tuple[list[Row], dict]:
    """Many objects into one store, each build in a fresh process: time and peak RSS."""
    with served(
        workdir,
        latency_ms=p["bulk_latency_ms"],
        bulk=p["objects"],
        bulk_sources=p["bulk_sources"],
    ) as emu:
        url, ids = emu["url"], emu["bulk"]
        tenth = None
        say(f"B2: emulator at {url}; {len(ids)} objects, each build in a fresh process")
        if want_rss:
            k = max(1, len(ids) // 10)
            tenth = child_build(url, workdir / "b2-tenth.zarr", ids[:k], p["workers"], workdir)
            shutil.rmtree(workdir / "b2-tenth.zarr", ignore_errors=True)
        full = child_build(url, store, ids, p["workers"], workdir)
    rows = [
        Row(
            "B2a",
            f"{full['built']} objects, {full['epochs']} sources "
            f"({p['bulk_sources'][0]}-{p['bulk_sources'][1]} each), "
            f"{p['bulk_latency_ms']:g} ms: build_store wall time",
            full["seconds"],
            unit="s",
            ratio=f"{full['epochs'] / full['seconds']:.0f} sources/s",
            target=f"{len(ids)} built",
            passed=full["built"] == len(ids) and full["failed"] == 0,
        )
    ]
    if tenth is not None:
        growth = full["maxrss_mb"] - tenth["maxrss_mb"]
        rows.append(
            Row(
                "B2b",
                f"peak RSS: {full['built']} objects (100%) vs {tenth['built']} (10%)",
                full["maxrss_mb"],
                tenth["maxrss_mb"],
                unit="MB",
                ratio=f"{growth:+.0f} MB",
                target="< +200 MB",
                passed=growth < 200,
            )
        )
    if tenth is not None:
        notes.append(
            f"B2: peak RSS after the imports {tenth['rss_after_import_mb']:.0f} MB; the build "
            f"adds {tenth['maxrss_mb'] - tenth['rss_after_import_mb']:.0f} MB for "
            f"{tenth['built']} objects, {full['maxrss_mb'] - full['rss_after_import_mb']:.0f} "
            f"MB for {full['built']}; the 10% build took {tenth['seconds']:.1f} s"
        )
    return rows, {"full": full, "tenth": tenth, "objects": ids}


# ----------------------------------------------------------------------------------- B3


def bench_b3(
    p: dict[str, Any], workdir: Path, store: Path, notes: list[str]
) -> tuple[list[Row], dict]:
    """Reading the store: lazy open, one object, streaming every stamp vs a plain .npy."""
    import zarr

    from finkcube.store import iter_cutouts, list_objects, open_cube, open_store

    say("B3: reading the store")
    t_open = median_time(lambda: open_store(store), p["repeats"])  # the catalog
    tree = open_store(store).to_datatree()
    oids = list_objects(store)
    epochs = {oid: tree[str(oid)].sizes["time"] for oid in oids}
    sizes = {oid: int(tree[str(oid)]["cutout"].size) for oid in oids}
    typical = sorted(oids, key=lambda o: epochs[o])[len(oids) // 2]
    one_bytes = sizes[typical] * 4
    t_one = median_time(lambda: open_cube(store, typical).load(), max(5, p["repeats"]))

    # The same float32 bytes in one plain .npy file, written object after object.
    npy = workdir / "same-bytes.npy"
    flat = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32, shape=(sum(sizes.values()),))
    at = 0
    for oid in oids:
        flat[at : at + sizes[oid]] = tree[str(oid)]["cutout"].values.ravel()
        at += sizes[oid]
    flat.flush()
    del flat

    def stream_iter(stream: Any) -> int:  # finkcube's streaming reader
        return sum(array.nbytes for _, array in stream)

    def stream_tree(opened: Any) -> int:  # through open_store's tree, node by node
        return sum(opened[str(oid)]["cutout"].values.nbytes for oid in oids)

    def stream_cubes() -> int:  # one open_cube (dask) per object
        return sum(open_cube(store, oid).cutout.values.nbytes for oid in oids)

    def stream_zarr() -> int:  # the floor: zarr-python alone, no xarray, no finkcube
        return sum(zarr.open_array(store, path=f"{o}/cutout", mode="r")[:].nbytes for o in oids)

    def stream_npy() -> int:  # the same bytes, in the same per-object pieces
        total = 0
        with npy.open("rb") as f:
            np.lib.format.read_magic(f)
            np.lib.format.read_array_header_1_0(f)
            for oid in oids:
                total += np.fromfile(f, np.float32, count=sizes[oid]).nbytes
        return total

    stream_tree(open_store(store).to_datatree())  # warm the page cache: warm reads below
    stream_npy()
    fresh = open_store(store).to_datatree()  # opened outside the timing
    t_tree, n_tree = timed(lambda: stream_tree(fresh))
    # iter_cutouts against the .npy, interleaved, the median of each: the .npy rate itself
    # swings by 30% between runs on a busy machine.
    iter_runs, npy_runs, t_plan = [], [], []
    for _ in range(max(3, p["repeats"])):
        t, stream = timed(lambda: iter_cutouts(store))  # checks every cube, like an open
        t_plan.append(t)
        iter_runs.append(timed(lambda stream=stream: stream_iter(stream)))
        npy_runs.append(timed(stream_npy))
    t_iter, n_iter = median_run(iter_runs)
    t_npy, n_npy = median_run(npy_runs)
    t_cubes, n_cubes = timed(stream_cubes)
    t_zarr, n_zarr = timed(stream_zarr)
    assert n_iter == n_tree == n_npy == n_cubes == n_zarr, (n_iter, n_tree, n_npy, n_cubes)
    rate, npy_rate = n_iter / t_iter / 1e6, n_npy / t_npy / 1e6
    tree_rate = n_tree / t_tree / 1e6
    cubes_rate, zarr_rate = n_cubes / t_cubes / 1e6, n_zarr / t_zarr / 1e6
    stamps = sum(epochs.values()) * 3
    notes.append(
        f"B3: iter_cutouts runs (MB/s): {', '.join(f'{n / t / 1e6:.0f}' for t, n in iter_runs)}"
        f"; .npy runs: {', '.join(f'{n / t / 1e6:.0f}' for t, n in npy_runs)}; creating the "
        f"iterator (every cube checked) took {statistics.median(t_plan) * 1e3:.0f} ms"
    )
    notes.append(
        f"B3: zarr-python alone (zarr.open_array(...)[:] per object, no xarray) streams "
        f"{zarr_rate:.0f} MB/s, {zarr_rate / npy_rate:.0%} of the .npy rate; mean cube "
        f"{n_tree / len(oids) / 1e6:.2f} MB"
    )
    rows = [
        Row(
            "B3a",
            f"open_store (its catalog of {len(oids)} objects; cubes opened on access)",
            t_open,
            unit="s",
            target="<= 0.5 s",
            passed=t_open <= 0.5,
        ),
        Row(
            "B3b",
            f"open_cube(...).load() of one object ({epochs[typical]} epochs, "
            f"{one_bytes / 1e6:.2f} MB)",
            t_one * 1e3,
            unit="ms",
            target="< 50 ms",
            passed=t_one < 0.05,
        ),
        Row(
            "B3c",
            f"stream every stamp with iter_cutouts ({stamps} stamps, {n_iter / 1e6:.0f} MB "
            "float32) vs the same bytes from a .npy (warm; medians)",
            rate,
            npy_rate,
            unit="MB/s",
            ratio=f"{rate / npy_rate:.0%} of .npy",
            target=">= 50%",
            passed=rate / npy_rate >= 0.5,
        ),
        Row(
            "B3d",
            "stream every stamp through open_store(...).to_datatree(), node by node, vs .npy",
            tree_rate,
            npy_rate,
            unit="MB/s",
            ratio=f"{tree_rate / npy_rate:.0%} of .npy",
        ),
        Row(
            "B3e",
            "stream every stamp, one open_cube (dask) per object, vs the .npy",
            cubes_rate,
            npy_rate,
            unit="MB/s",
            ratio=f"{cubes_rate / npy_rate:.0%} of .npy",
        ),
    ]
    figures = {
        "open_store_s": t_open,
        "one_object_s": t_one,
        "one_object_id": typical,
        "one_object_bytes": one_bytes,
        "stream_iter_s": t_iter,
        "stream_iter_runs_s": [t for t, _ in iter_runs],
        "npy_runs_s": [t for t, _ in npy_runs],
        "iter_plan_s": t_plan,
        "stream_tree_s": t_tree,
        "stream_cubes_s": t_cubes,
        "stream_zarr_s": t_zarr,
        "npy_s": t_npy,
        "bytes": n_tree,
        "stamps": stamps,
    }
    return rows, figures


# ----------------------------------------------------------------------------------- B4


def _layout(store: Path, oid: int) -> str:
    """The chunks, shards and codecs of one object's ``cutout`` array, as stored."""
    import zarr

    array = zarr.open_array(store, path=f"{oid}/cutout", mode="r")
    meta = array.metadata.to_dict()
    codecs = [c.get("name") if isinstance(c, dict) else str(c) for c in meta.get("codecs", [])]
    inner = []
    for c in meta.get("codecs", []):
        if isinstance(c, dict) and c.get("name") == "sharding_indexed":
            conf = c.get("configuration", {})
            inner = [x.get("name") for x in conf.get("codecs", [])]
            codecs = [f"sharding(inner chunks {conf.get('chunk_shape')}: {inner})"]
    described = [
        {k: v for k, v in c.items() if k != "configuration"} | c.get("configuration", {})
        if isinstance(c, dict)
        else c
        for c in meta.get("codecs", [])
    ]
    return (
        f"shape {array.shape}, chunks {array.chunks}, shards {array.shards}, "
        f"codecs {codecs}; full: {json.dumps(described, default=str)}"
    )


def bench_b4(store: Path) -> tuple[list[Row], dict, str]:
    """Bytes on disk per stamp against the raw float32 size, padded and not."""
    from finkcube.store import list_objects, open_store

    apparent, allocated, files = tree_bytes(store)
    oids = list_objects(store)
    tree = open_store(store).to_datatree()
    stamps = padded = unpadded = 0
    for oid in oids:
        cube = tree[str(oid)]
        t, k = cube.sizes["time"], cube.sizes["kind"]
        stamps += t * k
        padded += cube.cutout.nbytes
        sides = np.asarray(cube["side"].values, np.int64)
        unpadded += int((sides**2).sum()) * k * cube.sizes["plane"] * 4
    per_stamp = apparent / stamps
    rows = [
        Row(
            "B4a",
            "bytes on disk per stamp (whole store) vs raw float32 as stored (padded canvas)",
            per_stamp,
            padded / stamps,
            unit="B",
            ratio=f"{per_stamp / (padded / stamps):.2f}",
        ),
        Row(
            "B4b",
            "bytes on disk per stamp vs raw float32 of the un-padded stamps",
            per_stamp,
            unpadded / stamps,
            unit="B",
            ratio=f"{per_stamp / (unpadded / stamps):.2f}",
            target="stated in README",
        ),
    ]
    layout = _layout(store, oids[0]) if oids else "empty store"
    figures = {
        "apparent_bytes": apparent,
        "allocated_bytes": allocated,
        "files": files,
        "stamps": stamps,
        "padded_bytes": padded,
        "unpadded_bytes": unpadded,
        "layout": layout,
    }
    return rows, figures, layout


# --------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="finkcube benchmarks (see benchmarks/README.md)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated, e.g. B1,B3")
    parser.add_argument("--json", type=Path, help="also save every figure to this JSON file")
    parser.add_argument("--workdir", type=Path, help="keep the stores here (default: a temp dir)")
    parser.add_argument("--object-sources", type=int, help="B1: sources of the object")
    parser.add_argument("--latency-ms", type=float, help="B1: emulator latency")
    parser.add_argument("--workers", type=int, help="concurrent requests of finkcube")
    parser.add_argument("--objects", type=int, help="B2: objects in the store")
    parser.add_argument("--repeats", type=int, help="timed repeats (the median is kept)")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )
    args = parser.parse_args(argv)
    chosen = [x.strip().upper() for x in args.only.split(",") if x.strip()]
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        parser.error(f"--only: unknown benchmark {unknown[0]}; choose among {', '.join(ALL)}")
    args.only = chosen
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    params = dict(QUICK if args.quick else FULL)
    for key in ("object_sources", "latency_ms", "workers", "objects", "repeats"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    info = machine()
    started = time.perf_counter()
    rows: list[Row] = []
    notes: list[str] = []
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="finkcube-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        store = workdir / "b2-store.zarr"
        if "B1" in args.only:
            got, figures["B1"] = bench_b1(params, workdir, notes)
            rows += got
            say("\n" + render(got))
        reuse = "B2" not in args.only and (store / "zarr.json").exists()
        if reuse:
            say(f"B3/B4: reusing the store {store} (B2 not asked for)")
        elif {"B2", "B3", "B4"} & set(args.only):
            got, figures["B2"] = bench_b2(
                params, workdir, store, want_rss="B2" in args.only, notes=notes
            )
            if "B2" in args.only:
                rows += got
                say("\n" + render(got))
        if "B3" in args.only:
            got, figures["B3"] = bench_b3(params, workdir, store, notes)
            rows += got
        if "B4" in args.only:
            got, figures["B4"], layout = bench_b4(store)
            rows += got
            notes.append(f"B4: store layout of `cutout`: {layout}")
        if "B5" in args.only:
            regime = dict(QUICK_REGIME if args.quick else REGIME)
            if args.repeats is not None:
                regime["repeats"] = args.repeats
            got, figures["B5"] = bench_b5(regime, workdir, notes)
            rows += got
            say("\n" + render(got))
    info["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    info["seconds"] = time.perf_counter() - started
    print(render(rows))
    print()
    print(machine_line(info))
    end_load = info["loadavg_end"]
    print(
        f"run: {'quick' if args.quick else 'full'}, {info['seconds']:.0f} s"
        + (f"; load average at end {end_load[0]:.2f}" if end_load else "")
    )
    for note in notes:
        print(note)
    if args.json:
        saved = {
            "machine": info,
            "params": params,
            "rows": [r.as_dict() for r in rows],
            "figures": figures,
        }
        args.json.write_text(json.dumps(saved, indent=2, default=str) + "\n")
    missed = [r.id for r in rows if r.passed is False]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
