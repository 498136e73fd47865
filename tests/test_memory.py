"""A build holds its stamps and its cube whole at no moment: stamps are released as placed.

Behaviour only (no memory threshold: ``benchmarks/memory.py`` measures the peak): a cube
assembled while releasing its stamps equals the one assembled without, the stamps of a
``planes="all"`` build are gone by the time its cube is written, and what a build writes
equals what plain xarray reads back.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import finkcube.pipeline.run as run
from finkcube import FinkClient, build_store
from finkcube.cube import assemble_cube
from finkcube.cutouts import SourceCutouts

CREATED = {"created": "2026-01-01T00:00:00+00:00"}


@pytest.fixture
def client(emulator: Any) -> Iterator[FinkClient]:
    with FinkClient(emulator.url, workers=4, timeout=10, retries=2, backoff=0.01, env={}) as c:
        yield c


def _fetched(client: FinkClient, emulator: Any, name: str) -> tuple[list[Any], dict[int, Any]]:
    oid = emulator.catalog.named(name)
    records = emulator.catalog.records(oid)
    return records, {r["r:diaSourceId"]: client.cutout_fits(r["r:diaSourceId"]) for r in records}


def _arrays(cutouts: dict[int, SourceCutouts]) -> list[weakref.ref[np.ndarray]]:
    refs: list[weakref.ref[np.ndarray]] = []
    for source in cutouts.values():
        for stamp in source.stamps:
            refs.extend(weakref.ref(plane) for plane in stamp.planes.values())
            if stamp.psf is not None:
                refs.append(weakref.ref(stamp.psf))
    return refs


@pytest.mark.parametrize("name", ["mixed_sizes", "with_mask", "small"])
def test_releasing_stamps_gives_the_same_cube(client: FinkClient, emulator: Any, name: str) -> None:
    records, cutouts = _fetched(client, emulator, name)
    oid = emulator.catalog.named(name)
    kept = assemble_cube(oid, records, dict(cutouts), planes="all", attrs=CREATED)
    refs = _arrays(cutouts)
    released = assemble_cube(oid, records, cutouts, planes="all", attrs=CREATED, release=True)
    assert cutouts == {}
    gc.collect()
    assert all(ref() is None for ref in refs)
    xr.testing.assert_identical(released, kept)


def test_without_release_the_callers_stamps_are_left_alone(
    client: FinkClient, emulator: Any
) -> None:
    records, cutouts = _fetched(client, emulator, "small")
    oid = emulator.catalog.named("small")
    before = dict(cutouts)
    cube = assemble_cube(oid, records, cutouts, planes="all")
    assert cube.sizes["time"] == len(before)
    assert cutouts == before


def test_a_build_releases_its_stamps_before_writing_its_cube(
    client: FinkClient, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources: list[list[weakref.ref[np.ndarray]]] = []
    fetch = client.cutout_fits

    def traced(source_id: int | str) -> SourceCutouts:
        got = fetch(source_id)
        sources.append(_arrays({0: got}))
        return got

    monkeypatch.setattr(client, "cutout_fits", traced)
    alive_at_write: list[int] = []
    write = run.write_cube

    def checked(cube: xr.Dataset, store: Any) -> None:
        gc.collect()
        alive_at_write.append(sum(any(ref() is not None for ref in refs) for refs in sources))
        write(cube, store)

    monkeypatch.setattr(run, "write_cube", checked)
    oid = emulator.catalog.named("mixed_sizes")
    store = tmp_path / "cubes.zarr"
    report = build_store([oid], store, client=client, planes="all")
    assert report.count("built") == 1
    assert len(sources) > 2
    # At most the last source fetched is still alive (the client's pool yields it and
    # keeps it until asked for the next): not the object's stamps.
    assert alive_at_write in ([0], [1])
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
