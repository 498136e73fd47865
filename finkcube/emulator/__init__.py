"""A stand-in for the Fink LSST API: a real HTTP server, quirks included.

It serves ``/api/v1/sources`` and ``/api/v1/cutouts`` the way the Fink service does, error
replies and oddities included: the real alerts of a packaged Avro sample (cutouts byte for
byte), their earlier sources with generated cutouts that imitate the real ones, and
generated objects that cover what real data will bring (see :meth:`Catalog.named`). It also
serves the endpoints that find objects: ``/api/v1/objects`` (diaObject aggregates computed
from the sources), ``/api/v1/fp`` (forced photometry, one row per visit),
``/api/v1/conesearch``, ``/api/v1/tags`` and ``/api/v1/resolver`` (TNS names); see
:mod:`~.search`. Knobs: latency per request, a rate of transient faults, a cap on request
bodies.

It imports only finkcube's leaf modules (names, errors, ids, config, cutouts, stretch),
never the client's HTTP code: a stand-in that shared the code under test could not catch
its mistakes.

From Python::

    with Emulator(latency_ms=0, faults=0.0, seed=0) as emu:
        emu.url          # "http://127.0.0.1:PORT"
        emu.catalog      # what is served
        emu.requests     # Counter of request paths served

What tests read of, and add to, the catalog, besides its sources and cutouts::

    emu.catalog.position(object_id) -> (ra, dec)     # degrees: the mean of its sources'
    emu.catalog.tag_objects(tag) -> list[int]         # the tag's objects, newest alert first
    emu.catalog.add_to_tag(object_id, tag)            # its latest alert joins the tag
    emu.catalog.names(object_id) -> list[str]         # its TNS names ("AT 2026abc")
    emu.catalog.forced_photometry(object_id)          # the rows /api/v1/fp serves (dicts)
    emu.catalog.add_object(ra, dec, sources=5, tags=(), name=None) -> int
                                                      # an object where a cone test wants it
    emu.catalog.fail_cutouts(source_id, reply="null", times=None)
                                # its next cutout requests fail ("empty", "500", "html",
                                # "null", "garbled"), then it is served: a transient hole
    emu.catalog.serve_cutouts(source_id)              # served as usual again
    emu.catalog.pandas2 = True                        # null text/bool cells sent as "nan"

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
