"""Scale (issue 6): many objects, incremental updates, dask.distributed, S3 stores.

Every test talks to an emulator of this module (the catalog is mutated: new objects, new
sources), over real sockets. The S3 tests use moto's server on loopback, the distributed
tests a ``LocalCluster`` of two worker processes.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

import finkcube.pipeline.fetch
from finkcube import FinkClient, build_cube, build_store, open_cube, open_store, update_store
from finkcube.cli import main
from finkcube.emulator import Emulator
from finkcube.errors import InputError
from finkcube.names import CUTOUTS_PATH, SOURCES_PATH
from finkcube.pipeline.executors import TASK_PREFIX, UPDATE_PREFIX
from finkcube.store import list_objects

#: Attributes that differ between two builds of the same data.
VOLATILE = ("created", "updated", "api_url")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """An emulator of this module's own: its tests add objects and sources."""
    with Emulator(latency_ms=2.0, faults=0.0, seed=6) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[FinkClient]:
    with FinkClient(emu.url, workers=4, timeout=10, retries=2, backoff=0.01, env={}) as c:
        yield c


def comparable(ds: xr.Dataset) -> xr.Dataset:
    """The cube in memory, without the attributes that say when and from where it was built."""
    out = ds.compute()  # a new object: the caller's keeps its attributes
    out.attrs = {k: v for k, v in ds.attrs.items() if k not in VOLATILE}
    return out


def assert_same_cube(got: xr.Dataset, expected: xr.Dataset) -> None:
    """Equal value for value, coordinates and attributes included (volatile ones aside)."""
    got, expected = comparable(got), comparable(expected)
    xr.testing.assert_equal(got, expected)
    assert got.attrs == expected.attrs
    for name in expected.variables:  # strings: object in memory, StringDType once stored
        kinds = {v[name].dtype.kind.replace("T", "O") for v in (got, expected)}
        assert len(kinds) == 1, name


def assert_same_store(store: str, reference: str, ids: list[int], **options: Any) -> None:
    """Two stores hold the same objects with the same cubes."""
    assert list_objects(store, storage_options=options or None) == sorted(ids)
    assert list_objects(reference) == sorted(ids)
    for oid in ids:
        assert_same_cube(open_cube(store, oid, storage_options=options or None),
                         open_cube(reference, oid))  # fmt: skip


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of a local store: its bytes and modification time."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------- the emulator


def test_add_sources_can_choose_the_side(emu: Emulator) -> None:
    catalog = emu.catalog
    (oid,) = catalog.bulk_objects(1, sources=(3, 3))
    (big,) = catalog.add_sources(oid, 1, side=64)
    assert catalog.array(big, "Science").shape == (64, 64)
    drawn = catalog.add_sources(oid, 2)
    assert all(30 <= catalog.array(s, "Template").shape[0] <= 40 for s in drawn)
    with pytest.raises(InputError, match="invalid side"):
        catalog.add_sources(oid, 1, side=103)


# --------------------------------------------------------------------------- many objects


def test_many_objects_from_a_file_equal_one_by_one(
    emu: Emulator, client: FinkClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = emu.catalog.bulk_objects(12, sources=(3, 6))
    listing = tmp_path / "ids.txt"
    listing.write_text("# tonight's objects\n" + "\n".join(map(str, ids)) + "\n\n")
    batch, workers = 5, 3
    monkeypatch.setattr(finkcube.pipeline.fetch, "SOURCES_BATCH", batch)
    store = tmp_path / "cubes.zarr"
    emu.reset_stats()
    status = main(["build", "--objects-file", str(listing), "--out", str(store),
                   "--url", emu.url, "--workers", str(workers)])  # fmt: skip
    assert status == 0
    sources = sum(len(emu.catalog.records(oid)) for oid in ids)
    assert emu.requests[SOURCES_PATH] == math.ceil(len(ids) / batch)
    assert emu.requests[CUTOUTS_PATH] == sources  # one request per source, none twice
    assert 1 <= emu.max_in_flight <= workers
    assert list_objects(store) == sorted(ids)
    for oid in ids:
        assert_same_cube(open_cube(store, oid), build_cube(oid, client=client))


# --------------------------------------------------------------------------- update


def test_update_adds_only_new_sources_and_equals_a_fresh_build(
    emu: Emulator, client: FinkClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = emu.catalog
    grows, quiet = catalog.bulk_objects(2, sources=(5, 8))
    gappy = catalog.named("missing_cutout")  # one source without cutouts: never refetched
    ids = [grows, quiet, gappy]
    store = tmp_path / "cubes.zarr"
    assert build_store(ids, store, client=client).count("built") == 3
    canvas = open_cube(store, grows).sizes["x"]
    assert len(open_cube(store, gappy).attrs["missing_diaSourceIds"]) == 1
    before = {oid: comparable(open_cube(store, oid)) for oid in (quiet, gappy)}

    newer = catalog.add_sources(grows, 2)
    (late,) = catalog.add_sources(grows, 1, older=True)
    (wide,) = catalog.add_sources(grows, 1, side=canvas + 21)
    emu.reset_stats()
    assert main(["update", str(store)]) == 0  # the URL each cube was built from
    assert "1 updated" in capsys.readouterr().out
    assert emu.requests[CUTOUTS_PATH] == 4  # the new sources only
    assert emu.requests[SOURCES_PATH] == 1  # the three objects in one batch

    updated = open_cube(store, grows)
    assert_same_cube(updated, build_cube(grows, client=client))
    times = updated.time.values
    assert (np.diff(times) > 0).all()
    ids_in_order = updated.diaSourceId.values.tolist()
    assert ids_in_order[-3:] == [*newer, wide]
    assert ids_in_order.index(late) < len(ids_in_order) - 3  # placed in order, not appended
    assert updated.sizes["x"] == canvas + 21  # re-padded to the new stamp
    assert updated.side.values[-1] == canvas + 21
    assert "updated" in updated.attrs
    for oid, cube in before.items():
        assert_same_cube(open_cube(store, oid), cube)
        assert "updated" not in open_cube(store, oid).attrs

    # Nothing new: no cutout request, not one byte (or time stamp) of the store changes.
    files = snapshot(store)
    emu.reset_stats()
    assert main(["update", str(store), "--url", emu.url]) == 0
    assert "3 unchanged" in capsys.readouterr().out
    assert emu.requests[CUTOUTS_PATH] == 0
    assert snapshot(store) == files


def test_update_of_chosen_objects_and_unknown_ones(
    emu: Emulator, client: FinkClient, tmp_path: Path
) -> None:
    first, second = emu.catalog.bulk_objects(2, sources=(3, 4))
    store = tmp_path / "cubes.zarr"
    build_store([first, second], store, client=client)
    emu.catalog.add_sources(first, 1)
    emu.catalog.add_sources(second, 1)
    report = update_store(store, client=client, object_ids=[second])
    assert [(r.object_id, r.status, r.added) for r in report.results] == [(second, "updated", 1)]
    assert_same_cube(open_cube(store, second), build_cube(second, client=client))
    assert open_cube(store, first).sizes["time"] == len(emu.catalog.records(first)) - 1
    with pytest.raises(InputError, match="build it first"):
        update_store(store, client=client, object_ids=[emu.catalog.named("single")])


# --------------------------------------------------------------------------- distributed


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A client of a LocalCluster of 2 worker processes (2 threads each), no dashboard."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as dask_client,
    ):
        yield dask_client


def ours(stream: Any) -> list[str]:
    """The keys of finkcube's tasks in a task stream (comparisons in tests compute there too)."""
    return sorted(str(t["key"]) for t in stream.data if str(t["key"]).startswith("finkcube-"))


@pytest.mark.slow
def test_distributed_build_equals_the_local_one(
    emu: Emulator, client: FinkClient, dask_client: Any, tmp_path: Path
) -> None:
    from distributed import get_task_stream

    ids = emu.catalog.bulk_objects(6, sources=(3, 6))
    local, remote = tmp_path / "local.zarr", tmp_path / "cluster.zarr"
    build_store(ids, local, client=client)
    with get_task_stream(client=dask_client) as stream:
        report = build_store(ids, str(remote), url=emu.url, workers=2, scheduler=dask_client)
    assert report.count("built") == len(ids)
    assert_same_store(str(remote), str(local), ids)
    # One task per object, run by the cluster's worker processes.
    assert ours(stream) == sorted(f"{TASK_PREFIX}-{oid}" for oid in ids)
    assert {task["worker"] for task in stream.data} <= set(dask_client.scheduler_info()["workers"])
    # A re-run resumes, as a local build does.
    again = build_store(ids, str(remote), url=emu.url, scheduler=dask_client)
    assert again.count("skipped") == len(ids)

    # Updates too run as one task per object with new sources, and equal a local update.
    emu.catalog.add_sources(ids[0], 2, side=70)
    emu.catalog.add_sources(ids[1], 1, older=True)
    update_store(local, client=client)
    with get_task_stream(client=dask_client) as stream:
        update = update_store(str(remote), scheduler=dask_client)
    assert sorted((r.object_id, r.status) for r in update.results if r.status != "unchanged") == (
        sorted([(ids[0], "updated"), (ids[1], "updated")])
    )
    assert ours(stream) == sorted(f"{UPDATE_PREFIX}-{oid}" for oid in ids[:2])
    assert_same_store(str(remote), str(local), ids)
    assert_same_cube(open_cube(remote, ids[0]), build_cube(ids[0], client=client))
    files = snapshot(remote)
    with get_task_stream(client=dask_client) as stream:
        assert update_store(str(remote), scheduler=dask_client).count("unchanged") == len(ids)
    assert ours(stream) == []
    assert snapshot(remote) == files


def test_distributed_build_from_the_command_line(
    emu: Emulator, dask_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = emu.catalog.bulk_objects(3, sources=(3, 5))
    local = tmp_path / "local.zarr"
    assert main(["build", *map(str, ids), "--out", str(local), "--url", emu.url]) == 0
    # A relative store path means this directory, not the workers' (they started elsewhere).
    monkeypatch.chdir(tmp_path)
    address = dask_client.scheduler.address
    status = main(["build", *map(str, ids), "--out", "cluster.zarr", "--url", emu.url,
                   "--scheduler", address])  # fmt: skip
    assert status == 0
    assert_same_store(str(tmp_path / "cluster.zarr"), str(local), ids)
    emu.catalog.add_sources(ids[2], 1)
    assert main(["update", str(local)]) == 0
    assert main(["update", "cluster.zarr", "--scheduler", address]) == 0
    assert_same_store(str(tmp_path / "cluster.zarr"), str(local), ids)


def test_a_home_relative_store_is_the_same_store_on_the_workers(
    emu: Emulator, dask_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``~/cubes.zarr`` is the caller's home folder, not a folder named ``~`` on a worker."""
    (oid,) = emu.catalog.bulk_objects(1, sources=(2, 2))
    monkeypatch.setenv("HOME", str(tmp_path))
    report = build_store([oid], "~/cubes.zarr", url=emu.url, scheduler=dask_client)
    assert report.count("built") == 1
    assert list_objects(tmp_path / "cubes.zarr") == [oid]
    assert_same_cube(open_cube(tmp_path / "cubes.zarr", oid), build_cube(oid, url=emu.url))


def dask_defaults() -> tuple[Any, Any]:
    """dask's configured scheduler and dask.distributed's default client (None when none)."""
    distributed = pytest.importorskip("distributed")
    try:
        client = distributed.default_client()
    except ValueError:
        client = None
    return dask.config.get("scheduler", None), client


def test_unreachable_scheduler_is_a_usage_error(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("distributed")
    (oid,) = emu.catalog.bulk_objects(1, sources=(1, 1))
    emu.reset_stats()
    before = dask_defaults()
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        status = main(["build", str(oid), "--out", str(tmp_path / "c.zarr"), "--url", emu.url,
                       "--scheduler", "tcp://127.0.0.1:9"])  # fmt: skip
    assert status == 2
    assert "dask scheduler" in capsys.readouterr().err
    assert emu.requests[SOURCES_PATH] == 0
    # The failed connection leaves this process's dask as it was: no half-made client
    # becomes the default, and later computations still run here.
    assert dask_defaults() == before
    assert int(da.ones(4, chunks=2).sum().compute()) == 4


@pytest.mark.parametrize("address", ["localhost", "foo://127.0.0.1:9"])
def test_a_scheduler_that_is_not_an_address_is_a_usage_error(
    address: str, emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("distributed")
    (oid,) = emu.catalog.bulk_objects(1, sources=(1, 1))
    emu.reset_stats()
    before = dask_defaults()
    status = main(["build", str(oid), "--out", str(tmp_path / "c.zarr"), "--url", emu.url,
                   "--scheduler", address])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith(f"finkcube: error: {address!r} is not a dask scheduler address (")
    assert err.count("\n") == 1
    assert emu.requests[SOURCES_PATH] == 0
    assert not (tmp_path / "c.zarr").exists()
    assert dask_defaults() == before
    assert int(da.ones(4, chunks=2).sum().compute()) == 4


# --------------------------------------------------------------------------- S3


def s3_objects(url: str, options: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """Every object under an S3 prefix: its size, ETag and modification time."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, **options)
    fs.invalidate_cache()
    found = fs.find(root, detail=True)
    return {k: (v["size"], v.get("ETag"), v.get("LastModified")) for k, v in found.items()}


@pytest.mark.slow
def test_s3_build_reopen_and_update_equal_local(
    emu: Emulator, client: FinkClient, s3_options: dict[str, Any], tmp_path: Path
) -> None:
    ids = emu.catalog.bulk_objects(3, sources=(2, 4))
    local, url = str(tmp_path / "cubes.zarr"), "s3://cubes/api/cubes.zarr"
    build_store(ids, local, client=client)
    report = build_store(ids, url, client=client, storage_options=s3_options)
    assert report.count("built") == len(ids)
    assert_same_store(url, local, ids, **s3_options)
    # Reopened lazily from S3: nothing but metadata and indexes is read until asked.
    cube = open_cube(url, ids[0], storage_options=s3_options)
    assert cube.cutout.chunks is not None
    view = open_store(url, storage_options=s3_options)
    assert list(view) == sorted(ids)
    assert_same_cube(view[ids[2]], open_cube(local, ids[2]))

    emu.catalog.add_sources(ids[0], 2)
    emu.catalog.add_sources(ids[1], 1, older=True, side=70)
    for store, options in ((local, None), (url, s3_options)):
        update = update_store(store, client=client, storage_options=options)
        assert sorted((r.object_id, r.status) for r in update.results) == sorted(
            [(ids[0], "updated"), (ids[1], "updated"), (ids[2], "unchanged")]
        )
    assert_same_store(url, local, ids, **s3_options)
    assert_same_cube(
        open_cube(url, ids[1], storage_options=s3_options), build_cube(ids[1], client=client)
    )
    assert open_cube(url, ids[1], storage_options=s3_options).sizes["x"] == 70

    # Nothing new: no cutout request and no object of the bucket rewritten.
    before = s3_objects(url, s3_options)
    emu.reset_stats()
    update_store(url, client=client, storage_options=s3_options)
    assert emu.requests[CUTOUTS_PATH] == 0
    assert s3_objects(url, s3_options) == before


@pytest.mark.slow
def test_s3_from_the_command_line_with_standard_settings(
    emu: Emulator, client: FinkClient, s3_options: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import fsspec.config

    ids = emu.catalog.bulk_objects(2, sources=(3, 4))
    local, url = str(tmp_path / "cubes.zarr"), "s3://cubes/cli/cubes.zarr"
    build_store(ids, local, client=client)
    # What a user does: no finkcube option, the settings every S3 tool reads: AWS_*
    # variables (or ~/.aws), or fsspec's own (FSSPEC_S3, ~/.config/fsspec/conf.json).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FSSPEC_"))}
    env |= {
        "AWS_ACCESS_KEY_ID": s3_options["key"],
        "AWS_SECRET_ACCESS_KEY": s3_options["secret"],
        "AWS_ENDPOINT_URL": s3_options["client_kwargs"]["endpoint_url"],
        "AWS_DEFAULT_REGION": s3_options["client_kwargs"]["region_name"],
    }
    built = subprocess.run(
        [sys.executable, "-m", "finkcube", "build", *map(str, ids), "--out", url,
         "--url", emu.url],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert_same_store(url, local, ids, **s3_options)
    # FSSPEC_S3='{"key": ..., "client_kwargs": {"endpoint_url": ...}}' in this process
    # (fsspec reads the variable once, at import).
    settings: dict[str, dict[str, Any]] = {}
    fsspec.config.set_conf_env(settings, {"FSSPEC_S3": json.dumps(s3_options)})
    monkeypatch.setitem(fsspec.config.conf, "s3", settings["s3"])
    emu.catalog.add_sources(ids[1], 2)
    update_store(local, client=client)
    assert main(["update", url]) == 0
    assert "1 updated" in capsys.readouterr().out
    assert_same_store(url, local, ids, **s3_options)
    assert main(["info", url]) == 0
    assert str(ids[1]) in capsys.readouterr().out
