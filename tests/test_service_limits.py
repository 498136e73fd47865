"""A server cannot exhaust or stall the client: deadlines, capped bodies, bounded shapes.

The hostile replies come from the emulator's forced faults (a request header, sent through a
session of the test's own) or from a small loopback server where a reply must change from
one try to the next.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
import pytest
import requests

from finkcube.emulator import Emulator
from finkcube.emulator.faults import FORCED_FAULT_HEADER, compressed_fits
from finkcube.errors import DecodeError, InputError, ServiceError, TransportError
from finkcube.service import FinkClient
from finkcube.service.decode import decode_cutout_arrays, decode_fits, decode_source_records
from finkcube.service.limits import MAX_CUTOUT_BYTES, OversizeReplyError
from tests._loopback import Loopback


def _client(url: str, fault: str | None = None, **kwargs: Any) -> FinkClient:
    """A client of ``url`` whose every request asks the emulator for ``fault``."""
    session = requests.Session()
    if fault is not None:
        session.headers[FORCED_FAULT_HEADER] = fault
    settings: dict[str, Any] = {
        "session": session, "workers": 2, "timeout": 5.0, "retries": 0,
        "backoff": 0.001, "max_backoff": 0.01, "env": {},
    }  # fmt: skip
    settings.update(kwargs)
    return FinkClient(url, **settings)


def _source(emulator: Emulator) -> int:
    return int(emulator.catalog.source_ids(emulator.catalog.named("single"))[0])


@pytest.fixture
def object_id(emulator: Emulator) -> int:
    return int(emulator.catalog.named("single"))


# ---------------------------------------------------------------------------- deadline


def test_a_dripped_reply_is_cut_at_the_deadline(emulator: Emulator, object_id: int) -> None:
    # One byte every 50 ms: each read comes well within the 5 s timeout, the whole never.
    with _client(emulator.url, "drip=0.05", deadline=0.5) as client:
        started = time.monotonic()
        with pytest.raises(TransportError, match=r"within the 0.5 s deadline"):
            client.source_records(object_id)
        assert time.monotonic() - started < 3.0


class _DripThenServe(Loopback):
    """A loopback server: the first request gets its body dripped, the next ones at once."""

    body = b'[{"r:diaSourceId": 1}]'

    def __init__(self) -> None:
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                if owner.hits > 1:
                    self.wfile.write(owner.body)
                    return
                self.close_connection = True
                try:
                    for byte in owner.body:
                        self.wfile.write(bytes((byte,)))
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)


def test_a_try_past_its_deadline_is_retried_as_a_timeout() -> None:
    with _DripThenServe() as server, _client(server.url, deadline=0.5, retries=1) as client:
        assert client.source_records(1) == [{"r:diaSourceId": 1}]
        assert server.hits == 2


def test_the_deadline_defaults_to_four_timeouts_and_is_checked() -> None:
    assert FinkClient("http://127.0.0.1:1", timeout=2.0, env={}).deadline == 8.0
    with pytest.raises(InputError, match="deadline"):
        FinkClient("http://127.0.0.1:1", deadline=0, env={})


# ---------------------------------------------------------------------------- body caps


def test_an_oversize_sources_reply_is_refused_without_retry(
    emulator: Emulator, object_id: int
) -> None:
    before = emulator.requests["/api/v1/sources"]
    with _client(emulator.url, "oversize=50000000", retries=3, max_sources_bytes=10**6) as client:
        started = time.monotonic()
        with pytest.raises(OversizeReplyError, match=r"cap of 1000000 bytes \(max_sources_bytes\)"):
            client.source_records(object_id)
        assert time.monotonic() - started < 3.0
    assert emulator.requests["/api/v1/sources"] == before + 1  # not asked again


def test_a_cutout_reply_past_the_default_cap_is_refused(emulator: Emulator) -> None:
    client = _client(emulator.url, "oversize=256000000")
    with client, pytest.raises(DecodeError, match=rf"cap of {MAX_CUTOUT_BYTES} bytes") as info:
        client.cutouts(_source(emulator))
    assert "\n" not in str(info.value)
    assert "cutout of diaSourceId" in str(info.value)


class _Unannounced(Loopback):
    """A loopback server answering 200 with ``size`` bytes and no Content-Length."""

    def __init__(self, size: int) -> None:
        self.size = size
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # HTTP/1.0: the body ends when the connection does
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.end_headers()
                chunk = b" " * 65536
                try:
                    for _ in range(owner.size // len(chunk)):
                        self.wfile.write(chunk)
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def __enter__(self) -> str:  # type: ignore[override]
        return self.start().url


def test_a_body_without_a_length_is_cut_at_the_cap_while_it_arrives() -> None:
    refused = pytest.raises(OversizeReplyError, match=r"passed \d+ bytes, over the cap of 1048576")
    with _Unannounced(64 * 2**20) as url, _client(url, max_sources_bytes=2**20) as client, refused:
        client.source_records(1)


def test_the_caps_are_checked() -> None:
    with pytest.raises(InputError, match="max_cutout_bytes"):
        FinkClient("http://127.0.0.1:1", max_cutout_bytes=0, env={})
    with pytest.raises(InputError, match="max_sources_bytes"):
        FinkClient("http://127.0.0.1:1", max_sources_bytes=1.5, env={})  # type: ignore[arg-type]


def test_more_records_than_the_service_returns_are_refused_before_parsing() -> None:
    body = b"[" + b"{}," * 20_000 + b"{}]"
    with pytest.raises(OversizeReplyError, match="more than 20000 records"):
        decode_source_records(body, max_records=20_000)
    assert len(decode_source_records(body, max_records=20_001)) == 20_001


# ---------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("shape", "match"), [((103, 103), "side at most 102"), ((30, 31), "square"), ((1, 200), "102")]
)
def test_an_array_reply_larger_than_a_cutout_is_refused(shape: tuple[int, int], match: str) -> None:
    rows = ",".join("[" + ",".join(["1.0"] * shape[1]) + "]" for _ in range(shape[0]))
    body = b'{"b:cutoutScience": [' + rows.encode() + b"]}"
    with pytest.raises(DecodeError, match=match):
        decode_cutout_arrays(body, source_id=1, kinds=["Science"])


def _fits(side: int, psf_side: int = 41) -> bytes:
    from astropy.io import fits

    buffer = io.BytesIO()
    hdus = [fits.PrimaryHDU(np.zeros((side, side), ">f4"))]
    hdus.append(fits.ImageHDU(np.zeros((psf_side, psf_side), ">f8"), name="PSFIMAGE"))
    fits.HDUList(hdus).writeto(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (_fits(200), r"HDU 0 is 200x200 pixels, not a cutout \(square, side 30 to 102\)"),
        (_fits(30, psf_side=300), r"HDU 1 \(PSFIMAGE\) is 300x300 pixels"),
        (compressed_fits(100_000), r"PSFIMAGE\) is 100000x100000 pixels"),
    ],
    ids=["primary-200", "psf-300", "compressed-psf-100000"],
)
def test_a_fits_image_outside_the_contract_is_refused_from_its_header(
    content: bytes, match: str
) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_fits(content, kind="Science", source_id=1)


def test_a_fits_file_claiming_a_huge_compressed_image_fails_the_request(
    emulator: Emulator,
) -> None:
    refused = pytest.raises(ServiceError, match=r"undecodable reply.*100000x100000 pixels")
    with _client(emulator.url, "huge-fits=100000") as client, refused:
        client.cutout_fits(_source(emulator))


# ---------------------------------------------------------------------------- deep JSON


def test_deeply_nested_json_is_an_undecodable_reply_and_retried(
    emulator: Emulator, object_id: int
) -> None:
    before = emulator.requests["/api/v1/sources"]
    refused = pytest.raises(ServiceError, match=r"undecodable reply.* after 2 attempts.*nested")
    with _client(emulator.url, "deep-json=100000", retries=1) as client, refused:
        client.source_records(object_id)
    assert emulator.requests["/api/v1/sources"] == before + 2


def test_deeply_nested_cutout_json_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="nested too deep"):
        decode_cutout_arrays(b"[" * 100_000, source_id=1)


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    """The deadline's watchdog threads end with their request."""
    yield
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(
        isinstance(t, threading.Timer) for t in threading.enumerate()
    ):
        time.sleep(0.01)
    assert not any(isinstance(t, threading.Timer) for t in threading.enumerate())
