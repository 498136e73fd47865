"""FinkClient's retries against a faulty emulator (5xx, 429, stalls, drops, garbled bodies)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from finkcube.emulator import Emulator
from finkcube.errors import ServiceError, TransportError
from finkcube.names import CUTOUTS_PATH, KINDS
from finkcube.service import FinkClient
from finkcube.service.decode import decode_fits

STALL_S = 1.0
#: Below the emulator's stall, so that a stalled reply times out and is asked again.
TIMEOUT_S = 0.3


@pytest.fixture(scope="module")
def faulty() -> Iterator[Any]:
    with Emulator(faults=0.5, retry_after_s=0, stall_s=STALL_S, seed=11) as emu:
        yield emu


def _client(url: str, *, retries: int, workers: int = 4) -> FinkClient:
    return FinkClient(
        url,
        workers=workers,
        timeout=TIMEOUT_S,
        retries=retries,
        backoff=0.01,
        max_backoff=0.05,
        env={},
    )


def test_every_cutout_survives_faults(faulty: Any) -> None:
    catalog = faulty.catalog
    oid = catalog.named("small")
    before = faulty.requests[CUTOUTS_PATH]
    with _client(faulty.url, retries=15) as client:
        records = client.source_records(oid, columns=["diaSourceId", "midpointMjdTai"])
        sids = [r["r:diaSourceId"] for r in records]
        assert sids == catalog.source_ids(oid)
        results = list(client.map(client.cutout_arrays, sids))
        fits_cutouts = client.cutout_fits(sids[0])
    for sid, got in zip(sids, results, strict=True):
        assert got.source_id == sid
        for stamp in got.stamps:
            np.testing.assert_array_equal(stamp.planes["data"], catalog.array(sid, stamp.kind))
    for stamp in fits_cutouts.stamps:
        expected = decode_fits(catalog.fits(sids[0], stamp.kind), kind=stamp.kind, source_id=1)
        for name, plane in expected.planes.items():
            np.testing.assert_array_equal(stamp.planes[name], plane)
        assert stamp.header == expected.header
    # Faults happened and were retried: more cutout requests than answers needed.
    assert faulty.requests[CUTOUTS_PATH] - before > len(sids) + len(KINDS)


def test_retries_exhausted_name_the_source_and_cause(caplog: pytest.LogCaptureFixture) -> None:
    with (
        Emulator(faults=1.0, retry_after_s=0, stall_s=STALL_S, seed=5) as emu,
        _client(emu.url, retries=2) as client,
    ):
        sid = emu.catalog.source_ids(emu.catalog.named("single"))[0]
        with (
            caplog.at_level(logging.INFO, logger="finkcube.service"),
            pytest.raises(
                (TransportError, ServiceError), match=f"diaSourceId {sid}.*3 attempts"
            ) as info,
        ):
            client.cutout_arrays(sid)
    assert info.value.__cause__ is not None
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2
    assert all(str(sid) in r.getMessage() for r in retries)
