"""B1 of ``benchmarks/run.py``: one object's build at a given latency, against the
documentation's sequential loop, the ideal bound ``N x latency / workers`` and the floor of
plain threads; the CLI, and one reply's decoding."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import requests
from _helpers import median_time, plain_threads_fetch, say, served, timed
from _loop import documentation_loop
from _table import Row


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
