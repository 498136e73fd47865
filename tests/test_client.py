"""FinkClient against the emulator, over real sockets."""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests
from astropy.io import fits
from PIL import Image

from finkcube.errors import (
    CubeError,
    InputError,
    NotFoundError,
    ServiceError,
)
from finkcube.names import CUTOUTS_PATH, KINDS, SOURCES_PATH
from finkcube.service import FinkClient
from finkcube.service.decode import SourceCutouts, decode_fits

UNKNOWN_SOURCE = 1_000_000_000_000_000_001
COLUMNS = ["diaSourceId", "diaObjectId", "midpointMjdTai", "band", "psfFlux"]


class Requests:
    """How many requests of each path the emulator served since this was made."""

    def __init__(self, emulator: Any) -> None:
        self._emulator = emulator
        self._start = Counter(emulator.requests)

    def __getitem__(self, path: str) -> int:
        return self._emulator.requests[path] - self._start[path]


@pytest.fixture
def client(emulator: Any) -> Iterator[FinkClient]:
    with FinkClient(emulator.url, workers=4, timeout=10, retries=2, backoff=0.01, env={}) as c:
        yield c


def _assert_same_planes(got: SourceCutouts, catalog: Any, source_id: int) -> None:
    assert got.source_id == source_id
    for stamp in got.stamps:
        expected = catalog.array(source_id, stamp.kind)
        assert stamp.planes["data"].dtype == np.float32
        np.testing.assert_array_equal(stamp.planes["data"], expected)


# ---------------------------------------------------------------- sources


def test_sources_of_one_object(client: FinkClient, emulator: Any) -> None:
    oid = emulator.catalog.named("small")
    expected = emulator.catalog.records(oid)
    table = client.sources(oid, columns=COLUMNS)
    assert table.colnames[: len(COLUMNS)] == COLUMNS
    assert table["diaSourceId"].dtype == np.int64
    assert [int(x) for x in table["diaSourceId"]] == [r["r:diaSourceId"] for r in expected]
    assert set(int(x) for x in table["diaObjectId"]) == {oid}
    times = list(table["midpointMjdTai"])
    assert times == sorted(times, reverse=True)  # newest first, as served
    assert list(table["band"]) == [r["r:band"] for r in expected]


def test_source_records_of_many_objects_in_one_request(client: FinkClient, emulator: Any) -> None:
    names = ("small", "single", "with_mask")
    oids = [emulator.catalog.named(name) for name in names]
    seen = Requests(emulator)
    records = client.source_records([str(oids[0]), *oids[1:]], columns=COLUMNS)
    assert seen[SOURCES_PATH] == 1
    for oid in oids:
        mine = [r for r in records if r["r:diaObjectId"] == oid]
        wanted = emulator.catalog.records(oid)
        assert [r["r:diaSourceId"] for r in mine] == [r["r:diaSourceId"] for r in wanted]
        assert all(type(r["r:diaSourceId"]) is int for r in mine)


def test_sources_all_columns_nulls_masked(client: FinkClient, emulator: Any) -> None:
    oid = emulator.catalog.named("real")
    expected = emulator.catalog.records(oid)
    table = client.sources(oid)
    assert len(table) == len(expected)
    for name in expected[0]:
        bare = name.split(":", 1)[1]
        if bare not in table.colnames:  # a column null in every row is not served
            assert all(r.get(name) is None for r in expected)
            continue
        column = table[bare]
        nulls = [r.get(name) is None for r in expected]
        mask = list(np.ma.getmaskarray(column))
        assert mask == nulls, name


def test_unknown_object_gives_empty(client: FinkClient, emulator: Any) -> None:
    unknown = 999_999_999_999_999_999
    assert unknown not in emulator.catalog.object_ids()
    assert client.source_records(unknown) == []
    table = client.sources(unknown, columns=COLUMNS)
    assert len(table) == 0
    assert table.colnames == COLUMNS


# ---------------------------------------------------------------- cutouts


def test_cutouts_array_all_and_one_kind(client: FinkClient, emulator: Any) -> None:
    catalog = emulator.catalog
    sid = catalog.source_ids(catalog.named("nan_edges"))[0]
    arrays = client.cutouts(sid)
    assert isinstance(arrays, dict)
    assert list(arrays) == list(KINDS)
    for kind in KINDS:
        np.testing.assert_array_equal(arrays[kind], catalog.array(sid, kind))
    assert any(np.isnan(a).any() for a in arrays.values())
    one = client.cutouts(str(sid), kind="template")  # spelled loosely: sent canonical
    assert isinstance(one, np.ndarray)
    np.testing.assert_array_equal(one, catalog.array(sid, "Template"))


def test_cutouts_fits_is_the_catalog_file(client: FinkClient, emulator: Any) -> None:
    catalog = emulator.catalog
    sid = catalog.source_ids(catalog.named("single"))[0]
    hdul = client.cutouts(sid, kind="Difference", output_format="fits")
    assert isinstance(hdul, fits.HDUList)
    with fits.open(io.BytesIO(catalog.fits(sid, "Difference"))) as expected:
        assert [h.name for h in hdul] == [h.name for h in expected]
        np.testing.assert_array_equal(hdul[0].data, expected[0].data)
    hdul.close()


def test_cutouts_png(client: FinkClient, emulator: Any) -> None:
    catalog = emulator.catalog
    sid = catalog.source_ids(catalog.named("single"))[0]
    grey = client.cutouts(sid, kind="Science", output_format="png")
    assert isinstance(grey, bytes)
    with Image.open(io.BytesIO(grey)) as image:
        assert image.size == catalog.array(sid, "Science").shape[::-1]
        assert image.mode == "L"
    coloured = client.cutouts(
        sid,
        kind="Science",
        output_format="PNG",
        stretch="linear",
        colormap="viridis",
        pmin=1,
        pmax=99,
        convolution_kernel="gauss",
    )
    with Image.open(io.BytesIO(coloured)) as image:
        assert image.mode == "RGBA"


def test_cutout_arrays_equal_catalog(client: FinkClient, emulator: Any) -> None:
    catalog = emulator.catalog
    for sid in catalog.source_ids(catalog.named("mixed_sizes"))[:4]:
        _assert_same_planes(client.cutout_arrays(sid), catalog, sid)


def test_cutout_fits_planes_psf_and_mask(client: FinkClient, emulator: Any) -> None:
    catalog = emulator.catalog
    sid = catalog.source_ids(catalog.named("with_mask"))[0]
    got = client.cutout_fits(sid)
    _assert_same_planes(got, catalog, sid)
    for stamp in got.stamps:
        expected = decode_fits(catalog.fits(sid, stamp.kind), kind=stamp.kind, source_id=sid)
        assert list(stamp.planes) == ["data", "variance", "mask"]
        for name, plane in expected.planes.items():
            np.testing.assert_array_equal(stamp.planes[name], plane)
        assert stamp.psf is not None
        assert expected.psf is not None
        np.testing.assert_array_equal(stamp.psf, expected.psf)
        assert stamp.header == expected.header


def test_cutouts_without_mask_have_no_mask_plane(client: FinkClient, emulator: Any) -> None:
    catalog = emulator.catalog
    sid = catalog.source_ids(catalog.named("small"))[0]
    got = client.cutout_fits(sid)
    assert all("mask" not in stamp.planes for stamp in got.stamps)
    assert all("variance" in stamp.planes for stamp in got.stamps)


def test_mismatched_kinds_raise_cube_error(client: FinkClient, emulator: Any) -> None:
    catalog = emulator.catalog
    sid = catalog.source_ids(catalog.named("mismatched"))[2]
    with pytest.raises(CubeError, match=f"diaSourceId {sid}"):
        client.cutout_arrays(sid)


# ---------------------------------------------------------------- errors, not retried


@pytest.mark.parametrize(
    "fetch",
    [
        FinkClient.cutout_arrays,
        FinkClient.cutout_fits,
        lambda c, sid: c.cutouts(sid, kind="Science", output_format="PNG"),
        lambda c, sid: c.cutouts(sid, kind="Science", output_format="FITS"),
    ],
    ids=["arrays", "fits", "png", "fits-hdul"],
)
def test_unknown_source_not_found_without_retry(
    client: FinkClient, emulator: Any, fetch: Any
) -> None:
    seen = Requests(emulator)
    with pytest.raises(NotFoundError, match=f"no alert with diaSourceId {UNKNOWN_SOURCE}"):
        fetch(client, UNKNOWN_SOURCE)
    assert seen[CUTOUTS_PATH] == 1


def test_bad_inputs_send_nothing(client: FinkClient, emulator: Any) -> None:
    sid = emulator.catalog.source_ids(emulator.catalog.named("single"))[0]
    seen = Requests(emulator)
    bad_calls = [
        lambda: client.cutouts(sid, kind="Everything"),
        lambda: client.cutouts(sid, kind="All", output_format="FITS"),
        lambda: client.cutouts(sid, kind="Science", output_format="PNG", colormap="nope"),
        lambda: client.cutouts(sid, kind="Science", output_format="PNG", pmin=90, pmax=10),
        lambda: client.cutouts(f"{sid}x"),
        lambda: client.sources(["1", "x"]),
    ]
    for call in bad_calls:
        with pytest.raises(InputError):
            call()
    assert seen[CUTOUTS_PATH] == seen[SOURCES_PATH] == 0


def test_ids_travel_as_strings(client: FinkClient, emulator: Any) -> None:
    sid = emulator.catalog.source_ids(emulator.catalog.named("single"))[0]
    # The emulator, like the real service, fails with 500 on an integer id ...
    payload = {"diaSourceId": sid, "kind": "Science", "output-format": "array"}
    assert requests.post(emulator.url + CUTOUTS_PATH, json=payload, timeout=10).status_code == 500
    # ... so a client call given an int succeeding proves it sent a string.
    assert client.cutouts(sid, kind="Science").shape[0] >= 30
    oid = emulator.catalog.named("single")
    assert len(client.source_records(oid, columns=COLUMNS)) == 1


def test_missing_cutout_is_a_500_after_one_retry(client: FinkClient, emulator: Any) -> None:
    # A 500 is mostly deterministic (a null cutout): retried once, not `retries` times.
    catalog = emulator.catalog
    sid = catalog.source_ids(catalog.named("missing_cutout"))[2]
    seen = Requests(emulator)
    with pytest.raises(
        ServiceError, match=f"diaSourceId {sid}.*HTTP 500.*after 2 attempts"
    ) as info:
        client.cutout_arrays(sid)
    assert info.value.status == 500
    assert isinstance(info.value.__cause__, ServiceError)
    assert seen[CUTOUTS_PATH] == 2


# ---------------------------------------------------------------- map


def test_map_order_and_bounded_concurrency(emulator: Any) -> None:
    catalog = emulator.catalog
    sids = catalog.source_ids(catalog.named("mixed_sizes"))
    workers = 3
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    barrier = threading.Barrier(workers, timeout=20)

    def fetch(sid: int) -> SourceCutouts:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        try:
            barrier.wait()  # returns only once `workers` calls run at the same time
            return client.cutout_arrays(sid)
        finally:
            with lock:
                state["now"] -= 1

    items = (sids * workers)[: workers * 4]
    with FinkClient(emulator.url, workers=workers, retries=1, backoff=0.01, env={}) as client:
        results = list(client.map(fetch, items))
        # Two maps at once share the one pool: still no more than `workers` in flight.
        other: list[SourceCutouts] = []
        thread = threading.Thread(target=lambda: other.extend(client.map(fetch, items)))
        thread.start()
        again = list(client.map(fetch, items))
        thread.join(timeout=60)
    assert [r.source_id for r in results] == items
    assert [r.source_id for r in again] == items
    assert [r.source_id for r in other] == items
    for sid, got in zip(items, results, strict=True):
        _assert_same_planes(got, catalog, sid)
    assert state["max"] == workers
