"""Completeness you can trust: left-out sources keep their reason and are asked again.

Over real sockets with the emulator: each reason recorded (an empty 200, a 500, an HTML page
in a 200, a garbled reply), an HTML page asked once more only, a hole filled in place by
``update`` once the service serves it (and the retry-age option), summaries and ``finkcube
info`` counting left-outs, the 10,000-row warning, pandas 2's ``"nan"`` cells, and a build
at 50 % faults with every plane that never aborts.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from finkcube import build_store, open_cube, update_store
from finkcube.cli import main
from finkcube.emulator import Emulator
from finkcube.errors import FinkcubeWarning
from finkcube.names import CUTOUTS_PATH
from finkcube.pipeline.fetch import list_sources
from finkcube.service.client import FinkClient

VOLATILE = ("created", "updated", "api_url", "missing_tried")


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as server:
        yield server


def _client(url: str, *, timeout: float = 5.0, workers: int = 8) -> FinkClient:
    """A client that gives up fast: no backoff, two retries."""
    return FinkClient(url, retries=2, backoff=0.0, timeout=timeout, workers=workers, env={})


def _left_out(store: Path, oid: int) -> dict[int, tuple[str, str]]:
    attrs = open_cube(store, oid).attrs
    ids = [int(s) for s in attrs["missing_diaSourceIds"]]
    return dict(zip(ids, zip(attrs["missing_reasons"], attrs["missing_tried"], strict=True),
                    strict=True))  # fmt: skip


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    a, b = a.compute(), b.compute()
    for cube in (a, b):
        for name in VOLATILE:
            cube.attrs.pop(name, None)
    xr.testing.assert_identical(a, b)


def test_each_reason_is_recorded_with_its_time(emu: Emulator, tmp_path: Path) -> None:
    catalog = emu.catalog
    oid = catalog.named("small")
    empty, failing, garbled = catalog.source_ids(oid)[:3]
    catalog.fail_cutouts(empty, "empty")
    catalog.fail_cutouts(failing, "500")
    catalog.fail_cutouts(garbled, "garbled")
    store = tmp_path / "s.zarr"
    with _client(emu.url) as client:
        report = build_store([oid], store, client=client)
    (result,) = report.results
    assert result.status == "built"
    assert dict(zip(result.missing, result.reasons, strict=True)) == {
        empty: "no_cutout",
        failing: "service_error",
        garbled: "decode_error",
    }
    gone = _left_out(store, oid)
    assert {s: r for s, (r, _) in gone.items()} == {
        empty: "no_cutout",
        failing: "service_error",
        garbled: "decode_error",
    }
    for _, tried in gone.values():
        assert dt.datetime.fromisoformat(tried.replace("Z", "+00:00")).tzinfo is not None
    assert "3 sources left out (1 decode_error, 1 no_cutout, 1 service_error)" in report.summary()
    assert "0 failed" in report.summary()


def test_an_html_page_in_a_200_is_asked_once_more_only(emu: Emulator, tmp_path: Path) -> None:
    catalog = emu.catalog
    oid = catalog.named("single")
    (sid,) = catalog.source_ids(oid)
    catalog.fail_cutouts(sid, "html")
    catalog.add_sources(oid, 1)
    emu.reset_stats()
    with _client(emu.url, workers=1) as client:
        report = build_store([oid], tmp_path / "s.zarr", client=client, planes="all")
    assert report.results[0].reasons == ("service_error",)
    # The other source: 3 FITS requests; the failing one: Science twice, then given up.
    assert emu.requests[CUTOUTS_PATH] == 3 + 2


def test_a_null_cutout_as_fits_is_a_service_error_not_five_retries(
    emu: Emulator, tmp_path: Path
) -> None:
    catalog = emu.catalog
    oid = catalog.named("missing_cutout")
    emu.reset_stats()
    with FinkClient(emu.url, backoff=0.0, env={}) as client:  # the default 5 retries
        report = build_store([oid], tmp_path / "s.zarr", client=client, planes="all")
    (result,) = report.results
    assert result.status == "built"
    assert result.reasons == ("service_error",)
    others = len(catalog.source_ids(oid)) - 1
    assert emu.requests[CUTOUTS_PATH] == 3 * others + 2


def test_update_fills_a_source_missing_then_served(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17: six HTML pages in a 200, then the server serves it: update fills it."""
    catalog = emu.catalog
    oid = catalog.named("small")
    hole = catalog.source_ids(oid)[1]
    catalog.fail_cutouts(hole, "html", times=6)
    store = tmp_path / "s.zarr"
    argv = ["build", str(oid), "--out", str(store), "--url", emu.url, "--planes", "all"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "1 source left out (1 service_error)" in out
    assert _left_out(store, oid)[hole][0] == "service_error"
    catalog.serve_cutouts(hole)  # the server serves it now

    emu.reset_stats()
    assert main(argv) == 0  # a re-run skips the complete cube: filling is update's job
    assert emu.requests[CUTOUTS_PATH] == 0
    capsys.readouterr()

    assert main(["update", str(store), "--retry-missing-after", "0"]) == 0
    out = capsys.readouterr().out
    assert "1 updated" in out
    assert "1 left-out source filled" in out
    assert "0 sources left out" in out
    assert emu.requests[CUTOUTS_PATH] == 3  # that source's three FITS files, nothing else
    cube = open_cube(store, oid)
    assert hole in cube.diaSourceId.values.tolist()
    assert cube.attrs["missing_diaSourceIds"] == []
    assert cube.attrs["missing_reasons"] == []
    assert cube.attrs["missing_tried"] == []
    with fits.open(io.BytesIO(catalog.fits(hole, "Template"))) as hdul:  # the oracle
        expected = hdul[0].data.astype(np.float32)
    side = expected.shape[0]
    got = cube.cutout.sel(time=cube.diaSourceId == hole, kind="Template", plane="data")
    values = got.values[0]
    pad = (cube.sizes["y"] - side) // 2
    np.testing.assert_array_equal(values[pad : pad + side, pad : pad + side], expected)
    with Emulator(catalog=catalog) as clean:
        build_store([oid], tmp_path / "fresh.zarr", url=clean.url, planes="all")
    _same(cube, open_cube(tmp_path / "fresh.zarr", oid))


def test_update_asks_again_only_past_the_retry_age(emu: Emulator, tmp_path: Path) -> None:
    catalog = emu.catalog
    oid = catalog.named("small")
    hole = catalog.source_ids(oid)[0]
    catalog.fail_cutouts(hole, "empty")
    store = tmp_path / "s.zarr"
    build_store([oid], store, url=emu.url)
    catalog.serve_cutouts(hole)
    emu.reset_stats()
    # Just tried: the default age (one hour) and None do not ask again; nothing is written.
    for age in (dt.timedelta(hours=1), None, 24.0):
        report = update_store(store, url=emu.url, retry_missing_after=age)
        assert [r.status for r in report.results] == ["unchanged"]
    assert emu.requests[CUTOUTS_PATH] == 0
    assert main(["update", str(store), "--no-retry-missing", "--url", emu.url]) == 0
    assert emu.requests[CUTOUTS_PATH] == 0
    report = update_store(store, url=emu.url, retry_missing_after=0)
    assert [(r.status, r.filled, r.missing) for r in report.results] == [("updated", 1, ())]
    assert emu.requests[CUTOUTS_PATH] == 1
    assert _left_out(store, oid) == {}


def test_a_source_still_missing_gets_a_new_reason_and_time(emu: Emulator, tmp_path: Path) -> None:
    catalog = emu.catalog
    oid = catalog.named("small")
    hole, other = catalog.source_ids(oid)[:2]
    catalog.fail_cutouts(hole, "empty")
    catalog.fail_cutouts(other, "empty")
    store = tmp_path / "s.zarr"
    with _client(emu.url) as client:
        build_store([oid], store, client=client)
        first = _left_out(store, oid)
        catalog.fail_cutouts(hole, "500")
        catalog.serve_cutouts(other)
        report = update_store(store, client=client, retry_missing_after=0)
    assert report.results[0].missing == (hole,)
    assert report.results[0].filled == 1
    now = _left_out(store, oid)
    assert list(now) == [hole]
    assert now[hole][0] == "service_error"
    assert now[hole][1] >= first[hole][1]  # ISO UTC strings sort as times


def test_info_shows_completeness_per_object_and_for_the_store(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = emu.catalog
    oid, whole = catalog.named("small"), catalog.named("single")
    hole = catalog.source_ids(oid)[2]
    catalog.fail_cutouts(hole, "empty")
    store = tmp_path / "s.zarr"
    build_store([oid, whole], store, url=emu.url)
    listed = len(catalog.source_ids(oid))
    capsys.readouterr()
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    line = next(t for t in out.splitlines() if t.strip().startswith(str(oid)))
    assert f"{listed - 1}/{listed}" in line
    assert f"completeness: {listed} of {listed + 1} listed sources kept" in out
    assert "1 left out (1 no_cutout)" in out
    assert main(["info", str(store), str(oid)]) == 0
    out = capsys.readouterr().out
    assert f"diaSourceId {hole}: no_cutout, last tried 20" in out
    assert main(["info", str(store), str(whole)]) == 0
    assert "completeness: 1 of 1 listed sources kept (100.0 %)" in capsys.readouterr().out


def test_an_object_at_the_10000_cap_warns_that_newer_sources_are_hidden(emu: Emulator) -> None:
    catalog = emu.catalog
    oid = catalog.add_object(10.0, -5.0, sources=1)
    catalog.add_sources(oid, 10_000)  # 10,001 sources: the service lists the oldest 10,000
    newest = catalog.source_ids(oid)[0]
    with FinkClient(emu.url, env={}) as client:
        with pytest.warns(FinkcubeWarning, match=rf"diaObjectId {oid}: .* newer ones"):
            listed = list_sources(client, [oid], None)[oid]
        assert len(listed) == 10_000
        assert newest not in {r["r:diaSourceId"] for r in listed}
        small = catalog.named("small")
        with pytest.warns(FinkcubeWarning) as seen:  # only the capped object warns
            both = list_sources(client, [oid, small], None)
        assert len(seen) == 1
        assert len(both[small]) == len(catalog.source_ids(small))


def test_pandas2_nan_text_is_null() -> None:
    columns = ["diaSourceId", "band", "f:xm_gaiadr3_DR3Name", "f:fink_broker_version", "isDipole"]
    with Emulator() as plain:
        oid = plain.catalog.named("real")
        expected = plain.catalog.records(oid)
        plain.catalog.pandas2 = True
        with FinkClient(plain.url, env={}) as client:
            records = client.source_records(oid, columns=columns)
            table = client.sources(oid, columns=columns)
    by_id = {r["r:diaSourceId"]: r for r in expected}
    nulls = 0
    for record in records:
        for name, value in record.items():
            assert value != "nan"
            assert value == by_id[record["r:diaSourceId"]].get(name)
            nulls += value is None
    assert nulls > 0  # the real object has null text cells: they were sent as "nan"
    name = table["xm_gaiadr3_DR3Name"]
    assert hasattr(name, "mask")
    assert name.mask.any()
    assert "nan" not in [str(v) for v in name.filled("")]


def test_nan_text_reaches_no_cube(emu: Emulator, tmp_path: Path) -> None:
    catalog = emu.catalog
    oid = catalog.named("real")
    columns = ["band", "f:fink_broker_version"]
    with Emulator(catalog=catalog) as clean:
        build_store([oid], tmp_path / "clean.zarr", url=clean.url, columns=columns)
    catalog.pandas2 = True
    build_store([oid], tmp_path / "p2.zarr", url=emu.url, columns=columns)
    _same(open_cube(tmp_path / "p2.zarr", oid), open_cube(tmp_path / "clean.zarr", oid))


def test_half_faulty_service_with_every_plane_never_aborts_the_build(tmp_path: Path) -> None:
    """Issue 17: at 50 % faults with planes="all", a source out of retries is left out."""
    with Emulator(faults=0.5, retry_after_s=0, stall_s=1.0, seed=11) as emu:
        catalog = emu.catalog
        ids = [catalog.named("small"), catalog.named("mixed_sizes")]
        store = tmp_path / "s.zarr"
        with _client(emu.url, timeout=0.5) as client:
            report = build_store(ids, store, client=client, planes="all")
        assert report.count("failed") == 0
        assert report.count("built") == 2
        assert report.left_out > 0  # three faults in a row beat two retries somewhere
        assert set(r for o in report.results for r in o.reasons) == {"service_error"}
        for oid in ids:  # every source is in its cube or listed as left out, none lost
            cube = open_cube(store, oid)
            held = set(cube.diaSourceId.values.tolist()) | set(_left_out(store, oid))
            assert held == set(catalog.source_ids(oid))
        with Emulator(catalog=catalog) as clean:
            build_store(ids, tmp_path / "clean.zarr", url=clean.url, planes="all")
            update = update_store(store, url=clean.url, retry_missing_after=0)
        assert update.left_out == 0
        assert sum(r.filled for r in update.results) == report.left_out
        for oid in ids:
            _same(open_cube(store, oid), open_cube(tmp_path / "clean.zarr", oid))
