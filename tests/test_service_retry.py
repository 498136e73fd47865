"""The retry policy (finkcube.service.retry.decide), rule by rule, without a socket.

The expected decisions are the README's reliability table, written out here; the random
draw and the clock are passed in, so that bounds are checked exactly.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from finkcube.errors import BadRequestError, NotFoundError, ServiceError, TransportError
from finkcube.service.retry import Event, GiveUp, Limits, Outcome, Retry, decide, retry_after

LIMITS = Limits(retries=5, backoff=0.5, max_backoff=30.0)
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _top(a: float, b: float) -> float:
    """A "random" draw that always picks the top of its range: the bound itself."""
    assert a == 0.0
    return b


def _delay(decision: Retry | GiveUp) -> float:
    assert isinstance(decision, Retry), decision
    return decision.delay


RETRIED = [
    Outcome(Event.TIMEOUT),
    Outcome(Event.DROPPED),
    Outcome(Event.SHORT_BODY),
    Outcome(Event.UNDECODABLE),
    Outcome(Event.STATUS, 429),
    Outcome(Event.STATUS, 502),
    Outcome(Event.STATUS, 503),
    Outcome(Event.STATUS, 504),
    Outcome(Event.STATUS, 599),
]


@pytest.mark.parametrize("outcome", RETRIED, ids=lambda o: f"{o.event.name}-{o.status}")
def test_transient_failures_are_retried_until_the_tries_are_spent(outcome: Outcome) -> None:
    for attempt in range(LIMITS.retries):
        assert isinstance(decide(attempt, outcome, LIMITS), Retry)
    spent = decide(LIMITS.retries, outcome, LIMITS)
    # A reply that said something (a status, an undecodable body) ends as a ServiceError,
    # a missing reply as a TransportError.
    replied = outcome.event in (Event.STATUS, Event.UNDECODABLE)
    assert spent == GiveUp(ServiceError if replied else TransportError, spent=True)


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        (Outcome(Event.STATUS, 400), BadRequestError),
        (Outcome(Event.STATUS, 401), ServiceError),
        (Outcome(Event.STATUS, 403), ServiceError),
        (Outcome(Event.STATUS, 404), ServiceError),
        (Outcome(Event.STATUS, 413, retry_after="1"), ServiceError),
        (Outcome(Event.STATUS, 304), ServiceError),
        (Outcome(Event.EMPTY), NotFoundError),
        (Outcome(Event.TLS), TransportError),
        (Outcome(Event.REQUEST), TransportError),
    ],
    ids=lambda value: getattr(value, "__name__", None) or f"{value.event.name}-{value.status}",
)
def test_what_asking_again_cannot_mend_is_never_retried(outcome: Outcome, error: type) -> None:
    for attempt in (0, 1, LIMITS.retries):
        assert decide(attempt, outcome, LIMITS) == GiveUp(error, spent=False)


def test_a_500_is_retried_once() -> None:
    reply = Outcome(Event.STATUS, 500)
    assert isinstance(decide(0, reply, LIMITS, internal_errors=1), Retry)
    assert decide(1, reply, LIMITS, internal_errors=2) == GiveUp(ServiceError, spent=True)
    # A first 500 after other failures still gets its one retry ...
    assert isinstance(decide(3, reply, LIMITS, internal_errors=1), Retry)
    # ... but never beyond the tries; with retries=0, not at all.
    assert decide(5, reply, LIMITS, internal_errors=1) == GiveUp(ServiceError, spent=True)
    assert decide(0, reply, Limits(retries=0), internal_errors=1) == GiveUp(ServiceError, True)
    # The once is a setting of the policy.
    twice = Limits(retries=5, internal_error_retries=2)
    assert isinstance(decide(1, reply, twice, internal_errors=2), Retry)
    assert decide(2, reply, twice, internal_errors=3) == GiveUp(ServiceError, spent=True)


def test_full_jitter_bounds_double_up_to_max_backoff() -> None:
    limits = Limits(retries=10_000, backoff=0.5, max_backoff=3.0)
    tops = [_delay(decide(n, Outcome(Event.TIMEOUT), limits, uniform=_top)) for n in range(8)]
    assert tops == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    # A huge retry number stays a finite wait (no float overflow of backoff * 2**n).
    assert _delay(decide(5000, Outcome(Event.DROPPED), limits, uniform=_top)) == 3.0


def test_full_jitter_draws_over_the_whole_range() -> None:
    rng = random.Random(7)
    limits = Limits(retries=100, backoff=0.5, max_backoff=3.0)
    for attempt in range(8):
        bound = min(3.0, 0.5 * 2**attempt)
        delays = [
            _delay(decide(attempt, Outcome(Event.STATUS, 503), limits, uniform=rng.uniform))
            for _ in range(200)
        ]
        assert all(0.0 <= d <= bound for d in delays)
        assert min(delays) < bound / 10  # random over the whole range, not a constant
        assert max(delays) > bound * 0.9


def test_the_default_draw_is_random_within_the_bound() -> None:
    delays = {_delay(decide(2, Outcome(Event.TIMEOUT), LIMITS)) for _ in range(50)}
    assert len(delays) > 40
    assert all(0.0 <= d <= 2.0 for d in delays)


@pytest.mark.parametrize("status", [429, 503, 500])
def test_retry_after_in_seconds_replaces_the_jitter(status: int) -> None:
    outcome = Outcome(Event.STATUS, status, retry_after="7")
    assert decide(0, outcome, LIMITS, internal_errors=1, uniform=_top) == Retry(7.0)
    assert decide(4, Outcome(Event.STATUS, status, "0.25"), LIMITS, uniform=_top) == Retry(0.25)
    assert decide(2, Outcome(Event.STATUS, status, "0"), LIMITS, uniform=_top) == Retry(0.0)


def test_retry_after_as_an_http_date() -> None:
    later = format_datetime(NOW + timedelta(seconds=20), usegmt=True)
    outcome = Outcome(Event.STATUS, 503, retry_after=later)
    assert decide(0, outcome, LIMITS, now=NOW.timestamp()) == Retry(20.0)
    past = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    assert decide(0, Outcome(Event.STATUS, 429, past), LIMITS, now=NOW.timestamp()) == Retry(0.0)


@pytest.mark.parametrize(
    "asked",
    ["3600", "1e9", "inf", format_datetime(NOW + timedelta(days=2), usegmt=True)],
)
def test_retry_after_is_capped_by_max_backoff(asked: str) -> None:
    limits = Limits(retries=3, backoff=0.5, max_backoff=0.05)
    outcome = Outcome(Event.STATUS, 429, retry_after=asked)
    assert decide(0, outcome, limits, now=NOW.timestamp()) == Retry(0.05)


@pytest.mark.parametrize("asked", ["soon", "", "nan", "Someday, 99 Foo 20xx"])
def test_an_unreadable_retry_after_falls_back_to_the_jitter(asked: str) -> None:
    outcome = Outcome(Event.STATUS, 503, retry_after=asked)
    assert decide(1, outcome, LIMITS, uniform=_top) == Retry(1.0)


def test_retry_after_forms() -> None:
    assert retry_after("2", cap=30) == 2.0
    assert retry_after("0.25", cap=30) == 0.25
    assert retry_after("120", cap=30) == 30.0
    assert retry_after("-5", cap=30) == 0.0
    assert retry_after(None, cap=30) is None
    assert retry_after("soon", cap=30) is None
    date = format_datetime(NOW + timedelta(seconds=20), usegmt=True)
    assert retry_after(date, cap=30, now=NOW.timestamp()) == 20.0
    assert retry_after(date, cap=5, now=NOW.timestamp()) == 5.0
    # Against the clock, when no `now` is given.
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    asked = retry_after(soon, cap=30)
    assert asked is not None
    assert 15 <= asked <= 20


def test_a_status_outcome_needs_its_status() -> None:
    with pytest.raises(ValueError, match="needs its status"):
        decide(0, Outcome(Event.STATUS), LIMITS)
