"""Shared fixtures of the test suite."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_finkcube_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a ``FINKCUBE_*`` variable of the machine it runs on."""
    for name in list(os.environ):
        if name.startswith("FINKCUBE_"):
            monkeypatch.delenv(name)
