"""FinkClient's search methods against the emulator (and a scripted server), over sockets."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from finkcube.emulator import Emulator
from finkcube.errors import BadRequestError, InputError, InvalidIdError
from finkcube.service import FinkClient
from finkcube.service.search import object_ids
from tests._loopback import Loopback

CONE = "/api/v1/conesearch"
SIX_TAGS = [
    "extragalactic_lt20mag_candidate",
    "extragalactic_new_candidate",
    "hostless_candidate",
    "in_tns",
    "most_likely_sn",
    "sn_near_galaxy_candidate",
]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(seed=9) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[FinkClient]:
    with FinkClient(emu.url, workers=2, timeout=10, retries=1, backoff=0.01, env={}) as c:
        yield c


def _sent(emu: Emulator) -> Counter[str]:
    return Counter(emu.requests)


# ---------------------------------------------------------------- conesearch


def test_conesearch_rows_types_and_order(emu: Emulator, client: FinkClient) -> None:
    centre = SkyCoord(250.0, -40.0, unit="deg")
    placed = []
    for sep in (30.0, 5.0, 50.0, 12.0):
        where = centre.directional_offset_by(33 * u.deg, sep * u.arcsec)
        placed.append(emu.catalog.add_object(float(where.ra.deg), float(where.dec.deg)))
    table = client.conesearch(250.0, -40.0, 60.0)
    assert isinstance(table, Table)
    assert list(table["diaObjectId"]) == [placed[1], placed[3], placed[0], placed[2]]
    assert table["diaObjectId"].dtype == np.int64
    assert table["diaSourceId"].dtype == np.int64
    assert table["visit"].dtype == np.int64
    assert table["separation_degree"].dtype == np.float64
    oracle = centre.separation(SkyCoord(table["ra"], table["dec"], unit="deg")).deg
    np.testing.assert_allclose(table["separation_degree"], oracle, rtol=0, atol=1e-10)
    assert object_ids(table) == [placed[1], placed[3], placed[0], placed[2]]
    # A SkyCoord centre and Quantity radius ask the same thing.
    same = client.conesearch(centre, radius=1 * u.arcmin)
    assert list(same["diaObjectId"]) == list(table["diaObjectId"])
    near = client.conesearch(centre, radius=0.004 * u.deg, n=1, columns=["diaObjectId"])
    assert list(near["diaObjectId"]) == [placed[1]]
    assert set(near.colnames) == {"diaObjectId", "ra", "dec", "separation_degree"}


def test_conesearch_dates(emu: Emulator, client: FinkClient) -> None:
    oid = emu.catalog.add_object(15.0, 15.0, sources=3)
    first = emu.catalog.records(oid)[-1]["r:midpointMjdTai"]
    assert object_ids(client.conesearch(15.0, 15.0, 2.0, startdate=first - 0.01)) == [oid]
    assert object_ids(client.conesearch(15.0, 15.0, 2.0, startdate=first + 0.01)) == []
    # With columns, the column the date filters on is asked for too (else the service fails).
    table = client.conesearch(15.0, 15.0, 2.0, startdate="2020-01-01", columns=["band"])
    assert list(table["firstDiaSourceMjdTaiFink"]) == [first]


@pytest.mark.parametrize(
    ("args", "kwargs", "word"),
    [
        ((360.0, 0.0), {}, "ra"),
        ((-1.0, 0.0), {}, "ra"),
        ((float("nan"), 0.0), {}, "ra"),
        ((10.0, 90.5), {}, "dec"),
        ((10.0, None), {}, "dec"),
        ((10.0, 0.0, 18000.5), {}, "radius"),
        ((10.0, 0.0, 0.0), {}, "radius"),
        ((10.0, 0.0, 6 * u.deg), {}, "radius"),
        ((10.0, 0.0, 3 * u.m), {}, "radius"),
        ((SkyCoord(1, 2, unit="deg"), 2.0), {}, "SkyCoord"),
        ((10.0, 0.0), {"n": 0}, "n"),
        ((10.0, 0.0), {"startdate": "not a date"}, "startdate"),
        ((10.0, 0.0), {"startdate": "2026-02-01", "stopdate": "2026-01-01"}, "after"),
    ],
)
def test_conesearch_refuses_locally(
    emu: Emulator, client: FinkClient, args: tuple[Any, ...], kwargs: dict[str, Any], word: str
) -> None:
    before = _sent(emu)
    with pytest.raises(InputError, match=word) as info:
        client.conesearch(*args, **kwargs)
    assert "\n" not in str(info.value)
    assert _sent(emu)[CONE] == before[CONE]


# ---------------------------------------------------------------- tags


def test_tags_and_tag(emu: Emulator, client: FinkClient) -> None:
    assert client.tags() == SIX_TAGS
    oid = emu.catalog.add_object(20.0, 20.0, sources=2, tags=["most_likely_sn"])
    table = client.tag("most_likely_sn", n=3, columns=["diaObjectId", "midpointMjdTai"])
    assert table["diaObjectId"][0] == oid
    assert len(table) == 3
    assert list(table["diaObjectId"]) == emu.catalog.tag_objects("most_likely_sn")[:3]
    times = list(table["midpointMjdTai"])
    assert times == sorted(times, reverse=True)
    # An MJD date is sent as ISO: the tags endpoint reads only what astropy's Time parses.
    newest = emu.catalog.records(oid)[0]["r:midpointMjdTai"]
    assert object_ids(client.tag("most_likely_sn", startdate=newest - 0.001)) == [oid]


def test_unknown_tag_is_a_one_line_bad_request_naming_it(client: FinkClient) -> None:
    with pytest.raises(BadRequestError, match="'early_sn'") as info:
        client.tag("early_sn")
    assert "Livestream" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError):
        client.tag("most_likely_sn", n=0)


# ---------------------------------------------------------------- resolver


def test_resolve_both_ways(emu: Emulator, client: FinkClient) -> None:
    oid = emu.catalog.add_object(30.0, -30.0, name="AT 2026qqq")
    table = client.resolve("at 2026QQQ")
    assert object_ids(table) == [oid]
    assert table["diaObjectId"].dtype == np.int64
    assert list(table["fullname"]) == ["AT 2026qqq"]
    back = client.resolve(str(oid), reverse=True)
    assert list(back["fullname"]) == emu.catalog.names(oid)
    assert len(client.resolve("2099zzz")) == 0
    with pytest.raises(InvalidIdError):
        client.resolve("AT 2026qqq", reverse=True)
    with pytest.raises(InputError, match="resolver"):
        client.resolve("x", resolver="google")


# ---------------------------------------------------------------- objects, fp


def test_objects_many_ids_in_one_request(emu: Emulator, client: FinkClient) -> None:
    catalog = emu.catalog
    ids = [catalog.named(n) for n in ("single", "small", "large")]
    before = _sent(emu)
    table = client.objects([*ids, 100_000_000_000_000_003])
    assert _sent(emu)["/api/v1/objects"] - before["/api/v1/objects"] == 1
    assert sorted(object_ids(table)) == sorted(ids)
    assert table["diaObjectId"].dtype == np.int64
    row = table[list(table["diaObjectId"]).index(catalog.named("large"))]
    assert row["nDiaSources"] == len(catalog.records(catalog.named("large")))
    assert table["is_cataloged"].dtype == bool
    with pytest.raises(InvalidIdError):
        client.objects(["12a"])
    assert _sent(emu)["/api/v1/objects"] - before["/api/v1/objects"] == 1
    empty = client.objects(7, columns=["nDiaSources"])
    assert len(empty) == 0
    assert empty.colnames == ["nDiaSources"]


def test_forced_photometry(emu: Emulator, client: FinkClient) -> None:
    oid = emu.catalog.named("small")
    table = client.forced_photometry(oid)
    assert len(table) == len(emu.catalog.forced_photometry(oid))
    for name in ("diaForcedSourceId", "visit", "diaObjectId"):
        assert table[name].dtype == np.int64
    assert list(table["diaForcedSourceId"]) == [
        r["r:diaForcedSourceId"] for r in emu.catalog.forced_photometry(oid)
    ]
    assert set(table["band"]) <= set("ugrizy")
    assert table["psfFlux"].dtype == np.float64


# ---------------------------------------------------------------- pandas 2 replies


class _Pandas2(BaseHTTPRequestHandler):
    """Answers every POST as a server on pandas 2 does: null strings as "nan"."""

    rows: ClassVar[list[dict[str, Any]]] = [
        {
            "r:diaObjectId": 313761043604045880,
            "f:xm_simbad_otype": "nan",
            "r:ra": 1.0,
            "r:dec": 2.0,
            "v:separation_degree": 1e-4,
            "f:ra": 5.0,
        },
        {
            "r:diaObjectId": 313761043604045881,
            "f:xm_simbad_otype": "Star",
            "r:ra": 1.0,
            "r:dec": 2.0,
            "v:separation_degree": 2e-4,
            "f:ra": 6.0,
        },
    ]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(self.rows).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_nan_text_is_masked_and_prefix_clash_keeps_the_later_prefixed() -> None:
    with Loopback(_Pandas2) as server, FinkClient(server.url, retries=0, env={}) as client:
        table = client.conesearch(1.0, 2.0, 1.0)
    assert list(table["diaObjectId"]) == [313761043604045880, 313761043604045881]
    otype = table["xm_simbad_otype"]
    assert otype.mask.tolist() == [True, False]
    assert otype[1] == "Star"
    assert list(table["ra"]) == [1.0, 1.0]
    assert list(table["f:ra"]) == [5.0, 6.0]
