"""B5: one object at the real service's regime (about 250 ms a request, 16 workers).

B5a times ``build_store`` in this process after one untimed build of another object, as a
user's session or a nightly job that builds more than one store sees it; every per-build
set-up (the client, its connections, the store) is inside the timing. B5c times the same
call in a fresh Python process (``_child.py``, imports excluded): what a one-off script pays
on top, the first use of xarray, dask and zarr in that process. The bound is
``N x latency / workers`` for the N cutout requests; the floor (B5b) is the same requests
on plain threads sharing one ``requests.Session``, with no decoding and no store, measured
in the same run.
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path
from typing import Any

import requests
from _helpers import child_build, median_time, plain_threads_fetch, say, served, timed
from _table import Row

#: The regime of the real service (see the README's "Speed").
REGIME = {"object_sources": 400, "latency_ms": 250.0, "workers": 16, "repeats": 3}
QUICK_REGIME = {"object_sources": 40, "latency_ms": 25.0, "workers": 16, "repeats": 1}
#: build_store must reach this share of the bound.
TARGET = 0.90


def bench_b5(p: dict[str, Any], workdir: Path, notes: list[str]) -> tuple[list[Row], dict]:
    """build_store of one object at the service's latency, against the bound and the floor."""
    from finkcube import build_store

    workers, latency = p["workers"], p["latency_ms"] / 1000
    with served(workdir, latency_ms=p["latency_ms"], object_sources=p["object_sources"]) as emu:
        url, oid = emu["url"], emu["object"]
        records = requests.post(
            url + "/api/v1/sources",
            json={"diaObjectId": str(oid), "columns": "r:diaSourceId"},
            timeout=60,
        ).json()
        ids = [r["r:diaSourceId"] for r in records]
        say(f"B5: {len(ids)} sources at {p['latency_ms']:g} ms, build_store x {p['repeats']}")
        build_store([emu["warmup"]], workdir / "b5-warmup.zarr", url=url, overwrite=True)
        runs = []
        for i in range(p["repeats"]):
            store = workdir / f"b5-{i}.zarr"
            runs.append(timed(lambda s=store: build_store([oid], s, url=url, workers=workers))[0])
            shutil.rmtree(store, ignore_errors=True)
        say("B5: the same builds, each in a fresh process")
        fresh = []
        for i in range(p["repeats"]):
            got = child_build(url, workdir / f"b5-fresh-{i}.zarr", [oid], workers, workdir)
            fresh.append(got["seconds"])
        say("B5: the transport floor (plain threads)")
        t_floor = median_time(lambda: plain_threads_fetch(url, ids, workers), p["repeats"])
    t_api, t_fresh = statistics.median(runs), statistics.median(fresh)
    bound = len(ids) * latency / workers
    rows = [
        Row(
            "B5a",
            f"1 object, {len(ids)} sources, {p['latency_ms']:g} ms: build_store "
            f"({workers} workers) vs the bound N x latency / workers",
            t_api,
            bound,
            unit="s",
            ratio=f"{bound / t_api:.0%} of the bound",
            target=f">= {TARGET:.0%}",
            passed=bound / t_api >= TARGET,
        ),
        Row(
            "B5b",
            f"floor: the same {len(ids)} requests on {workers} plain threads (no decode, "
            "no store) vs the bound",
            t_floor,
            bound,
            unit="s",
            ratio=f"{bound / t_floor:.0%} of the bound",
        ),
        Row(
            "B5c",
            "build_store as B5a, each run in a fresh process (first use of xarray, dask and "
            "zarr included, imports excluded) vs the bound",
            t_fresh,
            bound,
            unit="s",
            ratio=f"{bound / t_fresh:.0%} of the bound",
        ),
    ]
    notes.append(
        f"B5: build_store runs (s): {', '.join(f'{t:.2f}' for t in runs)}; in fresh processes: "
        f"{', '.join(f'{t:.2f}' for t in fresh)}; the sources request adds one latency "
        f"({p['latency_ms']:g} ms) beyond the bound"
    )
    figures = {
        "sources": len(ids),
        "build_store_s": runs,
        "fresh_process_s": fresh,
        "floor_s": t_floor,
        "bound_s": bound,
    }
    return rows, figures
