"""Helpers of the benchmarks: the emulator in its own process, timing, fresh-process builds,
the plain-threads transport floor, bytes on disk."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent


_T0 = time.perf_counter()


def say(message: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[{time.perf_counter() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


@contextmanager
def served(workdir: Path, **options: Any) -> Iterator[dict[str, Any]]:
    """Run ``_serve.py`` in a subprocess; yield its ``{"url", "object", "warmup", "bulk"}``."""
    cmd = [sys.executable, str(HERE / "_serve.py")]
    for key, value in options.items():
        if isinstance(value, tuple):
            value = ",".join(map(str, value))
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    log = (workdir / f"emulator-{time.monotonic_ns()}.log").open("w")
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if not first:
            proc.wait(30)
            log.flush()
            raise RuntimeError(
                f"the emulator exited ({proc.returncode}): " + Path(log.name).read_text()[-2000:]
            )
        yield json.loads(first)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Return ``(seconds, result)`` of one call."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def median_run(runs: list[tuple[float, Any]]) -> tuple[float, Any]:
    """The ``(seconds, result)`` of the median run by time."""
    return sorted(runs, key=lambda r: r[0])[len(runs) // 2]


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    """The median wall time of ``repeats`` calls."""
    return statistics.median(timed(fn)[0] for _ in range(max(1, repeats)))


def child_build(url: str, store: Path, ids: list[int], workers: int, workdir: Path) -> dict:
    """Build ``ids`` into ``store`` in a fresh Python process; return its figures."""
    ids_file = workdir / f"ids-{len(ids)}.txt"
    ids_file.write_text("\n".join(map(str, ids)) + "\n")
    cmd = [sys.executable, str(HERE / "_child.py"), url, str(store), str(ids_file), str(workers)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the build of {len(ids)} objects failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plain_threads_fetch(url: str, source_ids: list[int], workers: int) -> None:
    """Fetch every cutout on ``workers`` plain threads sharing one session: the floor."""
    from concurrent.futures import ThreadPoolExecutor

    from requests.adapters import HTTPAdapter

    with requests.Session() as session:
        session.mount("http://", HTTPAdapter(pool_maxsize=workers))

        def one(sid: int) -> bytes:
            payload = {"diaSourceId": str(sid), "kind": "All", "output-format": "array"}
            return session.post(url + "/api/v1/cutouts", json=payload).content

        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(one, source_ids):
                pass


def tree_bytes(path: Path) -> tuple[int, int, int]:
    """Return ``(apparent bytes, allocated bytes, files)`` of a folder, like ``du -b`` / ``du``."""
    apparent = allocated = files = 0
    for root, _, names in os.walk(path):
        for name in names:
            st = os.stat(os.path.join(root, name))
            apparent += st.st_size
            allocated += st.st_blocks * 512
            files += 1
    return apparent, allocated, files
