"""Bulk ingest of alert files (``finkcube.ingest``): exact pixels, idempotence, merges, scale.

Oracles: astropy.io.fits on the packets' own bytes (read with fastavro), plain xarray on the
stores (``xr.open_zarr(store, group=ID, consolidated=False)``).
"""

from __future__ import annotations

import io
import json
import logging
import random
from pathlib import Path
from typing import Any

import fastavro
import fsspec
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import finkcube
from finkcube import build_store, ingest, list_objects
from finkcube.emulator import Emulator
from finkcube.emulator.alertfiles import alert_packets, write_alert_file, write_alerts
from finkcube.emulator.alerts import sample_alerts_path
from finkcube.errors import DecodeError, InputError

KINDS = ("Science", "Template", "Difference")
#: Attributes that say when a cube was written, not what it holds.
TIMES = ("created", "updated")
#: The group attribute holding a cube's catalog row.
SUMMARY = "finkcube_summary"


def cubes(store: Path) -> dict[int, xr.Dataset]:
    """Every cube of a store, read with plain xarray, without its write times."""
    out = {}
    for oid in list_objects(store):
        ds = xr.open_zarr(store, group=str(oid), consolidated=False).load()
        ds.attrs = {k: v for k, v in ds.attrs.items() if k not in TIMES}
        summary = ds.attrs.get(SUMMARY)  # the catalog row: its creation time too
        if isinstance(summary, dict):
            ds.attrs[SUMMARY] = {k: v for k, v in summary.items() if k not in TIMES}
        out[oid] = ds
    return out


def assert_same_stores(a: Path, b: Path) -> None:
    first, second = cubes(a), cubes(b)
    assert sorted(first) == sorted(second)
    assert first
    for oid, cube in first.items():
        xr.testing.assert_identical(cube, second[oid])


@pytest.fixture(scope="module")
def alerts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Generated Avro alert files: 12 objects over 6 files, null cutouts, solar-system alerts."""
    out = tmp_path_factory.mktemp("alerts")
    return write_alerts(out, objects=12, sources=(2, 4), per_file=9, null_every=7, seed=3)


@pytest.fixture(scope="module")
def null_alerts(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], int, int]:
    """Alert files with null cutouts, an object ``early`` whose alerts of the first two files
    all lack a cutout (stamps come later), and an object ``never`` with no stamp at all."""
    source = write_alerts(
        tmp_path_factory.mktemp("gen"), objects=8, sources=(3, 5), per_file=100, null_every=7,
        seed=3,
    )  # fmt: skip
    packets: list[dict[str, Any]] = []
    for path in source:
        with path.open("rb") as stream:
            packets.extend(fastavro.reader(stream))  # type: ignore[arg-type]
    per_file = 6
    owner = [p["diaSource"]["diaObjectId"] for p in packets]
    in_first = [o for o in owner[: 2 * per_file] if o]
    early = max(in_first, key=lambda o: owner[2 * per_file :].count(o))
    never = next(o for o in owner[2 * per_file :] if o and o != early)
    for i, packet in enumerate(packets):
        if (owner[i] == early and i < 2 * per_file) or owner[i] == never:
            packet["cutout" + KINDS[i % 3]] = None
    assert owner[2 * per_file :].count(early)  # stamps after the first two files
    out = tmp_path_factory.mktemp("nulls")
    files = [
        write_alert_file(out / f"alerts-{n:02d}.avro", packets[start : start + per_file])
        for n, start in enumerate(range(0, len(packets), per_file))
    ]
    return files, early, never


def test_sample_equals_its_fits_cutouts(tmp_path: Path) -> None:
    report = ingest([sample_alerts_path()], tmp_path / "s.zarr")
    assert (report.count("built"), report.solar_system, report.alerts) == (3, 2, 5)
    with sample_alerts_path().open("rb") as stream:
        packets = [p for p in fastavro.reader(stream) if p["diaSource"]["diaObjectId"]]
    assert sorted(list_objects(tmp_path / "s.zarr")) == sorted(
        p["diaSource"]["diaObjectId"] for p in packets
    )
    for packet in packets:
        cube = xr.open_zarr(
            tmp_path / "s.zarr", group=str(packet["diaSource"]["diaObjectId"]), consolidated=False
        )
        assert cube.attrs["planes"] == "all"
        assert int(cube.diaSourceId[0]) == packet["diaSource"]["diaSourceId"]
        assert float(cube.time[0]) == packet["diaSource"]["midpointMjdTai"]
        for k, kind in enumerate(KINDS):
            with fits.open(io.BytesIO(packet["cutout" + kind])) as hdul:
                side = hdul[0].data.shape[0]
                assert int(cube.side[0]) == side == cube.sizes["x"]
                pixels = cube.cutout.isel(time=0, kind=k).values
                np.testing.assert_array_equal(pixels[..., 0], hdul[0].data.astype(np.float32))
                np.testing.assert_array_equal(
                    pixels[..., 1], hdul["UNCERT"].data.astype(np.float32)
                )
                psf = hdul["PSFIMAGE"].data
                n, full = psf.shape[0], cube.sizes["psf_x"]
                assert int(cube.psf_side[0, k]) == n
                a = (full - n) // 2  # centred in the largest PSF, NaN-padded
                stored = cube.psf.isel(time=0, kind=k).values
                np.testing.assert_array_equal(stored[a : a + n, a : a + n], psf)
                assert str(cube.wcs_header.values[0, k]) == hdul[0].header.tostring()


def test_avro_and_parquet_give_equal_stores(tmp_path: Path) -> None:
    avro = write_alerts(tmp_path / "a", objects=6, per_file=8, seed=5)
    write_alerts(tmp_path / "p", objects=6, per_file=8, seed=5, file_format="parquet")
    ingest(avro, tmp_path / "a.zarr")
    ingest([str(tmp_path / "p" / "*.parquet")], tmp_path / "p.zarr")
    assert_same_stores(tmp_path / "a.zarr", tmp_path / "p.zarr")


def test_alert_files_at_an_fsspec_url_give_the_local_store(tmp_path: Path) -> None:
    local = write_alerts(tmp_path / "a", objects=4, per_file=6, seed=6)
    remote = fsspec.filesystem("memory")
    for path in local:  # a folder of another file system, named by URL, folder and glob
        remote.pipe_file(f"/ingest-url/night/{path.name}", path.read_bytes())
    try:
        ingest(local, tmp_path / "local.zarr")
        report = ingest(["memory://ingest-url/night"], tmp_path / "folder.zarr")
        ingest(["memory://ingest-url/night/*.avro"], tmp_path / "glob.zarr")
    finally:
        remote.rm("/ingest-url", recursive=True)
    assert report.count("built") == 4
    assert_same_stores(tmp_path / "local.zarr", tmp_path / "folder.zarr")
    assert_same_stores(tmp_path / "local.zarr", tmp_path / "glob.zarr")


def _snapshot(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in store.rglob("*") if p.is_file()}


def test_twice_ingested_equals_once(alerts: list[Path], tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    first = ingest([alerts[0].parent], store)
    assert first.count("built") == 12
    assert first.left_out
    assert first.solar_system == 3
    assert first.ingested + first.left_out + first.solar_system == first.alerts
    before = _snapshot(store)
    again = ingest([alerts[0].parent], store)
    assert again.count("unchanged") == 12
    assert again.ingested == 0
    assert _snapshot(store) == before  # not a byte written


def _left_out_record(store: Path) -> Any:
    """The store's record of the left-out ids of objects without a cube (README layout)."""
    root = json.loads((store / "zarr.json").read_text())  # plain JSON: the root group's document
    return root["attributes"].get("finkcube_left_out")


def test_file_order_and_splits_give_the_same_store(
    null_alerts: tuple[list[Path], int, int], tmp_path: Path
) -> None:
    alerts, early, never = null_alerts
    once = ingest(alerts, tmp_path / "once.zarr", batch=7)
    assert early in list_objects(tmp_path / "once.zarr")
    assert [r.status for r in once.results if r.object_id == never] == ["unchanged"]
    record = _left_out_record(tmp_path / "once.zarr")
    assert list(record) == [str(never)]
    # The first two files alone: ``early`` has no stamp in that run, and no cube yet.
    splits = [alerts[:2], alerts[2:4], alerts[4:]], [alerts[4:], alerts[2:4], alerts[:2]]
    shuffled = list(alerts)
    random.Random(1).shuffle(shuffled)
    for n, parts in enumerate((*splits, [shuffled[:3], shuffled[3:5], shuffled[5:]])):
        store = tmp_path / f"split-{n}.zarr"
        for part in parts:
            ingest(part, store, batch=1000)
        assert_same_stores(tmp_path / "once.zarr", store)
        assert _left_out_record(store) == record
    # Ingesting files already held again, in another order, changes no cube either.
    ingest(list(reversed(alerts)), tmp_path / "split-0.zarr")
    assert_same_stores(tmp_path / "once.zarr", tmp_path / "split-0.zarr")
    assert _left_out_record(tmp_path / "split-0.zarr") == record


def test_rest_build_then_ingest_merges_into_one_cube(tmp_path: Path) -> None:
    with Emulator(seed=4) as emu:
        oid = emu.catalog.named("small")
        store = tmp_path / "s.zarr"
        build_store([oid], store, url=emu.url, planes="all")
        built = xr.open_zarr(store, group=str(oid), consolidated=False).load()
        new = emu.catalog.add_sources(oid, 2, side=64)  # larger stamps: the canvas grows
        path = write_alert_file(tmp_path / "night.avro", alert_packets(emu.catalog, [oid]))
        report = ingest([path], store)
        fits_bytes = {s: emu.catalog.fits(s, "Science") for s in new}
    assert [(r.object_id, r.status, r.added) for r in report.results] == [(oid, "updated", 2)]
    assert report.known == built.sizes["time"]
    cube = xr.open_zarr(store, group=str(oid), consolidated=False).load()
    assert cube.sizes["time"] == built.sizes["time"] + 2
    assert cube.sizes["x"] == 64
    assert np.all(np.diff(cube.time.values) >= 0)
    assert cube.attrs["api_url"] == built.attrs["api_url"]
    old = cube.sel(time=built.time)
    np.testing.assert_array_equal(old.diaSourceId, built.diaSourceId)
    np.testing.assert_array_equal(old.psfFlux, built.psfFlux)  # REST epochs not rewritten
    for t in range(built.sizes["time"]):
        side = int(built.side[t])
        a, b = (64 - side) // 2, (built.sizes["x"] - side) // 2
        np.testing.assert_array_equal(
            old.cutout.values[t, :, a : a + side, a : a + side],
            built.cutout.values[t, :, b : b + side, b : b + side],
        )
    for sid, raw in fits_bytes.items():
        (i,) = np.flatnonzero(cube.diaSourceId.values == sid)
        with fits.open(io.BytesIO(raw)) as hdul:
            np.testing.assert_array_equal(
                cube.cutout.values[i, 0, :, :, 0], hdul[0].data.astype(np.float32)
            )


def test_distributed_ingest_equals_the_local_one(alerts: list[Path], tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    ingest(alerts, tmp_path / "local.zarr", batch=10)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        report = ingest(alerts, tmp_path / "dask.zarr", batch=10, scheduler=client)
    assert report.count("built") == 12
    assert_same_stores(tmp_path / "local.zarr", tmp_path / "dask.zarr")


def test_a_null_cutout_is_a_left_out_source(tmp_path: Path) -> None:
    with Emulator(seed=2) as emu:
        oid = emu.catalog.named("small")
        packets: list[dict[str, Any]] = alert_packets(emu.catalog, [oid])
    packets[1]["cutoutDifference"] = None
    left_out = packets[1]["diaSourceId"]
    report = ingest([write_alert_file(tmp_path / "a.avro", packets)], tmp_path / "s.zarr")
    (result,) = report.results
    assert (result.status, result.missing, report.left_out) == ("built", (left_out,), 1)
    cube = finkcube.open_cube(tmp_path / "s.zarr", oid)
    assert cube.attrs["missing_diaSourceIds"] == [str(left_out)]
    # Its reason; never asked of the service, so the next update asks for it.
    assert (cube.attrs["missing_reasons"], cube.attrs["missing_tried"]) == (["no_cutout"], [""])
    assert left_out not in cube.diaSourceId.values


def test_null_cutouts_are_counted_and_named_at_info_not_warned_one_by_one(
    alerts: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A night holds millions of alerts: the report counts null cutouts, -v (info) names them."""
    nulls = []
    for path in alerts:  # the oracle: fastavro, packets of a real object with a null cutout
        with path.open("rb") as stream:
            nulls += [
                p["diaSourceId"]
                for p in fastavro.reader(stream)
                if p["diaSource"]["diaObjectId"] and any(p["cutout" + k] is None for k in KINDS)
            ]
    assert nulls
    with caplog.at_level(logging.INFO, logger="finkcube"):
        report = ingest(alerts, tmp_path / "s.zarr")
    assert report.left_out == len(nulls)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    named = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert all(f"diaSourceId {i}: " in named for i in nulls)


def test_paths_that_match_nothing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="matches no alert file"):
        ingest([tmp_path / "none-*.avro"], tmp_path / "s.zarr")
    (tmp_path / "bad.avro").write_bytes(b"not an avro file")
    with pytest.raises(DecodeError, match=r"bad\.avro"):
        ingest([tmp_path / "bad.avro", sample_alerts_path()], tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists()  # found by the scan, before any write
