"""What the emulator serves is the real data, or looks like it: files, pixels, ids, objects."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fastavro
import numpy as np
import pytest
import requests
from astropy.io import fits

from finkcube.emulator import Catalog, Emulator, load_catalog
from finkcube.emulator.alerts import sample_alerts_path
from finkcube.errors import NotFoundError

CUTOUTS = "/api/v1/cutouts"
TIMEOUT = 30
KINDS = ("Science", "Template", "Difference")


def sample_records() -> list[dict]:
    with sample_alerts_path().open("rb") as stream:
        return list(fastavro.reader(stream))


def fetch(emu: Emulator, source_id: int, kind: str, output_format: str) -> requests.Response:
    return requests.post(
        emu.url + CUTOUTS,
        json={"diaSourceId": str(source_id), "kind": kind, "output-format": output_format},
        timeout=TIMEOUT,
    )


def open_fits(raw: bytes) -> fits.HDUList:
    return fits.open(io.BytesIO(raw), ignore_missing_simple=True)


def test_the_packaged_sample_holds_five_real_alerts() -> None:
    records = sample_records()
    assert len(records) == 5
    # Two of the five are solar-system objects, which Rubin files under diaObjectId 0.
    assert sum(r["diaSource"]["diaObjectId"] == 0 for r in records) == 2
    for record in records:
        assert record["diaSource"]["diaSourceId"] == record["diaSourceId"]
        # An object's alert carries its history; a solar-system alert carries none.
        has_history = len(record["prvDiaSources"] or ()) >= 300
        assert has_history == (record["diaSource"]["diaObjectId"] != 0)
        for kind in KINDS:
            with open_fits(record["cutout" + kind]) as hdus:
                assert hdus[0].header["BUNIT"] == "nJy"
                assert hdus[0].data.ndim == 2


@pytest.mark.parametrize("kind", KINDS)
def test_real_cutouts_are_byte_identical_and_arrays_value_identical(
    emulator: Emulator, kind: str
) -> None:
    records = sample_records()
    assert len(records) == 5
    for record in records:
        source_id = record["diaSource"]["diaSourceId"]
        served = fetch(emulator, source_id, kind, "FITS")
        assert served.status_code == 200
        assert served.content == record["cutout" + kind]
        array = fetch(emulator, source_id, kind, "array").json()["b:cutout" + kind]
        with open_fits(record["cutout" + kind]) as hdus:
            expected = hdus[0].data
        np.testing.assert_array_equal(np.array(array, dtype=np.float32), expected)


def test_solar_system_alerts_serve_cutouts_but_no_sources(emulator: Emulator) -> None:
    solar = [r for r in sample_records() if r["diaSource"]["diaObjectId"] == 0]
    assert len(solar) == 2
    for record in solar:
        source_id = record["diaSource"]["diaSourceId"]
        assert fetch(emulator, source_id, "Science", "FITS").content == record["cutoutScience"]
    assert 0 not in emulator.catalog.object_ids()


def test_real_object_serves_its_earlier_sources(emulator: Emulator) -> None:
    object_id = emulator.catalog.named("real")
    record = next(r for r in sample_records() if r["diaSource"]["diaObjectId"] == object_id)
    served = {r["r:diaSourceId"] for r in emulator.catalog.records(object_id)}
    earlier = {s["diaSourceId"] for s in record["prvDiaSources"]}
    assert served == earlier | {record["diaSource"]["diaSourceId"]}


def test_generated_cutouts_of_real_sources_look_like_the_real_ones(emulator: Emulator) -> None:
    catalog = emulator.catalog
    object_id = catalog.named("real")
    real_id, *earlier = catalog.source_ids(object_id)
    assert real_id in catalog.real_source_ids()
    for kind in KINDS:
        with open_fits(catalog.fits(real_id, kind)) as real:
            real_layout = [(h.name, h.data.dtype, list(h.header)) for h in real]
            real_noise = float(np.nanmedian(real["UNCERT"].data))
        with open_fits(fetch(emulator, earlier[5], kind, "FITS").content) as fake:
            fake_layout = [(h.name, h.data.dtype, list(h.header)) for h in fake]
            fake_noise = float(np.nanmedian(fake["UNCERT"].data))
            assert fake[0].header["BUNIT"] == "nJy"
            assert fake["UNCERT"].header["UTYPE"] == "VarianceUncertainty"
            assert "CTYPE1" not in fake[0].header
            psf_side = fake["PSFIMAGE"].data.shape[0]
        assert fake_layout == real_layout
        assert 0.5 < fake_noise / real_noise < 2.0
        assert psf_side == (41 if kind != "Template" else psf_side)
        assert psf_side in ((41,) if kind != "Template" else (51, 53, 55))


def test_generated_stamp_side_follows_bbox_size(emulator: Emulator) -> None:
    catalog = emulator.catalog
    for record in catalog.records(catalog.named("real"))[1:40]:
        side = catalog.array(record["r:diaSourceId"], "Science").shape[0]
        assert side == min(max(record["r:bboxSize"], 30), 102)


def test_difference_flux_follows_psf_flux(emulator: Emulator) -> None:
    catalog = emulator.catalog
    checked = 0
    for record in catalog.records(catalog.named("large")):
        flux = record["r:psfFlux"]
        if abs(flux) < 8000:
            continue
        if checked == 10:
            break
        source_id = record["r:diaSourceId"]
        total = float(np.nansum(catalog.array(source_id, "Difference")))
        with open_fits(catalog.fits(source_id, "Difference")) as hdus:
            noise = float(np.sqrt(np.nansum(hdus["UNCERT"].data)))
        assert abs(total - flux) < 0.05 * abs(flux) + 5 * noise
        checked += 1
    assert checked >= 5


def test_named_objects_cover_what_real_data_brings(emulator: Emulator) -> None:
    catalog = emulator.catalog
    assert len(catalog.records(catalog.named("single"))) == 1
    assert len(catalog.records(catalog.named("large"))) >= 1000
    small = catalog.source_ids(catalog.named("small"))
    assert 3 <= len(small) <= 10
    assert all(30 <= catalog.array(s, "Science").shape[0] <= 40 for s in small)
    mixed = catalog.source_ids(catalog.named("mixed_sizes"))
    sides = {catalog.array(s, "Science").shape[0] for s in mixed}
    assert len(mixed) >= 12
    assert {30, 102} <= sides
    assert any(side % 2 for side in sides)
    assert any(side % 2 == 0 for side in sides)
    for source_id in catalog.source_ids(catalog.named("nan_edges")):
        plane = catalog.array(source_id, "Template")
        assert np.isnan(plane[0]).all()
        assert np.isfinite(plane[plane.shape[0] // 2, : plane.shape[1] // 2]).all()
    for source_id in catalog.source_ids(catalog.named("with_mask")):
        with open_fits(catalog.fits(source_id, "Science")) as hdus:
            assert [h.name for h in hdus] == ["PRIMARY", "MASK", "UNCERT", "PSFIMAGE"]
            assert hdus["MASK"].data.dtype.kind == "i"
    with pytest.raises(NotFoundError, match="no object named"):
        catalog.named("nope")


def test_generated_ids_look_real_and_never_collide(emulator: Emulator) -> None:
    catalog = emulator.catalog
    real_ids = set(catalog.real_source_ids())
    generated = [o for o in catalog.object_ids() if o != catalog.named("real")]
    sources = [s for o in catalog.object_ids() for s in catalog.source_ids(o)]
    assert len(sources) == len(set(sources))
    for identifier in [*generated, *sources]:
        assert 10**17 <= identifier < 2**63
    assert not real_ids & set(generated)


def test_generation_is_deterministic_and_seeded() -> None:
    first, again, other = Catalog(seed=3), Catalog(seed=3), Catalog(seed=4)
    source = first.source_ids(first.named("small"))[0]
    assert again.source_ids(again.named("small"))[0] == source
    assert again.fits(source, "Science") == first.fits(source, "Science")
    assert other.named("small") != first.named("small")
    assert first.bulk_objects(2) == again.bulk_objects(2)


def test_array_of_generated_cutout_equals_fits_data(emulator: Emulator) -> None:
    catalog = emulator.catalog
    for source_id in catalog.source_ids(catalog.named("mixed_sizes")):
        for kind in KINDS:
            with open_fits(catalog.fits(source_id, kind)) as hdus:
                np.testing.assert_array_equal(catalog.array(source_id, kind), hdus[0].data)
            assert catalog.array(source_id, kind).dtype == np.float32


def test_add_sources_newer_and_older() -> None:
    with Emulator() as emu:
        catalog = emu.catalog
        object_id = catalog.named("small")
        before = catalog.records(object_id)
        newest = before[0]["r:midpointMjdTai"]
        new = catalog.add_sources(object_id, 2)
        assert catalog.source_ids(object_id)[:2] == new[::-1]
        late = catalog.add_sources(object_id, 1, older=True)
        records = catalog.records(object_id)
        assert len(records) == len(before) + 3
        (late_record,) = [r for r in records if r["r:diaSourceId"] == late[0]]
        assert late_record["r:midpointMjdTai"] < newest
        served = requests.post(
            emu.url + "/api/v1/sources",
            json={"diaObjectId": str(object_id), "columns": "r:diaSourceId"},
            timeout=TIMEOUT,
        ).json()
        assert [r["r:diaSourceId"] for r in served] == catalog.source_ids(object_id)
        assert fetch(emu, late[0], "Science", "FITS").content == catalog.fits(late[0], "Science")
        with pytest.raises(NotFoundError):
            catalog.add_sources(1, 1)


def test_bulk_objects_are_served(emulator: Emulator) -> None:
    catalog = emulator.catalog
    ids = catalog.bulk_objects(3, sources=(20, 25))
    assert len(set(ids)) == 3
    for object_id in ids:
        assert object_id in catalog.object_ids()
        assert 20 <= len(catalog.records(object_id)) <= 25


def test_more_alert_files(tmp_path: Path) -> None:
    with sample_alerts_path().open("rb") as stream:
        reader = fastavro.reader(stream)
        schema = reader.writer_schema
        record = next(r for r in reader if r["diaSource"]["diaObjectId"] != 0)
    record["diaSource"]["diaSourceId"] = 123456789012345678
    record["diaSource"]["diaObjectId"] = 223456789012345678
    record["prvDiaSources"] = []
    extra = tmp_path / "extra.avro"
    with extra.open("wb") as stream:
        fastavro.writer(stream, schema, [record])
    catalog = load_catalog([extra])
    assert catalog.source_ids(223456789012345678) == [123456789012345678]
    assert catalog.fits(123456789012345678, "Science") == record["cutoutScience"]


def test_plane_json_keeps_every_float32_value() -> None:
    from finkcube.emulator.catalog import plane_json

    rng = np.random.default_rng(2)
    plane = (rng.normal(0.0, 1.0, (40, 41)) * 10.0 ** rng.integers(-8, 30, (40, 41))).astype(
        np.float32
    )
    plane[3, :7] = np.nan
    text = plane_json(plane)
    assert b"NaN" in text
    back = np.array(json.loads(text), dtype=np.float64)
    np.testing.assert_array_equal(back, plane.astype(np.float64))
    plane[0, 0] = np.inf
    assert b"Infinity" in plane_json(plane)
