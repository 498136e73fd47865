"""Unit tests of finkcube.service's pure helpers and input checks (no request reaches a server).

A client pointed at a closed port proves that nothing was sent: a request would fail with a
TransportError, while every check here must fail first with an InputError.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import numpy as np
import pytest

from finkcube.errors import InputError, InvalidIdError, TransportError
from finkcube.service import FinkClient
from finkcube.service.payloads import png_payload as _png_payload
from finkcube.service.payloads import user_agent as _user_agent
from finkcube.service.replies import records_table as _records_table
from finkcube.service.replies import service_text as _service_text


def _closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def offline() -> Iterator[FinkClient]:
    with FinkClient(
        f"http://127.0.0.1:{_closed_port()}", retries=0, timeout=2, backoff=0.01, env={}
    ) as client:
        yield client


def test_closed_port_raises_transport_error_naming_the_id(offline: FinkClient) -> None:
    with pytest.raises(TransportError, match="diaSourceId 313761043604045881") as info:
        offline.cutout_arrays(313761043604045881)
    assert info.value.__cause__ is not None
    assert "ConnectionError" in str(info.value)


def test_closed_port_retries_then_names_attempts() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with (
        FinkClient(url, retries=2, backoff=0.01, env={}) as client,
        pytest.raises(TransportError, match=r"diaObjectId 42: .*after 3 attempts"),
    ):
        client.source_records(42)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "Sciense"}, "invalid kind 'Sciense': expected one of Science, Template"),
        ({"output_format": "jpeg"}, "invalid output_format 'jpeg': expected one of array"),
        ({"output_format": "FITS"}, "kind='All' needs output_format='array'"),
        ({"kind": "Science", "stretch": "log"}, "apply to output_format='PNG' only"),
        ({"kind": "Science", "output_format": "PNG", "stretch": "cubic"}, "invalid stretch"),
        ({"kind": "Science", "output_format": "PNG", "colormap": "nope"}, "invalid colormap"),
        ({"kind": "Science", "output_format": "PNG", "pmin": 50, "pmax": 40}, "pmin < pmax"),
        ({"kind": "Science", "output_format": "PNG", "pmax": 101}, "pmax <= 100"),
        ({"kind": "Science", "output_format": "PNG", "pmin": -1}, "0 <= pmin"),
        ({"kind": "Science", "output_format": "PNG", "pmin": "1"}, "invalid pmin '1'"),
        ({"kind": "Science", "output_format": "PNG", "pmin": True}, "invalid pmin True"),
        (
            {"kind": "Science", "output_format": "PNG", "convolution_kernel": "median"},
            "invalid convolution_kernel 'median': expected one of gauss, box",
        ),
        ({"kind": "Science", "output_format": "PNG", "dpi": 3}, "unknown PNG option"),
    ],
)
def test_bad_cutout_options_raise_before_sending(
    offline: FinkClient, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        offline.cutouts(313761043604045881, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["12a", -3, 0, 2**63, True, "1" * 20, 1.5])
def test_bad_ids_raise_before_sending(offline: FinkClient, bad: object) -> None:
    with pytest.raises(InvalidIdError):
        offline.cutouts(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdError):
        offline.cutout_arrays(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdError):
        offline.source_records([1, bad])  # type: ignore[list-item]


def test_bad_columns_and_empty_ids(offline: FinkClient) -> None:
    with pytest.raises(InputError, match="no diaObjectId"):
        offline.source_records([])
    with pytest.raises(InputError, match="invalid columns"):
        offline.sources(1, columns=[])
    with pytest.raises(InputError, match="invalid columns"):
        offline.sources(1, columns=["band", ""])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "invalid workers 0"),
        ({"workers": 2.5}, "invalid workers"),
        ({"retries": -1}, "invalid retries -1"),
        ({"timeout": 0}, "invalid timeout 0"),
        ({"backoff": -0.1}, "invalid backoff"),
        ({"max_backoff": float("nan")}, "invalid max_backoff"),
        ({"url": "ftp://example.org"}, "invalid service URL"),
    ],
)
def test_bad_client_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        FinkClient(**kwargs, env={})  # type: ignore[arg-type]


def test_url_from_env_and_user_agent() -> None:
    with FinkClient(env={"FINKCUBE_URL": "http://127.0.0.1:9/"}) as client:
        assert client.url == "http://127.0.0.1:9"
    from finkcube import __version__

    assert _user_agent() == f"finkcube/{__version__}"


def test_png_payload_canonical_spelling() -> None:
    payload = _png_payload(
        {
            "stretch": "LOG",
            "colormap": "viridis",
            "pmin": 1,
            "pmax": 99,
            "convolution_kernel": "Box",
        }
    )
    assert payload == {
        "stretch": "log",
        "colormap": "viridis",
        "pmin": 1.0,
        "pmax": 99.0,
        "convolution_kernel": "box",
    }
    assert _png_payload({}) == {}


def test_service_text_extracts_the_message() -> None:
    body = b"{'status': 'error', 'text': 'A value for `kind` is required.\\nUse Science'}"
    assert _service_text(body) == "A value for `kind` is required. Use Science"
    assert _service_text(b'{"message": "Bad things"}') == "Bad things"
    assert _service_text(b"<html>nope</html>") == "'<html>nope</html>'"
    assert _service_text(b"__import__('os')") == "\"__import__('os')\""


def test_records_table_types_and_masks() -> None:
    big = 313761043604045881
    records = [
        {"r:diaSourceId": big, "r:band": "g", "r:psfFlux": 1.5, "r:isDipole": True, "f:x": None},
        {"r:diaSourceId": big - 7, "r:band": None, "r:psfFlux": None, "r:isDipole": False},
    ]
    names = list(dict.fromkeys(k for r in records for k in r))
    table = _records_table(records, names)
    assert table.colnames == ["diaSourceId", "band", "psfFlux", "isDipole", "x"]
    assert table["diaSourceId"].dtype == np.int64
    assert list(table["diaSourceId"]) == [big, big - 7]
    assert table["band"][0] == "g"
    assert bool(table["band"].mask[1])
    assert table["psfFlux"].dtype == np.float64
    assert list(table["psfFlux"].mask) == [False, True]
    assert table["isDipole"].dtype == bool
    assert table["x"].mask.all()


def test_map_keeps_order_without_network(offline: FinkClient) -> None:
    items = list(range(50))
    assert list(offline.map(lambda x: -x, items)) == [-x for x in items]


def test_map_raises_the_callable_error_in_place(offline: FinkClient) -> None:
    def fail_on_three(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x

    results = offline.map(fail_on_three, range(10))
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="three"):
        next(results)


def test_timeout_and_retries_from_the_environment() -> None:
    env = {"FINKCUBE_TIMEOUT": "2.5", "FINKCUBE_RETRIES": "1"}
    with FinkClient("http://127.0.0.1:1", env=env) as client:
        assert (client.timeout, client.retries) == (2.5, 1)
    with FinkClient("http://127.0.0.1:1", timeout=7, retries=0, env=env) as client:
        assert (client.timeout, client.retries) == (7.0, 0)  # an argument wins
    with FinkClient("http://127.0.0.1:1", env={}) as client:
        assert (client.timeout, client.retries) == (30.0, 5)
    for bad in ({"FINKCUBE_TIMEOUT": "soon"}, {"FINKCUBE_RETRIES": "2.5"}):
        with pytest.raises(InputError, match="invalid FINKCUBE_"):
            FinkClient("http://127.0.0.1:1", env=bad)
    with pytest.raises(InputError, match="invalid FINKCUBE_TIMEOUT='-1'"):
        FinkClient("http://127.0.0.1:1", env={"FINKCUBE_TIMEOUT": "-1"})
