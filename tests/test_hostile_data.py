"""What the server sends is data: it never drives the terminal, never becomes a path.

A hostile server is a loopback proxy in front of the emulator that rewrites its source
records (an unasked column named like a path, a malformed diaSourceId), or a loopback server
answering every request with one canned reply.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import xarray as xr

from finkcube.emulator import Emulator
from finkcube.pipeline import build_store, update_store
from finkcube.store import list_objects
from tests._loopback import Loopback
from tests.test_cli_subprocess import error_line, finkcube

Records = list[dict[str, Any]]


class Hostile(Loopback):
    """A loopback server: each POST is forwarded to ``upstream`` (or answered by ``canned``),
    the records of a sources reply passed through ``rewrite`` first."""

    def __init__(
        self,
        upstream: str = "",
        rewrite: Callable[[Records], Records] | None = None,
        canned: tuple[int, bytes] | None = None,
    ) -> None:
        self.rewrite = rewrite
        self.hits: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.hits.append(self.path)
                if canned is not None:
                    status, reply = canned
                else:
                    status, reply = owner._forward(upstream + self.path, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def _forward(self, url: str, body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                status, content = reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        if url.endswith("/sources") and self.rewrite is not None:
            content = json.dumps(self.rewrite(json.loads(content))).encode()
        return status, content


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ------------------------------------------------------------------ server text


def test_control_characters_of_a_400_never_reach_the_terminal(tmp_path: Path) -> None:
    text = "bad \x1b]0;owned\x07\x1b[2J kind\rfinkcube: all is fine"
    reply = json.dumps({"status": "error", "text": text}).encode()
    with Hostile(canned=(400, reply)) as server:
        done = finkcube("build", "1", "--out", tmp_path / "s.zarr", "--url", server.url)
    line = error_line(done, 1)
    assert not any(c in done.stderr for c in "\x1b\x07\r")
    assert "\\x1b]0;owned\\x07\\x1b[2J" in line


# ------------------------------------------------------------------ column names


def test_an_unasked_column_named_like_a_path_is_left_out(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    oid = emulator.catalog.named("small")
    store = tmp_path / "s.zarr"
    with Hostile(emulator.url, rewrite=lambda records: records[:-1]) as older:
        assert build_store([oid], store, url=older.url).failed == []
    hostile = {"r:..": 1, "r:a/b": 2, "r:zarr.json": 3, "../up": 4, "r:fine_col": 5}
    server = Hostile(emulator.url, rewrite=lambda rs: [{**r, **hostile} for r in rs])
    with server, caplog.at_level(logging.WARNING, logger="finkcube"):
        report = update_store(store, url=server.url)
    assert report.failed == [], report.failed
    assert [r.added for r in report.results] == [1]
    assert list_objects(store) == [oid]
    with xr.open_zarr(store, group=str(oid), consolidated=False) as cube:
        assert "fine_col" in cube.coords
        assert not {"..", "a/b", "zarr.json", "../up"} & {*cube.coords, *cube.data_vars}
    assert not (store / "a").exists()
    assert not (store / str(oid) / "a").exists()
    assert not [f for f in _files(store) if "up" in Path(f).parts]
    warned = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(warned) == 1
    assert "'r:a/b'" in warned[0]
    assert "'r:zarr.json'" in warned[0]


# --------------------------------------------------------------- malformed ids


def _spoil(records: Records) -> Records:
    """The first records get a float, a negative, a huge, a path-like and no diaSourceId."""
    bad: list[Any] = [1.5, -3, 2**64, "../../etc"]
    out = []
    for i, record in enumerate(records):
        record = dict(record)
        if i < len(bad):
            record["r:diaSourceId"] = bad[i]
        elif i == len(bad):
            del record["r:diaSourceId"]
        out.append(record)
    return out


def test_a_malformed_source_id_skips_that_record_only(emulator: Emulator, tmp_path: Path) -> None:
    oid = emulator.catalog.named("mixed_sizes")  # 14 sources
    store = tmp_path / "s.zarr"
    with Hostile(emulator.url, rewrite=_spoil) as server:
        done = finkcube("build", str(oid), "--out", store, "--url", server.url)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    warnings = [line for line in done.stderr.splitlines() if "record skipped" in line]
    assert len(warnings) == 5, done.stderr
    assert "'../../etc'" in done.stderr
    assert "no r:diaSourceId" in done.stderr
    assert list_objects(store) == [oid]
    with xr.open_zarr(store, group=str(oid), consolidated=False) as cube:
        ids = cube.diaSourceId.values.tolist()
    assert len(ids) == 14 - 5
    assert all(isinstance(i, int) and i > 0 for i in ids)


def test_an_object_whose_every_source_id_is_malformed_fails_alone(
    emulator: Emulator, tmp_path: Path
) -> None:
    good, bad = emulator.catalog.named("single"), emulator.catalog.named("small")

    def spoil(records: Records) -> Records:
        return [{**r, "r:diaSourceId": 0.5} if r["r:diaObjectId"] == bad else r for r in records]

    store = tmp_path / "s.zarr"
    with Hostile(emulator.url, rewrite=spoil) as server:
        done = finkcube("build", str(good), str(bad), "--out", store, "--url", server.url)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    failed = [line for line in done.stderr.splitlines() if f"diaObjectId {bad} failed" in line]
    assert len(failed) == 1
    assert "no valid r:diaSourceId" in failed[0]
    assert list_objects(store) == [good]
