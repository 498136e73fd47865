"""Selecting objects (cone, tag, name, filters) and building from a selection: the Python API.

Oracles: the emulator's own catalog (what it placed where, tagged, named, how many sources),
plain zarr for the store's root attributes and plain xarray for the cubes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import xarray as xr
import zarr

from finkcube import InputError, Selection, build_store, find, list_objects, update_store
from finkcube.emulator import Emulator

TAG = "most_likely_sn"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """An emulator of this module's own: its tests add objects, tags and names."""
    with Emulator() as emu:
        yield emu


def _tagged(emu: Emulator, count: int, sources: int = 3) -> list[int]:
    """``count`` new objects in TAG, newest last (each newer than all before it)."""
    return [emu.catalog.add_object(ra=float(30 + i), dec=10.0, sources=sources, tags=(TAG,))
            for i in range(count)]  # fmt: skip


def _cubes(store: Path) -> dict[int, xr.Dataset]:
    return {
        oid: xr.open_zarr(store, group=str(oid), consolidated=False).load()
        for oid in list_objects(store)
    }


# ----------------------------------------------------------------------- the value


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "give one search"),
        ({"tag": TAG, "name": "x"}, "not 2"),
        ({"ra": 10.0, "dec": 5.0}, "invalid cone radius"),
        ({"ra": 10.0, "dec": 95.0, "radius_arcsec": 5.0}, "invalid cone centre"),
        ({"ra": 360.0, "dec": 0.0, "radius_arcsec": 5.0}, "invalid cone centre"),
        ({"ra": 10.0, "dec": 0.0, "radius_arcsec": 18001.0}, "at most 18000 arcsec"),
        ({"ra": 10.0, "dec": 0.0, "radius_arcsec": float("nan")}, "finite"),
        ({"tag": TAG, "n": 0}, "invalid n"),
        ({"tag": TAG, "min_sources": -1}, "invalid min_sources"),
        ({"tag": TAG, "since": "yesterday-ish"}, "invalid date"),
        ({"name": "SN 2026a", "since": "2026-01-01"}, "not to a name"),
        ({"name": "SN 2026a", "resolver": "ned"}, "invalid resolver"),
    ],
)
def test_a_bad_selection_is_refused_before_anything_is_sent(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        Selection(**fields)  # type: ignore[arg-type]


def test_a_selection_round_trips_through_json() -> None:
    from astropy.time import Time

    sel = Selection(ra=12.5, dec=-3.0, radius_arcsec=60, n=5, since="2026-01-02", until=61100)
    assert Selection.from_json(sel.to_json()) == sel
    assert sel.since == pytest.approx(Time("2026-01-02", scale="utc").tai.mjd)
    assert sel.until == 61100.0
    with pytest.raises(InputError, match="unknown field"):
        Selection.from_json('{"tag": "in_tns", "colour": "red"}')


# ----------------------------------------------------------------------- find


def test_find_by_cone_gives_the_objects_inside_nearest_first(emu: Emulator) -> None:
    from astropy.coordinates import SkyCoord

    near = emu.catalog.add_object(ra=250.0, dec=-60.0, sources=2)
    far = emu.catalog.add_object(ra=250.0, dec=-60.005, sources=2)  # 18 arcsec south
    table = find(ra=250.0, dec=-60.0, radius_arcsec=30.0, url=emu.url)
    assert table["diaObjectId"].tolist() == [near, far]
    assert find(ra=250.0, dec=-60.0, radius_arcsec=10.0, url=emu.url)["diaObjectId"].tolist() == [
        near
    ]
    # Oracle of the separation: astropy on the positions placed.
    sep = SkyCoord(250.0, -60.0, unit="deg").separation(SkyCoord(250.0, -60.005, unit="deg"))
    assert 10.0 < sep.arcsec < 30.0


def test_find_by_tag_gives_the_newest_objects_with_their_summaries(emu: Emulator) -> None:
    ids = _tagged(emu, 3)
    table = find(tag=TAG, n=3, url=emu.url)
    assert table["diaObjectId"].tolist() == ids[::-1]  # newest first
    assert table["diaObjectId"].tolist() == emu.catalog.tag_objects(TAG)[:3]
    assert table["nDiaSources"].tolist() == [3, 3, 3]


def test_since_bounds_the_alerts_of_a_tag(emu: Emulator) -> None:
    older, newer = _tagged(emu, 2)
    newest = max(float(r["r:midpointMjdTai"]) for r in emu.catalog.records(older))
    first = min(float(r["r:midpointMjdTai"]) for r in emu.catalog.records(newer))
    assert newest < first
    since = (newest + first) / 2  # an MJD between the two objects' alerts
    assert find(tag=TAG, n=5, since=since, url=emu.url)["diaObjectId"].tolist() == [newer]
    from astropy.time import Time

    iso = Time(since, format="mjd", scale="tai").utc.isot  # the same bound as an ISO date
    assert find(tag=TAG, n=5, since=iso, url=emu.url)["diaObjectId"].tolist() == [newer]


def test_find_by_name(emu: Emulator) -> None:
    oid = emu.catalog.add_object(ra=5.0, dec=5.0, sources=2, name="SN 2099zzq")
    assert emu.catalog.names(oid) == ["SN 2099zzq"]
    assert find(name="SN 2099zzq", url=emu.url)["diaObjectId"].tolist() == [oid]


def test_min_sources_keeps_the_objects_with_enough_sources(emu: Emulator) -> None:
    small = emu.catalog.add_object(ra=40.0, dec=1.0, sources=3, tags=(TAG,))
    large = emu.catalog.add_object(ra=41.0, dec=1.0, sources=25, tags=(TAG,))
    counts = {oid: len(emu.catalog.source_ids(oid)) for oid in (small, large)}
    assert counts == {small: 3, large: 25}
    table = find(tag=TAG, n=2, min_sources=20, url=emu.url)
    assert table["diaObjectId"].tolist() == [large]
    assert find(tag=TAG, n=2, max_sources=20, url=emu.url)["diaObjectId"].tolist() == [small]


def test_an_unknown_tag_is_the_users_to_fix(emu: Emulator) -> None:
    with pytest.raises(InputError, match="Livestream"):
        find(tag="early_sn_candidate", url=emu.url)


# ----------------------------------------------------------------------- build and update


def test_build_from_a_selection_equals_a_build_of_the_ids_found(
    emu: Emulator, tmp_path: Path
) -> None:
    ids = _tagged(emu, 3)
    found = find(tag=TAG, n=3, url=emu.url)["diaObjectId"].tolist()
    assert found == ids[::-1]
    build_store(None, tmp_path / "a.zarr", url=emu.url, selection=Selection(tag=TAG, n=3))
    build_store(found, tmp_path / "b.zarr", url=emu.url)
    a, b = _cubes(tmp_path / "a.zarr"), _cubes(tmp_path / "b.zarr")
    assert sorted(a) == sorted(b) == sorted(ids)
    for oid in ids:
        xr.testing.assert_equal(a[oid], b[oid])
    # The store remembers the selection and the options it was built with.
    record = zarr.open_group(tmp_path / "a.zarr", mode="r").attrs["finkcube_selections"]
    assert record == [{"selection": {"tag": TAG, "n": 3}, "planes": "data", "size": None,
                       "columns": None, "forced_photometry": False, "align": None}]  # fmt: skip


def test_update_reselect_adds_an_object_that_joined_the_tag(emu: Emulator, tmp_path: Path) -> None:
    ids = _tagged(emu, 2)
    store = tmp_path / "sn.zarr"
    build_store([], store, url=emu.url, selection={"tag": TAG, "n": 2}, size=48)
    before = _cubes(store)
    assert sorted(before) == sorted(ids)

    new = emu.catalog.add_object(ra=77.0, dec=7.0, sources=4)
    emu.catalog.add_to_tag(new, TAG)
    assert emu.catalog.tag_objects(TAG)[0] == new

    plain = update_store(store)  # without reselect: only the cubes held
    assert {r.status for r in plain.results} == {"unchanged"}
    report = update_store(store, reselect=True)
    statuses = {r.object_id: r.status for r in report.results}
    assert statuses[new] == "built"
    after = _cubes(store)
    assert sorted(after) == sorted([*ids, new])  # the one that left the newest two is kept
    for oid in ids:
        xr.testing.assert_identical(after[oid], before[oid])
    assert after[new].sizes["x"] == 48  # built with the options recorded


def test_reselect_needs_a_recorded_selection(emu: Emulator, tmp_path: Path) -> None:
    store = tmp_path / "plain.zarr"
    build_store([emu.catalog.named("single")], store, url=emu.url)
    with pytest.raises(InputError, match="records no selection"):
        update_store(store, reselect=True)


def test_a_selection_that_finds_nothing_writes_nothing(emu: Emulator, tmp_path: Path) -> None:
    store = tmp_path / "none.zarr"
    with pytest.raises(InputError, match="selected no object"):
        build_store(None, store, url=emu.url, selection=Selection(ra=1.0, dec=-89.0,
                                                                 radius_arcsec=1.0))  # fmt: skip
    assert not store.exists()
