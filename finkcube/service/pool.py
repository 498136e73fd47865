"""An ordered map on a bounded thread pool: the machinery of :meth:`FinkClient.map`.

The pool's ``workers`` threads are started on first use and shared by every call; each
call keeps at most ``2 * workers`` items submitted ahead and yields the results in input
order, cancelling the items not yet started when it stops early.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["OrderedPool"]

T = TypeVar("T")
R = TypeVar("R")


class OrderedPool:
    """A thread pool of ``workers`` threads, made on first use, with an ordered map.

    Examples
    --------
    >>> pool = OrderedPool(2, "doc")
    >>> list(pool.map(lambda x: x * x, range(5)))
    [0, 1, 4, 9, 16]
    >>> pool.close()
    """

    def __init__(self, workers: int, name: str) -> None:
        self.workers = workers
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Apply ``fn`` to every item on the pool, yielding results in input order."""
        pool = self._executor()
        window = 2 * self.workers
        source = iter(items)
        pending: deque[Future[R]] = deque(
            pool.submit(fn, item) for _, item in zip(range(window), source, strict=False)
        )
        return _drain(pool, fn, source, pending)

    def close(self) -> None:
        """Stop the threads, cancelling what has not started (the pool may be used again)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=self._name)
            return self._pool


def _drain(
    pool: ThreadPoolExecutor, fn: Callable[[T], R], source: Iterator[T], pending: deque[Future[R]]
) -> Iterator[R]:
    """Yield the results of ``pending`` in order, topping it up from ``source``."""
    try:
        while pending:
            result = pending.popleft().result()
            for item in source:
                pending.append(pool.submit(fn, item))
                break
            yield result
    finally:
        for future in pending:
            future.cancel()
