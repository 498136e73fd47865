"""The emulator's search endpoints over real sockets: objects, fp, conesearch, tags, resolver.

Oracles: astropy's ``SkyCoord.separation`` for the cones, the catalog's own source records
(plain Python arithmetic) for the aggregates.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import astropy.units as u
import numpy as np
import pytest
import requests
from astropy.coordinates import SkyCoord

from finkcube.emulator import Emulator

API = "/api/v1/"
TIMEOUT = 30
TAGS = {
    "extragalactic_lt20mag_candidate",
    "extragalactic_new_candidate",
    "hostless_candidate",
    "in_tns",
    "most_likely_sn",
    "sn_near_galaxy_candidate",
}
REQUIRED = {
    "objects": ["diaObjectId"],
    "fp": ["diaObjectId"],
    "conesearch": ["ra", "dec", "radius"],
    "tags": ["tag"],
    "resolver": ["resolver", "name_or_id"],
}


def post(emu: Emulator, endpoint: str, **fields: Any) -> requests.Response:
    return requests.post(emu.url + API + endpoint, json=fields, timeout=TIMEOUT)


@pytest.fixture
def fresh() -> Iterator[Emulator]:
    with Emulator(seed=3) as emu:
        yield emu


# ---------------------------------------------------------------- transport


@pytest.mark.parametrize("endpoint", sorted(REQUIRED))
def test_missing_field_is_a_400_dict_repr(emulator: Emulator, endpoint: str) -> None:
    fields = dict.fromkeys(REQUIRED[endpoint], "1")
    first = REQUIRED[endpoint][0]
    for missing in REQUIRED[endpoint]:
        partial = {k: v for k, v in fields.items() if k != missing}
        reply = post(emulator, endpoint, **partial)
        assert reply.status_code == 400
        assert reply.text.startswith("{'status': 'error', 'text': 'A value for `")
        assert f"`{missing}`" in reply.text
    assert f"`{first}`" in post(emulator, endpoint).text


@pytest.mark.parametrize("endpoint", ["objects", "fp", "conesearch", "resolver"])
def test_get_without_fields_is_a_description(emulator: Emulator, endpoint: str) -> None:
    reply = requests.get(emulator.url + API + endpoint, timeout=TIMEOUT)
    assert reply.status_code == 200
    assert reply.text
    assert not reply.text.startswith(("[", "{"))


def test_get_of_tags_without_fields_lists_the_tags(emulator: Emulator) -> None:
    reply = requests.get(emulator.url + API + "tags", timeout=TIMEOUT)
    assert reply.status_code == 200
    listed = reply.json()
    assert set(listed) == TAGS
    assert all(isinstance(text, str) and text for text in listed.values())


def test_query_string_wins_over_the_body(emulator: Emulator) -> None:
    oid = emulator.catalog.named("small")
    reply = requests.post(
        emulator.url + API + "objects",
        params={"diaObjectId": str(oid), "columns": "r:diaObjectId"},
        json={"diaObjectId": str(emulator.catalog.named("single"))},
        timeout=TIMEOUT,
    )
    assert reply.json() == [{"r:diaObjectId": oid}]


def test_integer_id_in_a_body_is_a_500(emulator: Emulator) -> None:
    reply = post(emulator, "objects", diaObjectId=emulator.catalog.named("small"))
    assert reply.status_code == 500
    assert reply.json() == {"message": "Internal Server Error"}


# ---------------------------------------------------------------- objects


def test_objects_many_ids_in_one_request(emulator: Emulator) -> None:
    catalog = emulator.catalog
    ids = [catalog.named(n) for n in ("single", "small", "mixed_sizes", "large")]
    unknown = 100_000_000_000_000_007
    reply = post(emulator, "objects", diaObjectId=",".join(map(str, [*ids, unknown])))
    assert reply.status_code == 200
    rows = {row["r:diaObjectId"]: row for row in reply.json()}
    assert set(rows) == set(ids)
    for oid in ids:
        records = catalog.records(oid)
        row = rows[oid]
        times = [r["r:midpointMjdTai"] for r in records]
        assert row["r:nDiaSources"] == len(records)
        assert row["r:firstDiaSourceMjdTai"] == min(times)
        assert row["r:lastDiaSourceMjdTai"] == max(times)
        assert row["f:firstDiaSourceMjdTaiFink"] == min(times)
        for band in "ugrizy":
            fluxes = [r["r:psfFlux"] for r in records if r["r:band"] == band]
            assert row[f"r:{band}_psfFluxMax"] == (max(fluxes) if fluxes else None)
        assert isinstance(row["f:is_cataloged"], bool)
        assert isinstance(row["f:main_label_classifier"], int)
        assert (row["r:ra"], row["r:dec"]) == pytest.approx(catalog.position(oid))
        # The position is that of the sources (they scatter by about 0.07 arcsec).
        centre = SkyCoord(row["r:ra"], row["r:dec"], unit="deg")
        sources = SkyCoord([r["r:ra"] for r in records], [r["r:dec"] for r in records], unit="deg")
        assert centre.separation(sources).max() < 1 * u.arcsec


def test_objects_unknown_or_malformed_ids_give_no_row(emulator: Emulator) -> None:
    assert post(emulator, "objects", diaObjectId="100000000000000007").json() == []
    assert post(emulator, "objects", diaObjectId="12a").json() == []
    oid = emulator.catalog.named("small")
    # A single id is not stripped; a list is.
    assert post(emulator, "objects", diaObjectId=f" {oid}").json() == []
    assert len(post(emulator, "objects", diaObjectId=f" {oid}, 7").json()) == 1


def test_objects_columns_drop_all_null_ones_and_csv(emulator: Emulator) -> None:
    oid = emulator.catalog.named("single")  # one source: one band
    band = emulator.catalog.records(oid)[0]["r:band"]
    other = "u" if band != "u" else "g"
    columns = f"r:diaObjectId,r:{band}_psfFluxMax,r:{other}_psfFluxMax,f:is_cataloged"
    rows = post(emulator, "objects", diaObjectId=str(oid), columns=columns).json()
    assert set(rows[0]) == {"r:diaObjectId", f"r:{band}_psfFluxMax", "f:is_cataloged"}
    reply = post(
        emulator, "objects", diaObjectId=str(oid), columns=columns, **{"output-format": "csv"}
    )
    table = list(csv.DictReader(io.StringIO(reply.text)))
    assert table[0]["r:diaObjectId"] == str(oid)


# ---------------------------------------------------------------- forced photometry


def test_fp_has_every_visit_and_is_deterministic(emulator: Emulator) -> None:
    catalog = emulator.catalog
    oid = catalog.named("small")
    rows = post(emulator, "fp", diaObjectId=str(oid)).json()
    assert rows == post(emulator, "fp", diaObjectId=str(oid)).json()
    assert rows == catalog.forced_photometry(oid)
    detections = {r["r:visit"] for r in catalog.records(oid)}
    visits = [r["r:visit"] for r in rows]
    assert detections < set(visits)  # and non-detections besides
    assert len(set(visits)) == len(visits)
    assert len({r["r:diaForcedSourceId"] for r in rows}) == len(rows)
    times = [r["r:midpointMjdTai"] for r in rows]
    assert times == sorted(times, reverse=True)
    expected = {
        "r:diaObjectId",
        "r:diaForcedSourceId",
        "r:visit",
        "r:midpointMjdTai",
        "r:band",
        "r:psfFlux",
        "r:psfFluxErr",
        "r:scienceFlux",
        "r:scienceFluxErr",
    }
    assert expected <= set(rows[0])
    assert {r["r:diaObjectId"] for r in rows} == {oid}


def test_fp_of_a_list_and_of_unknown_objects(emulator: Emulator) -> None:
    first, second = emulator.catalog.named("single"), emulator.catalog.named("small")
    rows = post(emulator, "fp", diaObjectId=f"{first},{second},7", columns="r:diaObjectId").json()
    counts = {oid: sum(r["r:diaObjectId"] == oid for r in rows) for oid in (first, second)}
    assert counts == {oid: len(emulator.catalog.forced_photometry(oid)) for oid in counts}
    assert post(emulator, "fp", diaObjectId="7").json() == []


# ---------------------------------------------------------------- conesearch


def _place(emu: Emulator, centre: SkyCoord, radius: u.Quantity) -> list[int]:
    """Objects at known separations around ``centre``: inside, just out, in the box corners."""
    ids = []
    seps = [0.1, 0.5, 0.9, 0.99, 1.01, 1.1, 1.2, 1.4]
    for k, factor in enumerate(seps):
        for pa in (0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0):
            where = centre.directional_offset_by((pa + 7 * k) * u.deg, radius * factor)
            ids.append(emu.catalog.add_object(float(where.ra.deg), float(where.dec.deg), sources=2))
    return ids


CENTRES = [
    pytest.param(SkyCoord(0.002, 10.0, unit="deg"), 60 * u.arcsec, id="ra-wrap"),
    pytest.param(SkyCoord(123.4, 89.97, unit="deg"), 300 * u.arcsec, id="north-pole"),
    pytest.param(SkyCoord(310.0, -89.99, unit="deg"), 120 * u.arcsec, id="south-pole"),
    pytest.param(SkyCoord(200.0, -30.0, unit="deg"), 200 * u.arcsec, id="mid-latitude"),
]


@pytest.mark.parametrize(("centre", "radius"), CENTRES)
def test_cone_holds_exactly_the_objects_inside(
    fresh: Emulator, centre: SkyCoord, radius: u.Quantity
) -> None:
    placed = _place(fresh, centre, radius)
    reply = post(
        fresh, "conesearch", ra=centre.ra.deg, dec=centre.dec.deg, radius=radius.to_value(u.arcsec)
    )
    assert reply.status_code == 200
    rows = reply.json()
    # Oracle: astropy, on each object's latest alert position, over the whole catalog.
    catalog = fresh.catalog
    latest = [catalog.records(oid)[0] for oid in catalog.object_ids()]
    where = SkyCoord([r["r:ra"] for r in latest], [r["r:dec"] for r in latest], unit="deg")
    seps = centre.separation(where)
    inside = {r["r:diaObjectId"]: s.deg for r, s in zip(latest, seps, strict=True) if s <= radius}
    got = [row["r:diaObjectId"] for row in rows]
    assert set(got) == set(inside)
    assert len(got) == len(set(got))
    assert {oid for oid in placed if oid in inside} == set(placed[: 4 * 8])  # the 4 inner rings
    separations = [row["v:separation_degree"] for row in rows]
    assert separations == sorted(separations)
    np.testing.assert_allclose(separations, [inside[o] for o in got], rtol=0, atol=1e-10)
    for row in rows:  # the latest alert of each object, all columns
        assert row["r:diaSourceId"] == catalog.source_ids(row["r:diaObjectId"])[0]


def test_cone_n_keeps_the_nearest_and_defaults_to_1000(fresh: Emulator) -> None:
    centre = SkyCoord(45.0, 20.0, unit="deg")
    rng = np.random.default_rng(5)
    for sep, pa in zip(rng.uniform(0, 50, 1003), rng.uniform(0, 360, 1003), strict=True):
        where = centre.directional_offset_by(pa * u.deg, sep * u.arcsec)
        fresh.catalog.add_object(float(where.ra.deg), float(where.dec.deg), sources=1)
    fields = {"ra": 45.0, "dec": 20.0, "radius": 60.0, "columns": "r:diaObjectId"}
    assert len(post(fresh, "conesearch", **fields).json()) == 1000
    assert len(post(fresh, "conesearch", **fields, n=2000).json()) == 1003
    nearest = post(fresh, "conesearch", **fields, n=3).json()
    assert [r["r:diaObjectId"] for r in nearest] == [
        r["r:diaObjectId"] for r in post(fresh, "conesearch", **fields).json()[:3]
    ]


def test_cone_columns_always_carry_the_position_and_separation(emulator: Emulator) -> None:
    oid = emulator.catalog.named("small")
    ra, dec = emulator.catalog.position(oid)
    rows = post(emulator, "conesearch", ra=ra, dec=dec, radius=1.0, columns="r:band").json()
    assert [set(r) for r in rows] == [{"r:band", "r:ra", "r:dec", "v:separation_degree"}]


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"radius": 18000.5}, 400),
        ({"radius": "ten"}, 500),
        ({"n": "many"}, 500),
        ({"dec": 95.0}, 400),
        ({"startdate": "yesterday-ish"}, 500),
    ],
)
def test_cone_refusals(emulator: Emulator, fields: dict[str, Any], status: int) -> None:
    reply = post(emulator, "conesearch", **({"ra": 10.0, "dec": 0.0, "radius": 5.0} | fields))
    assert reply.status_code == status
    if status == 400:
        assert reply.text.startswith("{'status': 'error', 'text': ")
    if "radius" in fields and status == 400:
        assert "18,000 arcseconds" in reply.text


def test_cone_radius_at_the_cap_is_served(emulator: Emulator) -> None:
    reply = requests.get(
        emulator.url + API + "conesearch",
        timeout=TIMEOUT,
        params={"ra": "10", "dec": "-20", "radius": "18000", "n": "5"},
    )
    assert reply.status_code == 200
    assert len(reply.json()) <= 5


def test_cone_dates_filter_on_first_detection(fresh: Emulator) -> None:
    centre = SkyCoord(100.0, 5.0, unit="deg")
    oid = fresh.catalog.add_object(100.0, 5.0, sources=3)
    first = fresh.catalog.records(oid)[-1]["r:midpointMjdTai"]
    fields = {"ra": centre.ra.deg, "dec": centre.dec.deg, "radius": 5.0}
    assert len(post(fresh, "conesearch", **fields, startdate=first - 0.01).json()) == 1
    assert post(fresh, "conesearch", **fields, startdate=first + 0.01).json() == []
    iso = "2020-01-01 00:00:00"
    assert len(post(fresh, "conesearch", **fields, startdate=iso).json()) == 1
    assert post(fresh, "conesearch", **fields, stopdate=iso).json() == []
    assert len(post(fresh, "conesearch", **fields, startdate=str(first + 2400000.49)).json()) == 1
    # With columns, the date's column must be asked for (the service's KeyError otherwise).
    short = post(fresh, "conesearch", **fields, startdate=iso, columns="r:diaObjectId")
    assert short.status_code == 500
    rows = post(
        fresh,
        "conesearch",
        **fields,
        startdate=iso,
        columns="r:diaObjectId,f:firstDiaSourceMjdTaiFink",
    ).json()
    assert rows[0]["f:firstDiaSourceMjdTaiFink"] == first


# ---------------------------------------------------------------- tags


def test_tag_is_newest_first_and_defaults_to_10(fresh: Emulator) -> None:
    catalog = fresh.catalog
    before = catalog.tag_objects("hostless_candidate")
    added = [
        catalog.add_object(50.0 + k, 0.0, sources=2, tags=["hostless_candidate"]) for k in range(12)
    ]
    assert catalog.tag_objects("hostless_candidate") == [*added[::-1], *before]
    rows = post(fresh, "tags", tag="hostless_candidate").json()
    assert [r["r:diaObjectId"] for r in rows] == added[::-1][:10]
    times = [r["r:midpointMjdTai"] for r in rows]
    assert times == sorted(times, reverse=True)
    assert len(post(fresh, "tags", tag="hostless_candidate", n=30).json()) == 12 + len(before)
    # Each row is the object's latest alert, all columns.
    assert rows[0]["r:diaSourceId"] == catalog.source_ids(added[-1])[0]
    assert rows[0]["f:fink_broker_version"]


def test_add_to_tag_makes_the_latest_alert_count(fresh: Emulator) -> None:
    catalog = fresh.catalog
    oid = catalog.add_object(10.0, 10.0, sources=3)
    assert oid not in catalog.tag_objects("most_likely_sn")
    catalog.add_to_tag(oid, "most_likely_sn")
    assert catalog.tag_objects("most_likely_sn")[0] == oid
    rows = post(fresh, "tags", tag="most_likely_sn", n=1, columns="r:diaSourceId").json()
    assert rows == [{"r:diaSourceId": catalog.source_ids(oid)[0]}]


def test_tag_dates(fresh: Emulator) -> None:
    oid = fresh.catalog.add_object(10.0, 10.0, sources=1, tags=["in_tns"])
    when = fresh.catalog.records(oid)[0]["r:midpointMjdTai"]
    from astropy.time import Time

    before, after = (Time(when + d, format="mjd").iso for d in (-0.001, 0.001))
    got = post(fresh, "tags", tag="in_tns", startdate=before).json()
    assert [r["r:diaObjectId"] for r in got] == [oid]
    earlier = post(fresh, "tags", tag="in_tns", stopdate=before).json()
    assert earlier
    assert all(r["r:diaObjectId"] != oid for r in earlier)
    assert post(fresh, "tags", tag="in_tns", startdate=after).json() == []
    # The tags endpoint hands its dates to astropy's Time as they are: an MJD number fails.
    assert post(fresh, "tags", tag="in_tns", startdate=when).status_code == 500


@pytest.mark.parametrize("tag", ["early_sn_candidate", "IN_TNS", ""])
def test_other_tags_are_livestream_only(emulator: Emulator, tag: str) -> None:
    reply = post(emulator, "tags", tag=tag)
    assert reply.status_code == 400
    assert "only available from the Livestream service" in reply.text
    assert not reply.text.lstrip().startswith("{")


def test_every_tag_has_alerts(emulator: Emulator) -> None:
    for tag in TAGS:
        rows = post(emulator, "tags", tag=tag, columns="r:diaObjectId").json()
        assert [r["r:diaObjectId"] for r in rows] == emulator.catalog.tag_objects(tag)
        assert rows


# ---------------------------------------------------------------- resolver


def test_tns_names_resolve_both_ways(fresh: Emulator) -> None:
    catalog = fresh.catalog
    oid = catalog.add_object(1.0, 2.0, name="SN 2026zzq")
    rows = post(fresh, "resolver", resolver="tns", name_or_id="sn 2026ZZQ").json()
    assert [(r["d:fullname"], r["d:diaObjectId"]) for r in rows] == [("SN 2026zzq", oid)]
    back = post(fresh, "resolver", resolver="tns", name_or_id=str(oid), reverse=True).json()
    assert [r["d:fullname"] for r in back] == catalog.names(oid) == ["SN 2026zzq"]
    # reverse must be a JSON true: the text "True" of a query string is not.
    query = requests.get(
        fresh.url + API + "resolver",
        timeout=TIMEOUT,
        params={"resolver": "tns", "name_or_id": str(oid), "reverse": "True"},
    )
    assert query.json() == []
    assert post(fresh, "resolver", resolver="tns", name_or_id="2099aaa").json() == []


def test_generated_objects_carry_tns_names(emulator: Emulator) -> None:
    catalog = emulator.catalog
    named = [oid for oid in catalog.tag_objects("in_tns") if catalog.names(oid)]
    assert named
    for oid in named:
        for name in catalog.names(oid):
            assert name[:3] in ("AT ", "SN ")
            assert name[3:7].isdigit()
            assert name[7:].isalpha()
            rows = post(emulator, "resolver", resolver="tns", name_or_id=name).json()
            assert oid in [r["d:diaObjectId"] for r in rows]
    listed = post(emulator, "resolver", resolver="tns", name_or_id="", nmax=100).json()
    assert len(listed) == sum(len(catalog.names(o)) for o in catalog.object_ids())
    assert len(post(emulator, "resolver", resolver="tns", name_or_id="", nmax=1).json()) == 1


def test_other_resolvers(emulator: Emulator) -> None:
    oid = emulator.catalog.named("real")
    rows = post(emulator, "resolver", resolver="simbad", name_or_id=str(oid), reverse=True).json()
    assert [r["r:diaObjectId"] for r in rows] == [oid]
    assert post(emulator, "resolver", resolver="simbad", name_or_id="M31").json() == []
    assert post(emulator, "resolver", resolver="ssodnet", name_or_id="Ceres").json() == []
    assert post(emulator, "resolver", resolver="nope", name_or_id="x").status_code == 500


# ---------------------------------------------------------------- Fink columns


def test_sources_carry_the_services_fink_columns(emulator: Emulator) -> None:
    oid = emulator.catalog.named("real")
    columns = (
        "r:diaSourceId,f:clf_cats_class,f:clf_cats_score,f:clf_earlySNIa_score,"
        "f:clf_snnSnVsOthers_score,f:xm_gaiadr3_DR3Name,f:xm_simbad_otype,"
        "f:fink_broker_version"
    )
    rows = requests.post(
        emulator.url + API + "sources",
        timeout=TIMEOUT,
        json={"diaObjectId": str(oid), "columns": columns},
    ).json()
    scored = [r for r in rows if r.get("f:clf_cats_class") is not None]
    assert len(scored) == 1
    assert scored[0]["f:xm_gaiadr3_DR3Name"].startswith("Gaia DR3 ")
    assert scored[0]["f:fink_broker_version"]
    assert all("f:xm_simbad_otype" not in r for r in rows)  # null everywhere: absent
