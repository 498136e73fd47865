"""What a request of the client carries and what its session does with the replies.

Every request goes through ``requests.Session`` (the client's own or the caller's): cookies a
server sets come back, hooks run, redirects are followed, ``.netrc``, proxies and the CA
bundle of the environment apply, and TLS is verified. Checked over real sockets against a
small loopback server that speaks the API's shape.
"""

from __future__ import annotations

import base64
import ipaddress
import ssl
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson
import pytest
import requests

from finkcube.errors import BadRequestError, TransportError
from finkcube.names import CUTOUTS_PATH, KINDS, SOURCES_PATH
from finkcube.service import FinkClient
from tests._loopback import Loopback

Reply = tuple[int, dict[str, str], bytes]
#: ``answer(path, index)``: the reply to the ``index``-th request (0-based), asking ``path``.
Answer = Callable[[str, int], Reply]

#: A ``kind=All`` array reply: three 2x2 planes, the value ``10 * k + pixel`` in kind ``k``.
ARRAYS_BODY = orjson.dumps(
    {f"b:cutout{kind}": [[10 * k, 10 * k + 1], [10 * k + 2, 10 * k + 3]] for k, kind in
     enumerate(KINDS)}
)  # fmt: skip


class LoopbackServer(Loopback):
    """A real HTTP(S) server on 127.0.0.1 answering the client's POSTs.

    ``replies`` is a list (the ``n``-th request gets the ``n``-th reply; the last repeats) or
    a callable ``answer(path, index)``. ``received`` lists ``(path, headers, body)`` of every
    request, in arrival order.
    """

    def __init__(
        self, replies: Sequence[Reply] | Answer, tls: ssl.SSLContext | None = None
    ) -> None:
        if callable(replies):
            self._answer: Answer = replies
        else:
            script = list(replies)
            self._answer = lambda _path, index: script[min(index, len(script) - 1)]
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner._lock:
                    index = len(owner.received)
                    owner.received.append((self.path, dict(self.headers.items()), body))
                status, headers, content = owner._answer(self.path, index)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the tests read `received`

        super().__init__(Handler, tls)

    @property
    def paths(self) -> list[str]:
        return [path for path, _, _ in self.received]


def _client(url: str, **kwargs: Any) -> FinkClient:
    settings: dict[str, Any] = {"workers": 4, "timeout": 5.0, "retries": 2, "backoff": 0.001,
                                "max_backoff": 0.01, "env": {}}  # fmt: skip
    settings.update(kwargs)
    return FinkClient(url, **settings)


def _api(cookie: str | None = None) -> Answer:
    """The API's shape: sources answer a JSON list, cutouts an array reply; the first reply
    sets ``cookie`` when given."""

    def answer(path: str, index: int) -> Reply:
        headers = {"Set-Cookie": f"{cookie}; Path=/"} if cookie and index == 0 else {}
        path = urlsplit(path).path  # a proxy is asked for the absolute URL
        if path == SOURCES_PATH:
            return 200, headers, b'[{"r:diaSourceId": 17, "r:diaObjectId": 42}]'
        if path == CUTOUTS_PATH:
            return 200, headers, ARRAYS_BODY
        return 404, headers, b"no such route"

    return answer


# ---------------------------------------------------------------- what a request carries


def test_a_request_carries_its_json_body_and_headers() -> None:
    with LoopbackServer([(200, {}, b"[]")]) as server, _client(server.url) as client:
        assert client.source_records(313761043604045880, columns=["r:diaSourceId"]) == []
        assert client.source_records(313761043604045881) == []
    (_, first, body), (_, second, body2) = server.received
    assert orjson.loads(body)["diaObjectId"] == "313761043604045880"  # ids go as strings
    assert orjson.loads(body)["columns"] == "r:diaSourceId"
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
    with LoopbackServer([(200, {}, b"[]")]) as server, _client(server.url) as client:
        client.source_records(42)
    _, headers, _ = server.received[0]
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"astro:s3cret").decode()


@pytest.mark.parametrize("status", [307, 308])
def test_a_redirect_is_followed_with_the_same_post(status: int) -> None:
    replies = [(status, {"Location": CUTOUTS_PATH}, b""), (200, {}, b"[]")]
    with LoopbackServer(replies) as server, _client(server.url) as client:
        assert client.source_records(42) == []
    assert server.paths == [SOURCES_PATH, CUTOUTS_PATH]
    assert [orjson.loads(body)["diaObjectId"] for _, _, body in server.received] == ["42", "42"]


# ---------------------------------------------------------------- what the session does


@pytest.mark.parametrize("own", [True, False], ids=["own-session", "caller-session"])
def test_a_cookie_set_by_the_server_is_sent_back(own: bool) -> None:
    # A load balancer pinning its clients: the cookie of the first reply must come back on
    # every later request, of either endpoint and from every thread of the pool.
    with requests.Session() as session:
        session.trust_env = False
        with (
            LoopbackServer(_api(cookie="lb=node-3")) as server,
            _client(server.url, session=None if own else session) as client,
        ):
            assert client.source_records(42)[0]["r:diaSourceId"] == 17
            got = [client.cutout_arrays(17), *client.map(client.cutout_arrays, [17] * 8)]
    for cutouts in got:
        np.testing.assert_array_equal(cutouts.stamps[1].planes["data"], [[10, 11], [12, 13]])
    assert len(server.received) == 10
    assert "Cookie" not in server.received[0][1]
    assert [headers.get("Cookie") for _, headers, _ in server.received[1:]] == ["lb=node-3"] * 9


def test_the_session_hooks_run_on_every_try() -> None:
    seen: list[int] = []
    replies = [(503, {"Retry-After": "0"}, b"busy"), (200, {}, b"[]")]
    with requests.Session() as session:
        session.trust_env = False
        session.hooks["response"].append(lambda reply, **_: seen.append(reply.status_code))
        with (
            LoopbackServer(replies) as server,
            _client(server.url, session=session) as client,
        ):
            assert client.source_records(42) == []
    assert seen == [503, 200]


def test_a_session_given_by_the_caller_is_used_as_it_is() -> None:
    with requests.Session() as session:
        session.headers["X-Team"] = "transients"
        session.auth = ("astro", "s3cret")
        with (
            LoopbackServer([(200, {}, b"[]")]) as server,
            FinkClient(server.url, session=session, retries=0, env={}) as client,
        ):
            assert client.source_records(42) == []
    _, headers, _ = server.received[0]
    assert headers["X-Team"] == "transients"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"astro:s3cret").decode()
    assert headers["User-Agent"].startswith("finkcube/")


def test_a_400_quotes_the_service_text_and_is_never_retried() -> None:
    body = b"{'status': 'error', 'text': 'A value for `kind` is required.\\nUse Science'}"
    with (
        LoopbackServer([(400, {}, body)]) as server,
        _client(server.url, retries=5) as client,
        pytest.raises(BadRequestError, match=r"refused the request: A value for `kind` is re"),
    ):
        client.cutout_arrays(17)
    assert server.paths == [CUTOUTS_PATH]


# ---------------------------------------------------------------- the environment, TLS


def test_an_environment_proxy_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with LoopbackServer(_api()) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        with _client("http://fink.example.invalid", retries=0) as client:
            assert client.source_records(42)[0]["r:diaObjectId"] == 42
    # A proxy is asked for the absolute URL of the service.
    assert proxy.paths == ["http://fink.example.invalid" + SOURCES_PATH]


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_is_verified_against_the_environment_ca_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with LoopbackServer([(200, {}, b"[]")], tls=context) as server:
        with _client(server.url, retries=3) as client:
            with pytest.raises(TransportError, match="TLS failure") as info:
                client.source_records(42)
            assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
            assert "attempts" not in str(info.value)  # a TLS failure is not retried
            assert server.received == []
        # The same server, its certificate named by the environment's CA bundle: trusted.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        with _client(server.url) as trusting:
            assert trusting.source_records(42) == []
        assert server.paths == [SOURCES_PATH]
