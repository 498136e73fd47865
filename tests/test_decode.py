"""Unit tests of finkcube.service.decode: reply bytes in, numpy planes and value objects out."""

from __future__ import annotations

import io
import json
import math
from importlib import resources

import numpy as np
import pytest
from astropy.io import fits

from finkcube.errors import CubeError, DecodeError, NotFoundError
from finkcube.names import KINDS, cutout_key
from finkcube.service.decode import (
    SourceCutouts,
    Stamp,
    decode_cutout_arrays,
    decode_fits,
    decode_json,
    decode_source_records,
    looks_like_fits,
    stamps_from_arrays,
    stamps_from_fits,
)


def _array_reply(arrays: dict[str, np.ndarray], order: list[str] | None = None) -> bytes:
    """Write arrays as the service does: float32 pixels as Python floats, bare NaN tokens."""
    kinds = order or list(arrays)
    body = {cutout_key(k): [[float(x) for x in row] for row in arrays[k]] for k in kinds}
    return json.dumps(body).encode()  # json.dumps writes NaN / Infinity as bare tokens


def _random_planes(side: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    planes = {k: rng.normal(0, 500, (side, side)).astype(np.float32) for k in KINDS}
    planes["Science"][:2, :] = np.nan
    return planes


def _assert_bitwise(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype == np.float32
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


# ---------------------------------------------------------------- JSON and records


def test_decode_json_accepts_bare_nan_and_infinity() -> None:
    value = decode_json(b'{"a": [NaN, Infinity, -Infinity, 1.5]}')
    a = value["a"]
    assert math.isnan(a[0])
    assert a[1:] == [math.inf, -math.inf, 1.5]


def test_decode_json_garbage_quotes_start_of_body() -> None:
    with pytest.raises(DecodeError, match=r"not JSON.*<html><body>Bad Gateway"):
        decode_json(b"<html><body>Bad Gateway</body></html>")


def test_source_records_ids_exact_and_nulls() -> None:
    big = 2**63 - 1
    near = 313761043604045881  # not representable as a float64
    assert float(near) != near
    body = json.dumps(
        [
            {"r:diaSourceId": near, "r:diaObjectId": big, "r:band": None, "r:psfFlux": 1.25},
            {"r:diaSourceId": near - 1, "r:diaObjectId": big, "r:band": "g", "r:psfFlux": None},
        ]
    ).encode()
    records = decode_source_records(body)
    assert [r["r:diaSourceId"] for r in records] == [near, near - 1]
    assert all(type(r["r:diaSourceId"]) is int for r in records)
    assert records[0]["r:diaObjectId"] == big
    assert records[0]["r:band"] is None
    assert records[1]["r:psfFlux"] is None


def test_source_records_accept_empty_list() -> None:
    assert decode_source_records(b"[]") == []
    assert decode_source_records("[]") == []


@pytest.mark.parametrize("body", [b'{"r:diaSourceId": 1}', b"[1, 2]", b"oops", b""])
def test_source_records_reject_non_records(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_source_records(body)


# ---------------------------------------------------------------- array replies


def test_cutout_arrays_round_trip_with_nan() -> None:
    planes = _random_planes(30)
    arrays = decode_cutout_arrays(_array_reply(planes), source_id=12)
    assert list(arrays) == list(KINDS)
    for kind in KINDS:
        _assert_bitwise(arrays[kind], planes[kind])
        assert arrays[kind].dtype.isnative
    assert np.isnan(arrays["Science"][:2]).all()


def test_cutout_arrays_key_order_irrelevant() -> None:
    planes = _random_planes(31, seed=1)
    served = _array_reply(planes, order=["Difference", "Science", "Template"])
    assert served.index(b"Difference") < served.index(b"Science")
    arrays = decode_cutout_arrays(served, source_id=12)
    for kind in KINDS:
        _assert_bitwise(arrays[kind], planes[kind])


def test_cutout_arrays_float32_exact_including_extremes() -> None:
    rng = np.random.default_rng(42)
    bits = rng.integers(0, 2**32, size=30 * 30, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32).copy()
    values[~np.isfinite(values)] = 0.0
    info = np.finfo(np.float32)
    specials = [
        info.max,
        -info.max,
        info.tiny,  # smallest normal
        info.smallest_subnormal,
        -info.smallest_subnormal,
        np.float32(1.17e-39),  # a subnormal
        info.eps,
        np.float32(-0.0),
        np.float32(0.1),
        np.float32(np.nan),
    ]
    values[: len(specials)] = specials
    plane = values.reshape(30, 30)
    body = _array_reply({"Science": plane})
    decoded = decode_cutout_arrays(body, source_id=1, kinds=["Science"])["Science"]
    nan = np.isnan(plane)
    assert nan.sum() == 1
    assert np.isnan(decoded[nan]).all()
    np.testing.assert_array_equal(decoded[~nan].view(np.uint32), plane[~nan].view(np.uint32))


def test_cutout_arrays_infinity_tokens_survive() -> None:
    plane = np.array([[np.inf, -np.inf], [np.nan, 2.5]], np.float32)
    decoded = decode_cutout_arrays(
        _array_reply({"Template": plane}), source_id=1, kinds=["Template"]
    )
    np.testing.assert_array_equal(decoded["Template"], plane)


@pytest.mark.parametrize("body", [b"", b"  \n", ""])
def test_cutout_arrays_empty_body_is_not_found(body: bytes) -> None:
    with pytest.raises(NotFoundError, match="no alert with diaSourceId 313761043604045881"):
        decode_cutout_arrays(body, source_id=313761043604045881)


def test_cutout_arrays_missing_key() -> None:
    planes = _random_planes(30)
    del planes["Template"]
    with pytest.raises(DecodeError, match="lacks 'b:cutoutTemplate'"):
        decode_cutout_arrays(_array_reply(planes), source_id=5)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"b:cutoutScience": [[1.0, 2.0], [3.0]]}', "rectangular"),
        (b'{"b:cutoutScience": [1.0, 2.0]}', "2-D"),
        (b'{"b:cutoutScience": []}', "2-D"),
        (b'{"b:cutoutScience": null}', "2-D"),
        (b'{"b:cutoutScience": [["a", "b"]]}', "rectangular"),
        (b'{"b:cutoutScience": [[1e300]]}', "float32"),
        (b"[1, 2]", "not a JSON object"),
    ],
)
def test_cutout_arrays_bad_values(body: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_cutout_arrays(body, source_id=5, kinds=["Science"])


def test_cutout_arrays_garbage_quotes_body() -> None:
    with pytest.raises(DecodeError, match="'Internal error: HBase timeout"):
        decode_cutout_arrays(b"Internal error: HBase timeout\n", source_id=5)


# ---------------------------------------------------------------- FITS


def _rubin_fits(
    side: int = 30, *, mask: bool = False, psf_side: int = 41, seed: int = 0, utype: str = "Var"
) -> tuple[bytes, dict[str, np.ndarray]]:
    """A cutout file shaped like Rubin's (CCDData): big-endian data, UNCERT, MASK?, PSFIMAGE."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0, 100, (side, side)).astype(">f4")
    data[0, 0] = np.nan
    variance = rng.uniform(1, 10, (side, side)).astype(">f4")
    psf = rng.uniform(0, 1, (psf_side, psf_side)).astype(">f8")
    primary = fits.PrimaryHDU(data)
    primary.header["BUNIT"] = "nJy"
    primary.header["CUTMINX"] = 1198
    primary.header["CRVAL1"] = 63.349628499442
    uncert = fits.ImageHDU(variance, name="UNCERT")
    uncert.header["UTYPE"] = "VarianceUncertainty" if utype == "Var" else "StdDevUncertainty"
    hdus = [primary, uncert]
    expected = {"data": data, "variance": variance, "psf": psf}
    if mask:
        bits = rng.integers(0, 256, (side, side)).astype(">i2")
        hdus.append(fits.ImageHDU(bits, name="MASK"))
        expected["mask"] = bits
    hdus.append(fits.ImageHDU(psf, name="PSFIMAGE"))
    buffer = io.BytesIO()
    fits.HDUList(hdus).writeto(buffer)
    return buffer.getvalue(), expected


def test_decode_fits_planes_psf_header() -> None:
    content, expected = _rubin_fits(33, psf_side=41)
    stamp = decode_fits(content, kind="Difference", source_id=9)
    assert stamp.kind == "Difference"
    assert list(stamp.planes) == ["data", "variance"]
    for name in ("data", "variance"):
        plane = stamp.planes[name]
        assert plane.dtype == np.float32
        assert plane.dtype.isnative
        np.testing.assert_array_equal(plane, expected[name].astype(np.float32))
    assert stamp.side == 33
    assert stamp.psf is not None
    assert stamp.psf.dtype == np.float64
    assert stamp.psf.dtype.isnative
    assert stamp.psf.shape == (41, 41)
    np.testing.assert_array_equal(stamp.psf, expected["psf"])
    assert stamp.header is not None
    header = fits.Header.fromstring(stamp.header)
    assert header["BUNIT"] == "nJy"
    assert header["CUTMINX"] == 1198
    assert header["CRVAL1"] == pytest.approx(63.349628499442)


def test_decode_fits_with_mask() -> None:
    content, expected = _rubin_fits(30, mask=True, seed=3)
    stamp = decode_fits(content, kind="Science", source_id=9)
    assert list(stamp.planes) == ["data", "variance", "mask"]
    mask = stamp.planes["mask"]
    assert np.issubdtype(mask.dtype, np.integer)
    assert mask.dtype.isnative
    np.testing.assert_array_equal(mask, expected["mask"])


def test_decode_fits_stddev_uncertainty_becomes_variance() -> None:
    content, expected = _rubin_fits(30, utype="Std")
    stamp = decode_fits(content, kind="Science", source_id=9)
    sigma = expected["variance"].astype(np.float32)
    np.testing.assert_allclose(stamp.planes["variance"], sigma * sigma, rtol=1e-6)


def test_decode_fits_real_rubin_sample() -> None:
    fastavro = pytest.importorskip("fastavro")
    # The real sample ships inside the package (the emulator serves it).
    path = resources.files("finkcube.emulator") / "data" / "rubin-alerts-sample.avro"
    with path.open("rb") as handle:
        alert = next(iter(fastavro.reader(handle)))
    stamps = {kind: decode_fits(alert["cutout" + kind], kind=kind, source_id=1) for kind in KINDS}
    cutouts = stamps_from_fits(1, stamps)
    assert cutouts.side >= 30
    for stamp in cutouts.stamps:
        assert set(stamp.planes) >= {"data", "variance"}
        assert stamp.psf is not None
        assert stamp.psf.ndim == 2


@pytest.mark.parametrize(
    "body",
    [
        b"Error: could not read the cutout from HBase",
        b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
        b"\x00\x01\x02" * 1000,
    ],
)
def test_decode_fits_rejects_non_fits(body: bytes) -> None:
    start = body[:10].decode("utf-8", "replace")
    with pytest.raises(DecodeError, match="not a FITS file") as info:
        decode_fits(body, kind="Science", source_id=4)
    if start.isprintable():
        assert start in str(info.value)


@pytest.mark.parametrize("keep", [2880, 2880 + 1000, 2 * 2880, -100])
def test_decode_fits_truncated_file(keep: int) -> None:
    content, _ = _rubin_fits(30)
    with pytest.raises(DecodeError, match="Template FITS cutout of diaSourceId 4 is truncated"):
        decode_fits(content[:keep], kind="Template", source_id=4)


def test_decode_fits_empty_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="diaSourceId 4"):
        decode_fits(b"", kind="Science", source_id=4)


def test_looks_like_fits_without_simple() -> None:
    content, _ = _rubin_fits(30)
    assert looks_like_fits(content)
    no_simple = b"XTENSION= 'IMAGE   '".ljust(2880)
    assert looks_like_fits(no_simple)
    assert not looks_like_fits(b"SIMPL")


# ---------------------------------------------------------------- value objects


def test_stamps_from_arrays_in_kinds_order() -> None:
    planes = _random_planes(40)
    reordered = {k: planes[k] for k in reversed(KINDS)}
    cutouts = stamps_from_arrays(77, reordered)
    assert cutouts.source_id == 77
    assert [s.kind for s in cutouts.stamps] == list(KINDS)
    assert cutouts.side == 40
    for stamp in cutouts.stamps:
        assert list(stamp.planes) == ["data"]
        assert stamp.psf is None
        assert stamp.header is None
        np.testing.assert_array_equal(stamp.planes["data"], planes[stamp.kind])


def test_mismatched_kind_shapes_raise_cube_error() -> None:
    planes = _random_planes(30)
    planes["Template"] = np.zeros((32, 32), np.float32)
    with pytest.raises(CubeError, match=r"diaSourceId 88.*Template\.data \(32, 32\)"):
        stamps_from_arrays(88, planes)


def test_non_square_stamp_raises_cube_error() -> None:
    planes = {k: np.zeros((30, 31), np.float32) for k in KINDS}
    with pytest.raises(CubeError, match="square 2-D"):
        stamps_from_arrays(88, planes)


def test_plane_shapes_within_stamp_must_agree() -> None:
    good = np.zeros((30, 30), np.float32)
    stamps = [Stamp(k, {"data": good, "variance": good}) for k in KINDS]
    stamps[1] = Stamp("Template", {"data": good, "variance": np.zeros((29, 29), np.float32)})
    with pytest.raises(CubeError, match=r"Template\.variance \(29, 29\)"):
        SourceCutouts(3, tuple(stamps))


def test_missing_or_misordered_kinds_raise_cube_error() -> None:
    good = np.zeros((30, 30), np.float32)
    with pytest.raises(CubeError, match="no cutout of kind"):
        stamps_from_arrays(3, {"Science": good, "Template": good})
    with pytest.raises(CubeError, match="expected exactly"):
        SourceCutouts(3, tuple(Stamp(k, {"data": good}) for k in reversed(KINDS)))
    with pytest.raises(CubeError, match="'data' plane is required"):
        Stamp("Science", {"variance": good})


def test_value_objects_are_frozen() -> None:
    stamp = Stamp("Science", {"data": np.zeros((30, 30), np.float32)})
    with pytest.raises(AttributeError):
        stamp.kind = "Template"  # type: ignore[misc]
