"""Transient faults of the emulator: deterministic, varied, and beaten by a retrying client."""

from __future__ import annotations

from collections import Counter

import pytest
import requests

from finkcube.emulator import FAULT_KINDS, MAX_FAULTS_IN_A_ROW, Emulator
from finkcube.emulator.faults import FaultPlan
from finkcube.errors import InputError

TIMEOUT = 10
RETRYABLE = {429, 502, 503, 504}


def fetch_with_retries(
    session: requests.Session, url: str, fields: dict, retries: int, seen: Counter
) -> requests.Response:
    """A minimal retrying client: what finkcube's client must at least do."""
    for _ in range(retries + 1):
        try:
            reply = session.post(url, json=fields, timeout=TIMEOUT)
            content = reply.content  # a truncated body raises here
        except requests.RequestException as exc:
            seen[type(exc).__name__] += 1
            continue
        if reply.status_code in RETRYABLE:
            seen[reply.status_code] += 1
            if reply.status_code == 429:
                seen["retry-after:" + reply.headers.get("Retry-After", "missing")] += 1
            continue
        assert len(content) == int(reply.headers["Content-Length"])
        return reply
    raise AssertionError(f"no reply after {retries} retries")


def requests_and_answers(emu: Emulator) -> list[tuple[str, dict, bytes | list]]:
    catalog = emu.catalog
    cases: list[tuple[str, dict, bytes | list]] = []
    for name in ("small", "single", "mixed_sizes", "with_mask"):
        object_id = catalog.named(name)
        cases.append(
            (
                "/api/v1/sources",
                {"diaObjectId": str(object_id), "columns": "r:diaSourceId"},
                [{"r:diaSourceId": s} for s in catalog.source_ids(object_id)],
            )
        )
        for source_id in catalog.source_ids(object_id)[:10]:
            for kind in ("Science", "Difference"):
                fields = {"diaSourceId": str(source_id), "kind": kind, "output-format": "FITS"}
                cases.append(("/api/v1/cutouts", fields, catalog.fits(source_id, kind) or b""))
    return cases


def test_a_retrying_client_gets_every_reply_right(emulator: Emulator) -> None:
    seen: Counter = Counter()
    with Emulator(
        faults=0.5, seed=11, stall_s=0.05, retry_after_s=3, catalog=emulator.catalog
    ) as emu:
        cases = requests_and_answers(emu)
        with requests.Session() as session:
            for path, fields, expected in cases:
                reply = fetch_with_retries(
                    session, emu.url + path, fields, MAX_FAULTS_IN_A_ROW, seen
                )
                assert reply.status_code == 200
                got = reply.json() if isinstance(expected, list) else reply.content
                assert got == expected
        served = emu.faults_served
    assert len(cases) >= 40
    assert set(served) == set(FAULT_KINDS)
    assert seen[503] == served["503"]
    assert seen[429] == served["429"] == seen["retry-after:3"]
    # Dropped connections and cut bodies reach the client as errors, stalls as slow 200s.
    assert sum(v for k, v in seen.items() if isinstance(k, str) and "Error" in k) == (
        served["drop"] + served["truncate"]
    )


def test_never_more_than_three_faults_in_a_row(emulator: Emulator) -> None:
    plan = FaultPlan(1.0, seed=0)
    decisions = [plan.decide("same request") for _ in range(12)]
    assert [d is not None for d in decisions] == [True, True, True, False] * 3
    with (
        Emulator(faults=1.0, stall_s=0.0, catalog=emulator.catalog) as emu,
        requests.Session() as session,
    ):
        fields = {"diaObjectId": str(emu.catalog.named("single"))}
        reply = fetch_with_retries(
            session, emu.url + "/api/v1/sources", fields, MAX_FAULTS_IN_A_ROW, Counter()
        )
        assert reply.status_code == 200
        # A stall is a fault that ends in a 200: the client may be through sooner.
        assert emu.requests["/api/v1/sources"] <= MAX_FAULTS_IN_A_ROW + 1
        assert sum(emu.faults_served.values()) == emu.requests["/api/v1/sources"] - 1 + (
            emu.faults_served["stall"] > 0
        )


def test_faults_are_deterministic_per_seed() -> None:
    keys = [f"POST /api/v1/cutouts {i}" for i in range(200)]
    first = [FaultPlan(0.3, seed=5).decide(k) for k in keys]
    again = [FaultPlan(0.3, seed=5).decide(k) for k in keys]
    other = [FaultPlan(0.3, seed=6).decide(k) for k in keys]
    assert first == again
    assert first != other
    assert 30 < sum(d is not None for d in first) < 90


def test_no_faults_at_rate_zero() -> None:
    plan = FaultPlan(0.0)
    assert all(plan.decide(str(i)) is None for i in range(100))


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_fault_rate_must_be_a_probability(rate: float) -> None:
    with pytest.raises(InputError, match="fault rate"):
        Emulator(faults=rate)
