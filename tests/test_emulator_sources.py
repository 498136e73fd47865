"""``/api/v1/sources`` of the emulator, over real sockets, row by row of the contract."""

from __future__ import annotations

import csv
import io
import json

import pytest
import requests

from finkcube.emulator import Emulator

SOURCES = "/api/v1/sources"
TIMEOUT = 30


def post(emu: Emulator, **fields: object) -> requests.Response:
    return requests.post(emu.url + SOURCES, json=fields, timeout=TIMEOUT)


def test_records_are_newest_first_with_integer_ids(emulator: Emulator) -> None:
    object_id = emulator.catalog.named("real")
    reply = post(
        emulator,
        diaObjectId=str(object_id),
        columns="r:diaSourceId,r:diaObjectId,r:midpointMjdTai",
    )
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/json"
    records = reply.json()
    assert len(records) == len(emulator.catalog.records(object_id)) > 300
    times = [r["r:midpointMjdTai"] for r in records]
    assert times == sorted(times, reverse=True)
    assert all(type(r["r:diaSourceId"]) is int for r in records)
    assert {r["r:diaObjectId"] for r in records} == {object_id}
    # Ids are JSON integers in the raw text: no quotes, no exponent.
    assert f'"r:diaSourceId":{records[0]["r:diaSourceId"]}' in reply.text


def test_all_columns_without_columns_field(emulator: Emulator) -> None:
    object_id = emulator.catalog.named("small")
    records = post(emulator, diaObjectId=str(object_id)).json()
    assert records == emulator.catalog.records(object_id)
    assert "r:psfLnL" in records[0]
    assert records[0]["r:psfLnL"] is None
    assert all(key.startswith(("r:", "f:")) for key in records[0])
    assert {"r:bboxSize", "r:band", "r:psfFlux", "r:ra", "r:dec"} <= set(records[0])


def test_columns_selection_drops_all_null_columns(emulator: Emulator) -> None:
    object_id = emulator.catalog.named("single")
    records = post(
        emulator, diaObjectId=str(object_id), columns="r:diaSourceId, r:band,r:psfLnL"
    ).json()
    assert len(records) == 1
    assert set(records[0]) == {"r:diaSourceId", "r:band"}


def test_real_alert_row_carries_its_fink_scores(emulator: Emulator) -> None:
    object_id = emulator.catalog.named("real")
    records = post(emulator, diaObjectId=str(object_id), columns="f:clf_cats_class").json()
    # Only the alert's own row has scores: the column is kept, null elsewhere.
    assert sum(r["f:clf_cats_class"] is not None for r in records) == 1


def test_comma_separated_objects_in_one_call(emulator: Emulator) -> None:
    first, second = emulator.catalog.named("single"), emulator.catalog.named("small")
    records = post(
        emulator,
        diaObjectId=f"{first}, {second}",
        columns="r:diaObjectId,r:midpointMjdTai",
    ).json()
    by_object = {oid: [r for r in records if r["r:diaObjectId"] == oid] for oid in (first, second)}
    assert len(by_object[first]) == 1
    assert len(by_object[second]) == len(emulator.catalog.records(second))
    times = [r["r:midpointMjdTai"] for r in records]
    assert times == sorted(times, reverse=True)


def test_unknown_object_is_an_empty_list(emulator: Emulator) -> None:
    reply = post(emulator, diaObjectId="123456789012345678")
    assert reply.status_code == 200
    assert reply.json() == []


def test_midpoint_filter_keeps_one_source(emulator: Emulator) -> None:
    object_id = emulator.catalog.named("small")
    target = emulator.catalog.records(object_id)[2]
    records = post(
        emulator,
        diaObjectId=str(object_id),
        midpointMjdTai=str(target["r:midpointMjdTai"]),
        columns="r:diaSourceId",
    ).json()
    assert records == [{"r:diaSourceId": target["r:diaSourceId"]}]


def test_get_with_query_args_equals_post(emulator: Emulator) -> None:
    object_id = emulator.catalog.named("small")
    fields = {"diaObjectId": str(object_id), "columns": "r:diaSourceId,r:band"}
    got = requests.get(emulator.url + SOURCES, params=fields, timeout=TIMEOUT)
    assert got.status_code == 200
    assert got.json() == post(emulator, **fields).json()


def test_get_without_parameters_is_the_description(emulator: Emulator) -> None:
    reply = requests.get(emulator.url + SOURCES, timeout=TIMEOUT)
    assert reply.status_code == 200
    assert "diaObjectId" in reply.text
    with pytest.raises(ValueError, match="Expecting value"):
        json.loads(reply.text)


def test_query_string_wins_over_json_body(emulator: Emulator) -> None:
    single, small = emulator.catalog.named("single"), emulator.catalog.named("small")
    reply = requests.post(
        emulator.url + SOURCES,
        params={"diaObjectId": str(single), "columns": "r:diaObjectId"},
        json={"diaObjectId": str(small), "columns": "r:diaObjectId"},
        timeout=TIMEOUT,
    )
    assert reply.json() == [{"r:diaObjectId": single}]


def test_missing_object_id_is_a_400_with_a_python_repr(emulator: Emulator) -> None:
    reply = post(emulator, columns="r:band")
    assert reply.status_code == 400
    assert reply.text.startswith("{'status': 'error', 'text': 'A value for `diaObjectId`")
    with pytest.raises(ValueError, match="Expecting property name"):
        json.loads(reply.text)


def test_integer_object_id_is_a_500(emulator: Emulator) -> None:
    reply = post(emulator, diaObjectId=emulator.catalog.named("single"))
    assert reply.status_code == 500
    assert reply.json() == {"message": "Internal Server Error"}


def test_unknown_output_format_is_a_400(emulator: Emulator) -> None:
    reply = post(
        emulator, diaObjectId=str(emulator.catalog.named("single")), **{"output-format": "xml"}
    )
    assert reply.status_code == 400
    assert "Output format `xml` is not supported" in reply.text


def test_csv_output(emulator: Emulator) -> None:
    object_id = emulator.catalog.named("small")
    reply = post(
        emulator,
        diaObjectId=str(object_id),
        columns="r:diaSourceId,r:band",
        **{"output-format": "csv"},
    )
    assert reply.status_code == 200
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    expected = emulator.catalog.records(object_id)
    assert [int(r["r:diaSourceId"]) for r in rows] == [r["r:diaSourceId"] for r in expected]
    assert [r["r:band"] for r in rows] == [r["r:band"] for r in expected]


def test_votable_output(emulator: Emulator) -> None:
    from astropy.table import Table

    object_id = emulator.catalog.named("small")
    reply = post(
        emulator,
        diaObjectId=str(object_id),
        columns="r:diaSourceId,r:band,r:psfFlux",
        **{"output-format": "votable"},
    )
    assert reply.status_code == 200
    table = Table.read(io.BytesIO(reply.content), format="votable", use_names_over_ids=True)
    expected = emulator.catalog.records(object_id)
    assert list(table["r:diaSourceId"]) == [r["r:diaSourceId"] for r in expected]
    assert list(table["r:band"]) == [r["r:band"] for r in expected]


def test_parquet_output_is_honest_about_its_engine(emulator: Emulator) -> None:
    from finkcube.emulator.tables import parquet_available

    object_id = emulator.catalog.named("single")
    reply = post(emulator, diaObjectId=str(object_id), **{"output-format": "parquet"})
    if parquet_available():
        assert reply.status_code == 200
        assert reply.content[:4] == b"PAR1"
    else:
        assert reply.status_code == 501
        assert "pyarrow" in reply.text


def test_seed_documentation_sources_snippet(emulator: Emulator) -> None:
    object_id = str(emulator.catalog.named("real"))
    # The service's own snippet, with the URL and the object swapped for the emulator's.
    r = requests.post(
        f"{emulator.url}/api/v1/sources",
        json={"diaObjectId": object_id, "columns": "r:diaSourceId,r:midpointMjdTai"},
        timeout=TIMEOUT,
    )
    records = r.json()
    assert set(records[0]) == {"r:diaSourceId", "r:midpointMjdTai"}
    assert records[0]["r:midpointMjdTai"] > records[-1]["r:midpointMjdTai"]


def test_solar_system_alerts_are_not_in_the_table(emulator: Emulator) -> None:
    reply = post(emulator, diaObjectId="0")
    assert reply.json() == []


def test_at_most_the_row_cap_per_object(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finkcube.emulator import app

    assert app.MAX_ROWS_PER_OBJECT == 10_000
    monkeypatch.setattr(app, "MAX_ROWS_PER_OBJECT", 3)
    object_id = emulator.catalog.named("small")
    records = post(emulator, diaObjectId=str(object_id), columns="r:diaSourceId").json()
    # The oldest 3, as the service's ascending row-key scan with a limit gives them.
    assert [r["r:diaSourceId"] for r in records] == emulator.catalog.source_ids(object_id)[-3:]


def test_unknown_requested_column_is_absent(emulator: Emulator) -> None:
    object_id = emulator.catalog.named("single")
    records = post(emulator, diaObjectId=str(object_id), columns="r:band,r:noSuchColumn").json()
    assert list(records[0]) == ["r:band"]


def test_non_numeric_object_id_matches_nothing(emulator: Emulator) -> None:
    reply = post(emulator, diaObjectId="ZTF21abcdef")
    assert reply.status_code == 200
    assert reply.json() == []
