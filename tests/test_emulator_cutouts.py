"""``/api/v1/cutouts`` of the emulator, over real sockets: formats, kinds, quirks, errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import requests
from astropy.io import fits
from PIL import Image

from finkcube.emulator import Emulator

CUTOUTS = "/api/v1/cutouts"
TIMEOUT = 30
KINDS = ("Science", "Template", "Difference")


def post(emu: Emulator, **fields: object) -> requests.Response:
    return requests.post(emu.url + CUTOUTS, json=fields, timeout=TIMEOUT)


def newest_source(emu: Emulator, name: str) -> int:
    return emu.catalog.source_ids(emu.catalog.named(name))[0]


@pytest.mark.parametrize("kind", KINDS)
def test_array_one_kind_equals_the_fits_data(emulator: Emulator, kind: str) -> None:
    source_id = newest_source(emulator, "small")
    reply = post(emulator, diaSourceId=str(source_id), kind=kind, **{"output-format": "array"})
    assert reply.status_code == 200
    payload = reply.json()
    assert list(payload) == [f"b:cutout{kind}"]
    plane = np.array(payload[f"b:cutout{kind}"], dtype=np.float32)
    with fits.open(io.BytesIO(emulator.catalog.fits(source_id, kind))) as hdus:
        np.testing.assert_array_equal(plane, hdus[0].data)


def test_array_all_has_three_sorted_keys(emulator: Emulator) -> None:
    source_id = newest_source(emulator, "small")
    reply = post(emulator, diaSourceId=str(source_id), kind="All", **{"output-format": "array"})
    assert reply.status_code == 200
    assert list(reply.json()) == ["b:cutoutDifference", "b:cutoutScience", "b:cutoutTemplate"]
    for kind in KINDS:
        np.testing.assert_array_equal(
            np.array(reply.json()[f"b:cutout{kind}"], dtype=np.float32),
            emulator.catalog.array(source_id, kind),
        )


def test_blank_pixels_are_bare_nan_tokens(emulator: Emulator) -> None:
    source_id = newest_source(emulator, "nan_edges")
    reply = post(emulator, diaSourceId=str(source_id), kind="Science", **{"output-format": "array"})
    assert "NaN" in reply.text
    assert '"NaN"' not in reply.text
    plane = np.array(json.loads(reply.text)["b:cutoutScience"], dtype=np.float32)
    assert np.isnan(plane).any()
    assert not np.isnan(plane).all()
    np.testing.assert_array_equal(plane, emulator.catalog.array(source_id, "Science"))


def test_fits_is_the_served_file(emulator: Emulator) -> None:
    source_id = newest_source(emulator, "mixed_sizes")
    reply = post(emulator, diaSourceId=str(source_id), kind="Template", **{"output-format": "FITS"})
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/octet-stream"
    assert reply.content == emulator.catalog.fits(source_id, "Template")


def test_png_default_is_grey(emulator: Emulator) -> None:
    source_id = newest_source(emulator, "small")
    reply = post(emulator, diaSourceId=str(source_id), kind="Science")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(reply.content))
    side = emulator.catalog.array(source_id, "Science").shape[0]
    assert image.mode == "L"
    assert image.size == (side, side)


def test_unknown_source_is_an_empty_200(emulator: Emulator) -> None:
    for output_format in ("PNG", "FITS", "array"):
        reply = post(
            emulator, diaSourceId="123456789012345678", kind="Science",
            **{"output-format": output_format},
        )  # fmt: skip
        assert reply.status_code == 200
        assert reply.content == b""


def test_missing_fields_are_400_python_repr(emulator: Emulator) -> None:
    no_kind = post(emulator, diaSourceId=str(newest_source(emulator, "small")))
    assert no_kind.status_code == 400
    assert no_kind.text.startswith("{'status': 'error', 'text': 'A value for `kind` is required.")
    no_id = post(emulator, kind="Science")
    assert no_id.status_code == 400
    assert "`diaSourceId`" in no_id.text


def test_bad_output_format_is_400_and_bad_kind_is_500(emulator: Emulator) -> None:
    source_id = str(newest_source(emulator, "small"))
    bad_format = post(emulator, diaSourceId=source_id, kind="Science", **{"output-format": "jpg"})
    assert bad_format.status_code == 400
    assert bad_format.text.startswith("{'status': 'error'")
    bad_kind = post(emulator, diaSourceId=source_id, kind="science")
    assert bad_kind.status_code == 500
    assert bad_kind.json() == {"message": "Internal Server Error"}


@pytest.mark.parametrize("output_format", ["FITS", "PNG"])
def test_kind_all_needs_array(emulator: Emulator, output_format: str) -> None:
    source_id = str(newest_source(emulator, "small"))
    reply = post(emulator, diaSourceId=source_id, kind="All", **{"output-format": output_format})
    assert reply.status_code == 400
    assert "kind=All" in reply.text


def test_integer_source_id_is_a_500(emulator: Emulator) -> None:
    reply = post(emulator, diaSourceId=newest_source(emulator, "small"), kind="Science")
    assert reply.status_code == 500
    assert reply.json() == {"message": "Internal Server Error"}


def test_get_with_query_args_and_query_wins(emulator: Emulator) -> None:
    source_id = str(newest_source(emulator, "small"))
    fields = {"diaSourceId": source_id, "kind": "Difference", "output-format": "FITS"}
    got = requests.get(emulator.url + CUTOUTS, params=fields, timeout=TIMEOUT)
    assert got.content == emulator.catalog.fits(int(source_id), "Difference")
    mixed = requests.post(
        emulator.url + CUTOUTS,
        params=fields,
        json={**fields, "kind": "Science"},
        timeout=TIMEOUT,
    )
    assert mixed.content == got.content


def test_get_without_parameters_is_the_description(emulator: Emulator) -> None:
    reply = requests.get(emulator.url + CUTOUTS, timeout=TIMEOUT)
    assert reply.status_code == 200
    assert "cutout" in reply.text.lower()


def test_null_cutout_is_a_500_or_an_html_page_for_fits(emulator: Emulator) -> None:
    object_id = emulator.catalog.named("missing_cutout")
    nulls = [
        s
        for s in emulator.catalog.source_ids(object_id)
        if emulator.catalog.fits(s, "Science") is None
    ]
    assert len(nulls) == 1
    for kind, output_format in [("Science", "PNG"), ("Template", "FITS"), ("All", "array")]:
        reply = post(
            emulator, diaSourceId=str(nulls[0]), kind=kind, **{"output-format": output_format}
        )
        if output_format == "FITS":  # the cutout service's HTML error page, status 200
            assert reply.status_code == 200
            assert reply.text.lower().startswith("<!doctype html>")
        else:
            assert reply.status_code == 500


def test_mismatched_source_has_kinds_of_different_shapes(emulator: Emulator) -> None:
    object_id = emulator.catalog.named("mismatched")
    shapes = {
        s: {emulator.catalog.array(s, k).shape for k in KINDS}
        for s in emulator.catalog.source_ids(object_id)
    }
    assert sorted(len(v) for v in shapes.values()) == [1, 1, 1, 1, 1, 2]


def test_kind_all_without_output_format_is_a_500(emulator: Emulator) -> None:
    # The service reads payload["output-format"] for kind=All before defaulting it.
    reply = post(emulator, diaSourceId=str(newest_source(emulator, "small")), kind="All")
    assert reply.status_code == 500
    assert reply.json() == {"message": "Internal Server Error"}


def test_fits_reply_names_the_file(emulator: Emulator) -> None:
    object_id = emulator.catalog.named("small")
    source_id = emulator.catalog.source_ids(object_id)[0]
    reply = post(emulator, diaSourceId=str(source_id), kind="Science", **{"output-format": "FITS"})
    assert reply.headers["Content-Disposition"] == (
        f"attachment; filename={object_id}_Science.fits"
    )


def test_failing_cutout_store_answers_fits_200_with_an_error_text(emulator: Emulator) -> None:
    catalog = emulator.catalog
    broken = [s for s in catalog.source_ids(catalog.named("store_error")) if catalog.store_fails(s)]
    assert len(broken) == 1
    source_id = str(broken[0])
    reply = post(emulator, diaSourceId=source_id, kind="Science", **{"output-format": "FITS"})
    assert reply.status_code == 200
    assert not reply.content.startswith(b"SIMPLE")
    assert reply.content == catalog.fits(broken[0], "Science")
    for output_format in ("array", "PNG"):
        reply = post(
            emulator, diaSourceId=source_id, kind="Science", **{"output-format": output_format}
        )
        assert reply.status_code == 500
