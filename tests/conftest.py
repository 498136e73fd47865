"""Shared fixtures of the test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from finkcube.emulator import Emulator


@pytest.fixture(autouse=True)
def _clean_finkcube_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a ``FINKCUBE_*`` variable of the machine it runs on."""
    for name in list(os.environ):
        if name.startswith("FINKCUBE_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """A running Fink LSST API emulator (no latency, no faults) shared by the session.

    Tests that need latency, faults or a catalog of their own start their own ``Emulator``.
    """
    from finkcube.emulator import Emulator

    with Emulator(latency_ms=0.0, faults=0.0, seed=0) as emu:
        yield emu
