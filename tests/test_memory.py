"""A build holds its stamps and a few chunks of its cube, never the whole cube.

Behaviour only (no threshold on a process's memory: ``benchmarks/memory.py`` measures the
peak): a cube assembled lazily equals the one assembled whole; writing a lazy cube larger
than the in-memory limit allocates a fraction of the cube (tracemalloc's count of the
allocations, not a timing); what a build writes equals what plain xarray reads back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from finkcube import FinkClient, build_store
from finkcube.cube import assemble_cube
from finkcube.cube.quality import with_quality
from finkcube.store import init_store, write_cube
from finkcube.store.put import STREAM_BYTES

CREATED = {"created": "2026-01-01T00:00:00+00:00"}


@pytest.fixture
def client(emulator: Any) -> Iterator[FinkClient]:
    with FinkClient(emulator.url, workers=4, timeout=10, retries=2, backoff=0.01, env={}) as c:
        yield c


def _fetched(client: FinkClient, emulator: Any, name: str) -> tuple[list[Any], dict[int, Any]]:
    oid = emulator.catalog.named(name)
    records = emulator.catalog.records(oid)
    return records, {r["r:diaSourceId"]: client.cutout_fits(r["r:diaSourceId"]) for r in records}


@pytest.mark.parametrize("name", ["mixed_sizes", "with_mask", "small", "nan_edges"])
def test_a_lazy_cube_equals_the_cube_assembled_whole(
    client: FinkClient, emulator: Any, name: str
) -> None:
    records, cutouts = _fetched(client, emulator, name)
    oid = emulator.catalog.named(name)
    whole = assemble_cube(oid, records, cutouts, planes="all", attrs=CREATED)
    lazy = assemble_cube(oid, records, cutouts, planes="all", attrs=CREATED, lazy=True)
    assert lazy.cutout.chunks is not None
    assert lazy.psf.chunks is not None
    assert whole.cutout.chunks is None
    xr.testing.assert_identical(lazy.compute(), whole)
    # The quality coordinates come from the stamps, as with_quality reads them off the canvas.
    xr.testing.assert_identical(with_quality(whole), whole)


def test_a_lazy_cube_leaves_the_callers_stamps_alone(client: FinkClient, emulator: Any) -> None:
    records, cutouts = _fetched(client, emulator, "small")
    oid = emulator.catalog.named("small")
    before = dict(cutouts)
    cube = assemble_cube(oid, records, cutouts, planes="all", lazy=True)
    assert cube.sizes["time"] == len(before)
    assert cutouts == before


def test_a_large_lazy_cube_is_written_a_chunk_at_a_time(
    client: FinkClient, emulator: Any, tmp_path: Path
) -> None:
    (oid,) = emulator.catalog.bulk_objects(1, sources=(120, 120))
    records = emulator.catalog.records(oid)
    cutouts = {r["r:diaSourceId"]: client.cutout_fits(r["r:diaSourceId"]) for r in records}
    cube = assemble_cube(oid, records, cutouts, planes="all", size=96, lazy=True)
    assert cube.nbytes > 2 * STREAM_BYTES  # written through a staged copy in the store
    store = tmp_path / "cubes.zarr"
    init_store(store)
    tracemalloc.start()
    try:
        write_cube(cube, store)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < cube.nbytes / 2, (peak, cube.nbytes)
    plain = xr.open_zarr(f"{store}/{oid}").load()
    whole = assemble_cube(oid, records, cutouts, planes="all", size=96)
    np.testing.assert_array_equal(plain.cutout.values, whole.cutout.values)
    np.testing.assert_array_equal(plain.psf.values, whole.psf.values)
    assert plain.wcs_header.values.tolist() == whole.wcs_header.values.tolist()
    assert plain.attrs["finkcube_complete"] is True
    assert not (store / ".finkcube-staging").exists()


def test_a_build_writes_what_plain_xarray_reads_back(
    client: FinkClient, emulator: Any, tmp_path: Path
) -> None:
    oid = emulator.catalog.named("mixed_sizes")
    store = tmp_path / "cubes.zarr"
    report = build_store([oid], store, client=client, planes="all")
    assert report.count("built") == 1
    plain = xr.open_zarr(f"{store}/{oid}").load()
    records, cutouts = _fetched(client, emulator, "mixed_sizes")
    expected = assemble_cube(oid, records, cutouts, planes="all")
    np.testing.assert_array_equal(plain.cutout.values, expected.cutout.values)
    np.testing.assert_array_equal(plain.psf.values, expected.psf.values)
    assert plain.wcs_header.values.tolist() == expected.wcs_header.values.tolist()


def test_memory_benchmark_produces_its_figures(tmp_path: Path) -> None:
    saved = tmp_path / "memory.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "memory.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--json", str(saved)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(saved.read_text())
    (run,) = figures["runs"]
    assert run["built"] == 1
    assert run["epochs"] == 200
    assert 0 < run["psf_mb"] < run["cube_mb"]
    assert figures["peak_above_imports_mb"] > 0
    assert "M1" in done.stdout
