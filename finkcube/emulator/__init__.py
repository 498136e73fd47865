"""A stand-in for the Fink LSST API: a real HTTP server, quirks included.

It serves ``/api/v1/sources`` and ``/api/v1/cutouts`` the way the Fink service does, error
replies and oddities included: the real alerts of a packaged Avro sample (cutouts byte for
byte), their earlier sources with generated cutouts that imitate the real ones, and
generated objects that cover what real data will bring (see :meth:`Catalog.named`). Knobs:
latency per request, a rate of transient faults, a cap on request bodies.

It imports only finkcube's leaf modules (names, errors, ids, config, cutouts, stretch),
never the client's HTTP code: a stand-in that shared the code under test could not catch
its mistakes.

From Python::

    with Emulator(latency_ms=0, faults=0.0, seed=0) as emu:
        emu.url          # "http://127.0.0.1:PORT"
        emu.catalog      # what is served
        emu.requests     # Counter of request paths served

From a shell: ``finkcube emulator --port 0`` or ``python -m finkcube.emulator --port 0``.
"""

from __future__ import annotations

from finkcube.emulator.catalog import NAMED_OBJECTS, Catalog, load_catalog
from finkcube.emulator.entry import run_server, serve
from finkcube.emulator.faults import FAULT_KINDS, MAX_FAULTS_IN_A_ROW
from finkcube.emulator.server import Emulator

__all__ = [
    "FAULT_KINDS",
    "MAX_FAULTS_IN_A_ROW",
    "NAMED_OBJECTS",
    "Catalog",
    "Emulator",
    "load_catalog",
    "run_server",
    "serve",
]
