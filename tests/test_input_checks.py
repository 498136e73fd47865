"""The user's input is checked up front: the service URL, the objects file, ``--size``.

Each bad input is one ``finkcube: error: ...`` line and exit status 2 from the installed
console script, before any request is sent; a URL's credentials are never stored nor printed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from finkcube.config import resolve_url
from finkcube.cube import assemble_cube
from finkcube.emulator import Emulator
from finkcube.errors import InputError
from finkcube.store import list_objects
from tests._cubes import synthetic_inputs
from tests._loopback import Loopback
from tests.test_cli_subprocess import error_line, finkcube


class Listener(Loopback):
    """A loopback HTTP server that records every request and answers each with a 503."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                owner.hits.append(self.path)
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)
        self.start()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


# ------------------------------------------------------------------------------ URLs


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("http://127.0.0.1:99999", "port"),
        ("http://127.0.0.1:-1", "port"),
        ("{url}/api", "path"),
        ("{url}/?page=1", "query"),
        ("{url}/#top", "fragment"),
        ("{url} /", "space"),
        ("{url}\n", "space"),
        ("", "empty"),
        ("http://[::1", "parse"),
    ],
)
def test_a_bad_url_is_refused_before_any_request(
    template: str, reason: str, listener: Listener, tmp_path: Path
) -> None:
    url = template.format(url=listener.url)
    done = finkcube("build", "1", "--out", tmp_path / "s.zarr", "--url", url)
    line = error_line(done, 2)
    assert "invalid service URL" in line
    assert reason in line
    assert "expected http://HOST[:PORT]" in line
    assert listener.hits == []
    assert not (tmp_path / "s.zarr").exists()


def test_a_bad_url_in_the_environment_is_named(listener: Listener, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINKCUBE_")}
    env["FINKCUBE_URL"] = f"{listener.url}/api/v1"
    done = finkcube("build", "1", "--out", tmp_path / "s.zarr", env=env)
    assert "FINKCUBE_URL" in error_line(done, 2)
    assert listener.hits == []


def test_resolve_url_keeps_a_valid_url_and_refuses_an_empty_one() -> None:
    assert resolve_url("https://user:pw@host:8443/", env={}) == "https://user:pw@host:8443"
    assert resolve_url(env={"FINKCUBE_URL": ""}).startswith("https://")
    with pytest.raises(InputError, match="empty"):
        resolve_url("", env={"FINKCUBE_URL": "http://elsewhere"})


# ----------------------------------------------------------------------- credentials


def test_credentials_are_neither_stored_nor_printed(emulator: Emulator, tmp_path: Path) -> None:
    host = emulator.url.removeprefix("http://")
    oid = emulator.catalog.named("single")
    store = tmp_path / "s.zarr"
    done = finkcube("build", str(oid), "--out", store, "--url", f"http://me:hunter2@{host}")
    assert done.returncode == 0, done.stderr
    with xr.open_zarr(store, group=str(oid), consolidated=False) as cube:
        assert cube.attrs["api_url"] == f"http://me:***@{host}"
    assert not [p for p in store.rglob("*") if p.is_file() and b"hunter2" in p.read_bytes()]


def test_credentials_are_hidden_in_an_error_line(listener: Listener, tmp_path: Path) -> None:
    url = listener.url.replace("http://", "http://me:hunter2@")
    done = finkcube("-v", "build", "1", "--out", tmp_path / "s.zarr", "--url", url)
    assert done.returncode == 1, done.stderr
    assert listener.hits  # the client did connect
    assert "hunter2" not in done.stderr
    assert "me:***@" in done.stderr
    from finkcube.config import redact_url

    assert redact_url("http://me:hunter2@h") == "http://me:***@h"


# ---------------------------------------------------------------------- objects file


def test_an_objects_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"# mine\n12\n\xff\xfe3\n")
    done = finkcube("build", "--objects-file", ids, "--out", tmp_path / "s.zarr")
    line = error_line(done, 2)
    assert "ids.txt, line 3" in line
    assert "UTF-8" in line


def test_an_objects_file_with_a_byte_order_mark_is_read(emulator: Emulator, tmp_path: Path) -> None:
    oid = emulator.catalog.named("single")
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"\xef\xbb\xbf" + f"{oid}\n".encode())
    store = tmp_path / "s.zarr"
    done = finkcube("build", "--objects-file", ids, "--out", store, "--url", emulator.url)
    assert done.returncode == 0, done.stderr
    assert list_objects(store) == [oid]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_an_objects_file_that_never_ends_is_refused(tmp_path: Path) -> None:
    done = finkcube("build", "--objects-file", "/dev/zero", "--out", tmp_path / "s.zarr")
    assert "not a regular file" in error_line(done, 2)


def test_a_huge_objects_file_is_refused_unread(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    with ids.open("wb") as file:
        file.truncate(65 * 2**20)  # sparse: nothing written
    done = finkcube("build", "--objects-file", ids, "--out", tmp_path / "s.zarr")
    assert "64 MiB" in error_line(done, 2)
    from finkcube.ids import load_objects_file

    with pytest.raises(InputError, match="objects file"):
        load_objects_file(tmp_path)  # a folder


# ------------------------------------------------------------------------------ size


@pytest.mark.parametrize("size", ["2000", "1000000", "0"])
def test_a_size_past_the_cap_is_a_usage_error(size: str, tmp_path: Path) -> None:
    done = finkcube("build", "1", "--size", size, "--out", tmp_path / "s.zarr")
    assert "1..1024" in error_line(done, 2)


def test_assemble_cube_refuses_a_size_past_the_cap() -> None:
    oid, records, cutouts = synthetic_inputs([30])
    with pytest.raises(InputError, match=r"1\.\.1024"):
        assemble_cube(oid, records, cutouts, size=2000)
    cube = assemble_cube(oid, records, cutouts, size=1024)
    assert cube.sizes["x"] == 1024
    assert np.isnan(cube.cutout.values[0, 0, 0, 0, 0])
