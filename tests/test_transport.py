"""Tests of the client's transport: what a request carries, redirects, a caller's session.

The client's own session posts through :class:`finkcube._transport.DirectPost`, which
skips ``Session.post``'s per-request merging; these check that nothing the session was
made with is lost on the way, over real sockets.
"""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
import requests

from finkcube import FinkClient
from finkcube.names import CUTOUTS_PATH, SOURCES_PATH
from tests.test_reliability import ScriptedServer, _client


def test_a_request_carries_its_json_body_and_headers() -> None:
    with ScriptedServer([(200, {}, b"[]")]) as server, _client(server.url) as client:
        assert client.source_records(313761043604045880, columns=["r:diaSourceId"]) == []
        assert client.source_records(313761043604045881) == []
    (first, body), (second, body2) = server.received
    assert orjson.loads(body)["diaObjectId"] == "313761043604045880"  # ids go as strings
    assert orjson.loads(body2)["diaObjectId"] == "313761043604045881"
    assert first["Content-Type"] == "application/json"
    assert first["Content-Length"] == str(len(body))
    assert first["User-Agent"].startswith("finkcube/")
    assert second["User-Agent"] == first["User-Agent"]


def test_netrc_credentials_are_sent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login astro password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with ScriptedServer([(200, {}, b"[]")]) as server, _client(server.url) as client:
        client.source_records(42)
    headers, _ = server.received[0]
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"astro:s3cret").decode()


@pytest.mark.parametrize("status", [307, 308])
def test_a_redirect_is_followed_with_the_same_post(status: int) -> None:
    replies = [(status, {"Location": CUTOUTS_PATH}, b""), (200, {}, b"[]")]
    with ScriptedServer(replies) as server, _client(server.url) as client:
        assert client.source_records(42) == []
    assert server.hits == [SOURCES_PATH, CUTOUTS_PATH]
    assert [orjson.loads(body)["diaObjectId"] for _, body in server.received] == ["42", "42"]


def test_a_session_given_by_the_caller_is_used_as_it_is() -> None:
    seen: list[int] = []
    with requests.Session() as session:
        session.headers["X-Team"] = "transients"
        session.hooks["response"].append(lambda reply, **_: seen.append(reply.status_code))
        with (
            ScriptedServer([(200, {}, b"[]")]) as server,
            FinkClient(server.url, session=session, retries=0, env={}) as client,
        ):
            assert client.source_records(42) == []
    assert seen == [200]  # its hooks ran
    headers, _ = server.received[0]
    assert headers["X-Team"] == "transients"
