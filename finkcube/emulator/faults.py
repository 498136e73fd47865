"""Deterministic transient faults, so that a client that retries always succeeds.

For each request the emulator asks :meth:`FaultPlan.decide` whether to fail it and how. The
answer depends only on the seed, the request (method, path, query and body) and how many
times that same request came before, so a run is reproducible; the same request never
fails more than :data:`MAX_FAULTS_IN_A_ROW` times in a row, so a client with that many
retries always gets through.
"""

from __future__ import annotations

import hashlib
import math
import threading
from typing import Final

from finkcube.errors import InputError

__all__ = ["FAULT_KINDS", "MAX_FAULTS_IN_A_ROW", "FaultPlan"]

#: The faults, in the order the plan picks among them: an HTTP 503, an HTTP 429 with
#: ``Retry-After``, a connection closed without a reply, a body cut halfway (after headers
#: announcing all of it), and a reply that comes only after a stall.
FAULT_KINDS: Final = ("503", "429", "drop", "truncate", "stall")
#: The most faults one request meets in a row.
MAX_FAULTS_IN_A_ROW: Final = 3
_MAX_TRACKED = 200_000


class FaultPlan:
    """Which requests fail, and how.

    Parameters
    ----------
    rate : float
        Probability (0 to 1) that an attempt fails, before the cap on faults in a row.
    seed : int, optional
        Seed of the draws.

    Raises
    ------
    InputError
        When ``rate`` is not a number from 0 to 1.

    Examples
    --------
    >>> plan = FaultPlan(1.0, seed=0)
    >>> [plan.decide("POST /api/v1/sources {}") is not None for _ in range(5)]
    [True, True, True, False, True]
    """

    def __init__(self, rate: float, seed: int = 0) -> None:
        try:
            value = float(rate)
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise InputError(f"invalid fault rate {rate!r}: choose a number from 0 to 1")
        self.rate = value
        self.seed = int(seed)
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        self._in_a_row: dict[str, int] = {}

    def _draw(self, key: str, attempt: int) -> tuple[float, int]:
        digest = hashlib.blake2b(f"{self.seed}\0{key}\0{attempt}".encode(), digest_size=16).digest()
        uniform = int.from_bytes(digest[:8], "big") / 2.0**64
        return uniform, int.from_bytes(digest[8:], "big") % len(FAULT_KINDS)

    def decide(self, key: str) -> str | None:
        """Return the fault for this attempt of the request ``key``, or None to serve it.

        Parameters
        ----------
        key : str
            What identifies the request (the same for each retry of it).

        Returns
        -------
        str or None
            One of :data:`FAULT_KINDS`, or None.
        """
        if self.rate <= 0.0:
            return None
        with self._lock:
            if len(self._attempts) > _MAX_TRACKED:
                self._attempts.clear()
                self._in_a_row.clear()
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
            in_a_row = self._in_a_row.get(key, 0)
            uniform, which = self._draw(key, attempt)
            if in_a_row >= MAX_FAULTS_IN_A_ROW or uniform >= self.rate:
                self._in_a_row[key] = 0
                return None
            self._in_a_row[key] = in_a_row + 1
            return FAULT_KINDS[which]
