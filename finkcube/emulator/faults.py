"""Deterministic transient faults, so that a client that retries always succeeds.

For each request the emulator asks :meth:`FaultPlan.decide` whether to fail it and how. The
answer depends only on the seed, the request (method, path, query and body) and how many
times that same request came before, so a run is reproducible; the same request never
fails more than :data:`MAX_FAULTS_IN_A_ROW` times in a row, so a client with that many
retries always gets through.

Besides those drawn faults, a request can ask for a hostile reply of its own with the
:data:`FORCED_FAULT_HEADER` header (see :func:`forced_fault`): a reply dripped slowly, a body
larger than any real one, JSON nested too deep, a FITS file whose header claims a huge
compressed image. Only a request carrying the header gets one, so what the emulator serves
by default is unchanged; the tests that need them send the header through a
``requests.Session`` of their own.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from finkcube.errors import InputError

__all__ = [
    "FAULT_KINDS",
    "FORCED_FAULTS",
    "FORCED_FAULT_HEADER",
    "MAX_FAULTS_IN_A_ROW",
    "FaultPlan",
    "ForcedFault",
    "compressed_fits",
    "deep_json",
    "forced_fault",
    "junk_chunks",
]

#: The faults, in the order the plan picks among them: an HTTP 503, an HTTP 429 with
#: ``Retry-After``, a connection closed without a reply, a body cut halfway (after headers
#: announcing all of it), and a reply that comes only after a stall.
FAULT_KINDS: Final = ("503", "429", "drop", "truncate", "stall")
#: The most faults one request meets in a row.
MAX_FAULTS_IN_A_ROW: Final = 3
_MAX_TRACKED = 200_000

#: The request header that asks the emulator for a forced fault: ``KIND`` or ``KIND=VALUE``.
FORCED_FAULT_HEADER: Final = "X-Emulator-Fault"
#: The forced faults and the default of their value: ``drip`` sends the real reply one byte
#: every VALUE seconds; ``oversize`` answers 200 with VALUE bytes of JSON whitespace;
#: ``deep-json`` answers 200 with VALUE nested ``[``; ``huge-fits`` answers 200 with a FITS
#: file whose tile-compressed ``PSFIMAGE`` claims VALUE x VALUE pixels.
FORCED_FAULTS: Final = {"drip": 0.1, "oversize": 256e6, "deep-json": 100_000, "huge-fits": 100_000}
_CHUNK = 64 * 1024
_CARD = 80
_BLOCK = 2880


@dataclass(frozen=True, slots=True)
class ForcedFault:
    """A fault a request asked for: its kind (of :data:`FORCED_FAULTS`) and value."""

    kind: str
    value: float


def forced_fault(header: str | None) -> ForcedFault | None:
    """The fault a :data:`FORCED_FAULT_HEADER` value asks for; None for none or an unknown one.

    Examples
    --------
    >>> forced_fault("drip=0.01"), forced_fault("huge-fits")
    (ForcedFault(kind='drip', value=0.01), ForcedFault(kind='huge-fits', value=100000))
    >>> forced_fault(None), forced_fault("nonsense"), forced_fault("drip=-1")
    (None, None, None)
    """
    if not header:
        return None
    kind, _, text = header.strip().partition("=")
    if kind not in FORCED_FAULTS:
        return None
    try:
        value = float(text) if text else FORCED_FAULTS[kind]
    except ValueError:
        return None
    return ForcedFault(kind, value) if math.isfinite(value) and value >= 0 else None


def junk_chunks(size: int) -> Iterator[bytes]:
    """``size`` bytes of JSON whitespace, in chunks (never held in memory at once)."""
    chunk = b" " * _CHUNK
    while size > 0:
        yield chunk[: min(size, _CHUNK)]
        size -= _CHUNK


def deep_json(depth: int) -> bytes:
    """``depth`` nested JSON arrays, left open as a parser overflowing would see them.

    Examples
    --------
    >>> deep_json(3)
    b'[[['
    """
    return b"[" * depth


def _header(*cards: tuple[str, object]) -> bytes:
    def value(v: object) -> str:
        if isinstance(v, bool):
            return "T" if v else "F"
        return f"'{v}'" if isinstance(v, str) else str(v)

    text = "".join(f"{k:<8}= {value(v):>20}".ljust(_CARD) for k, v in cards) + "END".ljust(_CARD)
    return text.encode().ljust(-(-len(text) // _BLOCK) * _BLOCK)


def compressed_fits(side: int, cutout_side: int = 30) -> bytes:
    """A cutout FITS file whose ``PSFIMAGE`` is a tile-compressed HDU claiming ``side``² pixels.

    The primary HDU is a valid ``cutout_side`` square float32 image of zeros; the compressed
    HDU's table is a single empty tile, so the file is a few kB whatever it claims.
    """
    primary = _header(
        ("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 2),
        ("NAXIS1", cutout_side), ("NAXIS2", cutout_side), ("EXTEND", True),
    )  # fmt: skip
    data = bytes(4 * cutout_side * cutout_side)
    data += bytes(-len(data) % _BLOCK)
    table = _header(
        ("XTENSION", "BINTABLE"), ("BITPIX", 8), ("NAXIS", 2), ("NAXIS1", 8), ("NAXIS2", 1),
        ("PCOUNT", 0), ("GCOUNT", 1), ("TFIELDS", 1), ("TTYPE1", "COMPRESSED_DATA"),
        ("TFORM1", "1PB(0)"), ("ZIMAGE", True), ("ZBITPIX", -32), ("ZNAXIS", 2),
        ("ZNAXIS1", side), ("ZNAXIS2", side), ("ZTILE1", side), ("ZTILE2", 1),
        ("ZCMPTYPE", "RICE_1"), ("EXTNAME", "PSFIMAGE"),
    )  # fmt: skip
    return primary + data + table + bytes(8).ljust(_BLOCK, b"\0")


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
