"""Reliability (issue 5): retries, faults, crash safety, odd replies, bad options, TLS.

Everything talks over real sockets: to the emulator, or to a small scripted HTTP(S) server
started here for replies the emulator never gives (HTML pages, Python reprs, a Retry-After
of our choosing, a self-signed certificate).
"""

from __future__ import annotations

import logging
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import xarray as xr

from finkcube import FinkClient, build_store, open_cube, open_store
from finkcube.cli import main
from finkcube.emulator import FAULT_KINDS, Emulator
from finkcube.emulator.catalog import load_catalog
from finkcube.errors import (
    BadRequestError,
    IncompleteCubeError,
    InputError,
    ServiceError,
)
from finkcube.names import CUTOUTS_PATH, SOURCES_PATH
from finkcube.store import COMPLETE_ATTR, list_objects, store_summary
from tests._loopback import Loopback

#: Cube attributes that differ between two builds of the same data.
VOLATILE_ATTRS = ("created", "api_url", "missing_tried")  # missing_tried: when asked


# ---------------------------------------------------------------- helpers


Reply = tuple[int, dict[str, str], bytes]


class ScriptedServer(Loopback):
    """A real HTTP(S) server on loopback answering each request with the next reply.

    The last reply repeats once the script is used up. ``hits`` lists the paths asked,
    ``received`` the headers and body of each request.
    """

    def __init__(self, replies: Sequence[Reply]) -> None:
        self.replies = list(replies)
        self.hits: list[str] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner._lock:
                    index = min(len(owner.hits), len(owner.replies) - 1)
                    owner.hits.append(self.path)
                    owner.received.append((dict(self.headers.items()), body))
                status, headers, body = owner.replies[index]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test reads `hits`

        super().__init__(Handler)


def _client(url: str, **kwargs: Any) -> FinkClient:
    settings: dict[str, Any] = {
        "workers": 4,
        "timeout": 5.0,
        "retries": 2,
        "backoff": 0.001,
        "max_backoff": 0.01,
        "env": {},
    }
    settings.update(kwargs)
    return FinkClient(url, **settings)


def _fits_request(client: FinkClient) -> Any:
    return client.cutouts(313761043604045881, kind="Science", output_format="FITS")


def _assert_same_stores(got: Path | str, expected: Path | str, ids: Sequence[int]) -> None:
    """Both stores hold exactly ``ids``, complete, equal value for value (volatile attrs aside)."""
    assert list_objects(got) == sorted(ids)
    assert list_objects(expected) == sorted(ids)
    assert store_summary(got).incomplete == ()
    for oid in ids:
        a = open_cube(got, oid).compute()
        b = open_cube(expected, oid).compute()
        for cube in (a, b):
            for name in VOLATILE_ATTRS:
                cube.attrs.pop(name)
        xr.testing.assert_identical(a, b)


# ---------------------------------------------------------------- retries


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(status: int, caplog: pytest.LogCaptureFixture) -> None:
    # The client's own jitter is at most 1 ms here, so a logged 0.30 s wait is the server's.
    replies: list[Reply] = [
        (status, {"Retry-After": "0.3"}, b"<h1>busy</h1>"),
        (200, {"Content-Type": "application/json"}, b"[]"),
    ]
    with (
        ScriptedServer(replies) as server,
        _client(server.url, max_backoff=5.0) as client,
        caplog.at_level(logging.INFO, logger="finkcube.service"),
    ):
        assert client.source_records(42) == []
    assert server.hits == [SOURCES_PATH, SOURCES_PATH]
    waits = [m for m in caplog.messages if "retry 1/" in m]
    assert len(waits) == 1
    assert f"in 0.30 s after ServiceError: sources of diaObjectId 42: HTTP {status}" in waits[0]


def test_retry_after_is_capped_by_max_backoff(caplog: pytest.LogCaptureFixture) -> None:
    replies: list[Reply] = [(429, {"Retry-After": "3600"}, b""), (200, {}, b"[]")]
    with (
        ScriptedServer(replies) as server,
        _client(server.url, max_backoff=0.05) as client,
        caplog.at_level(logging.INFO, logger="finkcube.service"),
    ):
        assert client.source_records(42) == []
    assert any("in 0.05 s" in m for m in caplog.messages)


def test_undecodable_body_is_asked_again() -> None:
    replies: list[Reply] = [
        (200, {}, b'[{"r:diaSourceId": 17, "r:diaObj'),  # complete as sent, not JSON
        (200, {}, b'[{"r:diaSourceId": 17, "r:diaObjectId": 42}]'),
    ]
    with ScriptedServer(replies) as server, _client(server.url) as client:
        records = client.source_records(42)
    assert records == [{"r:diaSourceId": 17, "r:diaObjectId": 42}]
    assert len(server.hits) == 2


def test_bounded_tries_then_an_error_naming_the_object_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Retry-After: 0 keeps the CLI's default backoff out of the way: 6 immediate tries.
    replies: list[Reply] = [(503, {"Retry-After": "0"}, b"<html><h1>Down</h1></html>")]
    store = tmp_path / "s.zarr"
    with ScriptedServer(replies) as server:
        code = main(["build", "313761043604045880", "--out", str(store), "--url", server.url])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert re.search(r"diaObjectId 313761043604045880: HTTP 503 .* after 6 attempts", err[0])
    assert "<h1>Down</h1>" in err[0]
    assert len(server.hits) == 6
    assert not store.exists()


# ---------------------------------------------------------------- odd replies to FITS requests


@pytest.mark.parametrize(
    ("status", "body", "quoted", "tries"),
    [
        (
            200,
            b"<!DOCTYPE html>\n<html><body>Gateway login</body></html>",
            "<!DOCTYPE html> <html>",
            2,  # the service's error page: asked once more only, like a 500
        ),
        (
            200,
            b"{'status': 'error', 'text': 'cutout store down'}",
            "{'status': 'error', 'text'",
            2,
        ),
        (200, b"\x89PNG\r\n\x1a\n" + bytes(range(64)), "PNG", 3),  # garbled: every retry
        (502, b"<html><head><title>502 Bad Gateway</title></head></html>", "<title>502 Bad", 3),
    ],
    ids=["html-200", "python-repr-200", "png-bytes", "html-502"],
)
def test_non_fits_replies_are_quoted(status: int, body: bytes, quoted: str, tries: int) -> None:
    with (
        ScriptedServer([(status, {}, body)]) as server,
        _client(server.url) as client,
        pytest.raises(ServiceError) as info,
    ):
        _fits_request(client)
    message = str(info.value)
    assert "\n" not in message
    assert "diaSourceId 313761043604045881" in message
    assert quoted in message
    assert f"after {tries} attempts" in message  # asked again, then given up
    assert len(server.hits) == tries


def test_a_400_python_repr_is_quoted_and_never_retried() -> None:
    body = b"{'status': 'error', 'text': 'A value for `kind` is required.\\nUse Science'}"
    with (
        ScriptedServer([(400, {}, body)]) as server,
        _client(server.url) as client,
        pytest.raises(BadRequestError, match=r"A value for `kind` is required\. Use Science"),
    ):
        _fits_request(client)
    assert len(server.hits) == 1


def test_emulator_store_error_reply_is_quoted(emulator: Emulator) -> None:
    catalog = emulator.catalog
    broken = [s for s in catalog.source_ids(catalog.named("store_error")) if catalog.store_fails(s)]
    with _client(emulator.url) as client, pytest.raises(ServiceError) as info:
        client.cutouts(broken[0], kind="Science", output_format="FITS")
    # The service's error message in a 200: asked once more only, like a 500, then quoted.
    assert "the service's error page instead of a reply" in str(info.value)
    assert '\'{"message": "Internal Server Error"}\'' in str(info.value)
    assert "after 2 attempts" in str(info.value)


def test_build_leaves_out_a_source_whose_fits_reply_is_an_error_text(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = emulator.catalog
    oid = catalog.named("store_error")
    sids = catalog.source_ids(oid)
    broken = [s for s in sids if catalog.store_fails(s)]
    with _client(emulator.url) as client, caplog.at_level(logging.WARNING, "finkcube"):
        report = build_store([oid], tmp_path / "s.zarr", client=client, planes="all")
    assert [(r.status, r.missing) for r in report.results] == [("built", tuple(broken))]
    cube = open_cube(tmp_path / "s.zarr", oid)
    assert sorted(cube.diaSourceId.values.tolist()) == sorted(set(sids) - set(broken))
    assert cube.attrs["missing_diaSourceIds"] == [str(s) for s in broken]
    lines = [m for m in caplog.messages if str(broken[0]) in m]
    assert len(lines) == 1
    assert "left out" in lines[0]
    assert "Internal Server Error" in lines[0]


# ---------------------------------------------------------------- bad options send nothing


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "Everything"}, "invalid kind"),
        ({"kind": "Science", "output_format": "jpeg"}, "invalid output_format"),
        ({"kind": "Science", "output_format": "PNG", "stretch": "cubic"}, "invalid stretch"),
        ({"kind": "Science", "output_format": "PNG", "colormap": "nope"}, "invalid colormap"),
        ({"kind": "Science", "output_format": "PNG", "pmin": -1}, "0 <= pmin < pmax <= 100"),
        ({"kind": "Science", "output_format": "PNG", "pmax": 100.5}, "0 <= pmin < pmax <= 100"),
        ({"kind": "Science", "output_format": "PNG", "pmin": 40, "pmax": 40}, "pmin < pmax"),
        ({"kind": "Science", "output_format": "PNG", "pmin": 60, "pmax": 40}, "pmin < pmax"),
    ],
)
def test_bad_cutout_options_send_nothing(
    emulator: Emulator, kwargs: dict[str, Any], message: str
) -> None:
    sid = emulator.catalog.source_ids(emulator.catalog.named("single"))[0]
    before = emulator.requests[CUTOUTS_PATH]
    with _client(emulator.url) as client, pytest.raises(InputError, match=re.escape(message)):
        client.cutouts(sid, **kwargs)
    assert emulator.requests[CUTOUTS_PATH] == before


# ---------------------------------------------------------------- faults: same store


FAULTY_OBJECTS = ("small", "single", "nan_edges", "mixed_sizes", "missing_cutout")


@pytest.fixture(scope="module")
def faulty() -> Iterator[Emulator]:
    # A stall outlasts the client's timeout below, so stalls are timeouts here.
    with Emulator(faults=0.3, retry_after_s=0, stall_s=2.5, seed=3) as emu:
        yield emu


def test_build_with_faults_equals_a_build_without(faulty: Emulator, tmp_path: Path) -> None:
    ids = [faulty.catalog.named(name) for name in FAULTY_OBJECTS]
    with Emulator(catalog=faulty.catalog) as clean, _client(clean.url) as client:
        build_store(ids, tmp_path / "clean.zarr", client=client)
        build_store(ids[:2], tmp_path / "clean-all.zarr", client=client, planes="all")
    with _client(faulty.url, timeout=1.0, retries=8, workers=8) as client:
        report = build_store(ids, tmp_path / "faulty.zarr", client=client)
        report_all = build_store(ids[:2], tmp_path / "faulty-all.zarr", client=client, planes="all")
    assert report.count("built") == len(ids)
    assert report_all.count("built") == 2
    assert set(faulty.faults_served) == set(FAULT_KINDS)  # every kind met and survived
    _assert_same_stores(tmp_path / "faulty.zarr", tmp_path / "clean.zarr", ids)
    _assert_same_stores(tmp_path / "faulty-all.zarr", tmp_path / "clean-all.zarr", ids[:2])


def test_cli_build_survives_faults(faulty: Emulator, tmp_path: Path) -> None:
    # The CLI's client has its default timeout (30 s), retries and backoff; a shorter stall
    # and no Retry-After wait keep it quick.
    ids = [faulty.catalog.named(name) for name in ("small", "single")]
    with Emulator(faults=0.3, retry_after_s=0, stall_s=0.2, seed=8, catalog=faulty.catalog) as emu:
        argv = ["build", *map(str, ids), "--out", str(tmp_path / "cli.zarr"), "--url", emu.url]
        assert main(argv) == 0
        assert sum(emu.faults_served.values()) > 0
    with Emulator(catalog=faulty.catalog) as clean, _client(clean.url) as client:
        build_store(ids, tmp_path / "clean.zarr", client=client)
    _assert_same_stores(tmp_path / "cli.zarr", tmp_path / "clean.zarr", ids)


# ---------------------------------------------------------------- crash safety


def _strip_marker(store: Path, oid: int) -> None:
    """Make a complete cube incomplete, as a kill between its data and its marker would."""
    path = store / str(oid) / "zarr.json"
    meta = orjson.loads(path.read_bytes())
    del meta["attributes"][COMPLETE_ATTR]
    path.write_bytes(orjson.dumps(meta))


def _complete(store: Path) -> list[int]:
    try:
        return list_objects(store)
    except InputError:  # not created yet
        return []


def test_killed_build_resumes_to_the_same_store(tmp_path: Path) -> None:
    catalog = load_catalog(seed=21)
    ids = catalog.bulk_objects(6, sources=(24, 30))
    store = tmp_path / "killed.zarr"
    with Emulator(latency_ms=40, catalog=catalog) as emu:
        argv = [sys.executable, "-m", "finkcube", "build", *map(str, ids)]
        argv += ["--out", str(store), "--url", emu.url, "--workers", "2"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINKCUBE_")}
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            deadline = time.monotonic() + 120
            while not _complete(store) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(random.uniform(0.0, 0.3))  # anywhere in the next object's life
            proc.send_signal(signal.SIGKILL)
        finally:
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err.decode()  # killed, not finished
        done = _complete(store)
        assert 1 <= len(done) < len(ids)

        # One complete cube loses its marker: readers must refuse it, the re-run redo it.
        partial = done[-1]
        _strip_marker(store, partial)
        with pytest.raises(IncompleteCubeError, match=f"diaObjectId {partial}.*build` again"):
            open_cube(store, partial)
        assert partial not in open_store(store)
        assert partial in store_summary(store).incomplete

        again = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        assert again.returncode == 0, again.stderr
        skipped = len(done) - 1
        assert f" {len(ids) - skipped} built, 0 updated, {skipped} skipped," in again.stdout

    with Emulator(catalog=catalog) as clean, _client(clean.url) as client:
        reference = tmp_path / "reference.zarr"
        assert build_store(ids, reference, client=client).count("built") == len(ids)
    _assert_same_stores(store, reference, ids)
    # Plain xarray reads a resumed cube, as the README shows; the catalog lists them all.
    plain = xr.open_zarr(f"{store}/{partial}")
    assert xr.open_zarr(f"{store}/catalog").object.values.tolist() == sorted(ids)
    np.testing.assert_array_equal(plain.cutout.values, open_cube(reference, partial).cutout.values)


def test_info_refuses_an_incomplete_cube(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    oid = emulator.catalog.named("single")
    store = tmp_path / "s.zarr"
    with _client(emulator.url) as client:
        build_store([oid], store, client=client)
    _strip_marker(store, oid)
    capsys.readouterr()
    # An interrupted write is the disk's or the process's failure, not the user's: exit 1.
    assert main(["info", str(store), str(oid)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"finkcube: error: the cube of diaObjectId {oid}")
    assert "not completely written" in err[0]
    assert main(["info", str(store)]) == 0
    assert "incomplete" in capsys.readouterr().out


# ---------------------------------------------------------------- security


# TLS verification is tested in tests/test_transport.py (a self-signed loopback server).


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org", "gopher://x", "127.0.0.1:8000", "http://"]
)
def test_only_http_and_https_urls(url: str) -> None:
    with pytest.raises(InputError, match="invalid service URL"):
        FinkClient(url, env={})
    with pytest.raises(InputError, match="invalid service URL"):
        FinkClient(env={"FINKCUBE_URL": url})
