"""The ordered, bounded map behind FinkClient.map (finkcube.service.pool.OrderedPool)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from finkcube.service.pool import OrderedPool

#: Long enough for a stuck test to be told from a slow machine.
WAIT_S = 20.0


def test_stopping_early_cancels_the_work_not_yet_started() -> None:
    pool = OrderedPool(2, "test-pool")
    started: list[int] = []
    lock = threading.Lock()
    gate = threading.Event()

    def slow(item: int) -> int:
        with lock:
            started.append(item)
        if item:  # the first result comes at once, every other task waits for the gate
            assert gate.wait(WAIT_S)
        return item

    results = pool.map(slow, range(100))
    assert next(results) == 0
    results.close()  # the consumer stops after the first item
    gate.set()
    # The executor runs its queue in order: once this later task has run, every task of the
    # first map still queued would have started before it.
    assert list(pool.map(lambda item: -item, [7])) == [-7]
    pool.close()  # waits for the running tasks
    # Only the tasks the two threads had already taken ran: the look-ahead window
    # (2 * workers submitted ahead) was cancelled, not run for a consumer who left.
    assert started[0] == 0
    assert set(started) <= {0, 1, 2}
    assert len(started) == len(set(started))


def test_results_come_in_input_order_with_a_bounded_look_ahead() -> None:
    pool = OrderedPool(3, "test-pool")
    submitted: list[int] = []
    gate = threading.Event()

    def items() -> Iterator[int]:
        for item in range(50):
            submitted.append(item)
            yield item

    def work(item: int) -> int:
        if item == 0:
            assert gate.wait(WAIT_S)  # hold the first result back
        return item * item

    results = pool.map(work, items())
    assert submitted == list(range(6))  # 2 * workers ahead, no more, while item 0 waits
    gate.set()
    assert list(results) == [item * item for item in range(50)]
    pool.close()


def test_an_error_is_raised_at_its_place_and_the_rest_is_cancelled() -> None:
    pool = OrderedPool(1, "test-pool")
    ran: list[int] = []

    def fail_on_two(item: int) -> int:
        ran.append(item)
        if item == 2:
            raise ValueError("two")
        return item

    results = pool.map(fail_on_two, range(100))
    assert [next(results), next(results)] == [0, 1]
    with pytest.raises(ValueError, match="two"):
        next(results)
    assert list(pool.map(lambda item: item, [9])) == [9]  # runs after anything still queued
    pool.close()
    assert ran == list(range(len(ran)))
    assert len(ran) <= 4  # item 2, and at most the window queued behind it when it failed
