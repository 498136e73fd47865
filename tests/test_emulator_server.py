"""The emulator as a server: capacity, keep-alive, limits, lifecycle, command line."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from finkcube.emulator import Emulator, run_server, serve
from finkcube.errors import InputError

SOURCES = "/api/v1/sources"
TIMEOUT = 30


def emulator_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("finkcube-emulator")]


def test_serves_32_requests_at_once(emulator: Emulator) -> None:
    with Emulator(latency_ms=1500, catalog=emulator.catalog) as emu:
        fields = {"diaObjectId": str(emu.catalog.named("single")), "columns": "r:band"}

        def call(_: int) -> int:
            return requests.post(emu.url + SOURCES, json=fields, timeout=TIMEOUT).status_code

        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = list(pool.map(call, range(32)))
        assert statuses == [200] * 32
        assert emu.max_in_flight == 32
        assert emu.requests[SOURCES] == 32


def test_keep_alive_reuses_one_connection(emulator: Emulator) -> None:
    with Emulator(catalog=emulator.catalog) as emu, requests.Session() as session:
        source_id = emu.catalog.source_ids(emu.catalog.named("small"))[0]
        for kind in ("Science", "Template", "Difference") * 4:
            reply = session.post(
                emu.url + "/api/v1/cutouts",
                json={"diaSourceId": str(source_id), "kind": kind, "output-format": "array"},
                timeout=TIMEOUT,
            )
            assert reply.status_code == 200
        reply = session.get(emu.url + SOURCES, timeout=TIMEOUT)
        assert reply.status_code == 200
        assert emu.connections == 1
        assert emu.requests == {"/api/v1/cutouts": 12, SOURCES: 1}


def test_bodies_over_the_cap_are_413(emulator: Emulator) -> None:
    with Emulator(max_body_bytes=2000, catalog=emulator.catalog) as emu:
        object_id = str(emu.catalog.named("single"))
        small = requests.post(emu.url + SOURCES, json={"diaObjectId": object_id}, timeout=TIMEOUT)
        assert small.status_code == 200
        big = requests.post(
            emu.url + SOURCES,
            json={"diaObjectId": object_id, "columns": "r:band," * 1000},
            timeout=TIMEOUT,
        )
        assert big.status_code == 413


def test_unknown_path_and_method(emulator: Emulator) -> None:
    with Emulator(catalog=emulator.catalog) as emu:
        assert requests.get(emu.url + "/api/v1/nope", timeout=TIMEOUT).status_code == 404
        assert requests.put(emu.url + SOURCES, timeout=TIMEOUT).status_code == 405
        reply = requests.post(emu.url + SOURCES, data=b"diaObjectId=1", timeout=TIMEOUT)
        assert reply.status_code == 415
        reply = requests.post(
            emu.url + SOURCES,
            data=b"{not json",
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT,
        )
        assert reply.status_code == 400


def test_start_stop_leaves_no_thread_or_connection(emulator: Emulator) -> None:
    before = emulator_threads()
    emu = Emulator(catalog=emulator.catalog)
    with pytest.raises(InputError, match="not running"):
        _ = emu.url
    assert emu.start() is emu
    assert emu.url.startswith("http://127.0.0.1:")
    assert not emu.url.endswith("/")
    session = requests.Session()  # left open: stop() must close its idle connection
    assert session.get(emu.url + SOURCES, timeout=TIMEOUT).status_code == 200
    assert len(emulator_threads()) > len(before)
    emu.stop()
    emu.stop()
    assert emulator_threads() == before
    session.close()


def test_a_busy_port_is_an_input_error(emulator: Emulator) -> None:
    port = int(emulator.url.rsplit(":", 1)[1])
    with pytest.raises(InputError, match="cannot listen"):
        Emulator(port=port, catalog=emulator.catalog).start()


def test_run_server_prints_the_url_first_and_stops() -> None:
    out = io.StringIO()
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run_server(out=out, stop=stop)))
    thread.start()
    try:
        for _ in range(600):
            if out.getvalue().endswith("\n"):
                break
            stop.wait(0.05)
        line = out.getvalue().splitlines()[0]
        assert line.startswith("finkcube emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert requests.get(url + SOURCES, timeout=TIMEOUT).status_code == 200
    finally:
        stop.set()
        thread.join(TIMEOUT)
    assert result == [0]


def test_serve_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve(["--faults", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("finkcube emulator: error: invalid fault rate")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "entry",
    [["finkcube.emulator"], ["finkcube", "emulator", "--latency-ms", "5"]],
    ids=["module", "cli"],
)
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_module_entry_prints_url_and_serves_until_interrupted(
    stop_signal: int, entry: list[str]
) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-W", "error", "-m", *entry, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("finkcube emulator listening on http://127.0.0.1:")
        url = line.split()[-1]
        reply = requests.get(url + "/api/v1/cutouts", timeout=TIMEOUT)
        assert reply.status_code == 200
        assert proc.poll() is None
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=TIMEOUT) == 0
        assert proc.stderr is not None
        assert proc.stderr.read() == ""  # no traceback on interrupt, no warning
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
