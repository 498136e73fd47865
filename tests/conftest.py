"""Shared fixtures of the test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from finkcube.emulator import Emulator


@pytest.fixture(autouse=True)
def _clean_finkcube_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a ``FINKCUBE_*`` variable of the machine it runs on."""
    for name in list(os.environ):
        if name.startswith("FINKCUBE_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _dask_scheduler_left_as_found() -> Iterator[None]:
    """No test leaves dask's default scheduler changed: a leak would surface many tests
    later, as computations sent to a dask.distributed client that no longer exists."""
    import dask

    before = dask.config.get("scheduler", None)
    yield
    assert dask.config.get("scheduler", None) == before, "dask's default scheduler was changed"


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """A running Fink LSST API emulator (no latency, no faults) shared by the session.

    Tests that need latency, faults or a catalog of their own start their own ``Emulator``.
    """
    from finkcube.emulator import Emulator

    with Emulator(latency_ms=0.0, faults=0.0, seed=0) as emu:
        yield emu


@pytest.fixture(scope="session")
def s3_options() -> Iterator[dict[str, Any]]:
    """``storage_options`` of a moto S3 server on a free loopback port, with a bucket ``cubes``.

    Tests share the server: each writes under its own key prefix.
    """
    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()  # returns once the server answers
    host, port = server.get_host_and_port()
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": f"http://{host}:{port}", "region_name": "us-east-1"},
    }
    s3fs.S3FileSystem(**options).call_s3("create_bucket", Bucket="cubes")
    yield options
    server.stop()
