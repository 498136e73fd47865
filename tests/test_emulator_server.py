"""The emulator as a server: capacity, keep-alive, limits, lifecycle, command line."""

from __future__ import annotations

import ast
import io
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

import finkcube.emulator
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


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"port": 99999}, "invalid port 99999: choose an integer from 0 to 65535"),
        ({"port": -1}, "invalid port -1"),
        ({"port": 8080.5}, "invalid port 8080.5"),
        ({"port": True}, "invalid port True"),
        ({"latency_ms": float("nan")}, "invalid latency nan: choose a number of milliseconds"),
        ({"latency_ms": float("inf")}, "invalid latency inf"),
        ({"latency_ms": -1.0}, "invalid latency -1.0"),
        ({"latency_ms": 1e300}, "invalid latency 1e[+]300"),
        ({"latency_ms": "fast"}, "invalid latency 'fast'"),
        ({"faults": float("nan")}, "invalid fault rate nan: choose a number from 0 to 1"),
        ({"faults": 1.5}, "invalid fault rate 1.5"),
        ({"faults": "often"}, "invalid fault rate 'often'"),
        ({"stall_s": float("inf")}, "invalid stall inf"),
        ({"retry_after_s": -1}, "invalid Retry-After -1"),
        ({"max_body_bytes": -5}, "invalid body cap -5"),
    ],
)
def test_bad_settings_are_one_line_input_errors(settings: dict, match: str) -> None:
    with pytest.raises(InputError, match=match) as refused:
        Emulator(**settings)
    assert "\n" not in str(refused.value)


def test_settings_at_the_ends_of_their_ranges_are_accepted() -> None:
    emu = Emulator(port=65535, latency_ms=0.0, faults=1.0, stall_s=0.0, retry_after_s=0)
    assert (emu.port, emu.latency_ms, emu.faults) == (65535, 0.0, 1.0)


def test_run_server_refuses_bad_settings_before_printing() -> None:
    out = io.StringIO()
    stopped = threading.Event()
    stopped.set()  # were a setting accepted, run_server would return at once, not hang
    with pytest.raises(InputError, match="invalid port 70000"):
        run_server(port=70000, out=out, stop=stopped)
    with pytest.raises(InputError, match="invalid latency nan"):
        run_server(latency_ms=float("nan"), out=out, stop=stopped)
    assert out.getvalue() == ""


def test_serve_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, start in (
        (["--faults", "2"], "invalid fault rate"),
        (["--faults", "nan"], "invalid fault rate"),
        (["--port", "99999"], "invalid port 99999"),
    ):
        assert serve(argv) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith(f"finkcube emulator: error: {start}")
        assert captured.err.count("\n") == 1
        assert captured.out == ""


@pytest.mark.parametrize(
    "entry",
    [["finkcube.emulator"], ["finkcube", "emulator"]],
    ids=["module", "cli"],
)
@pytest.mark.parametrize(
    "option", [["--port", "99999"], ["--latency-ms", "nan"]], ids=["port", "latency"]
)
def test_command_lines_refuse_bad_options_in_one_line(entry: list[str], option: list[str]) -> None:
    # A refused option exits at once; were it accepted, the server would run until the
    # timeout below kills it and the test fails.
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-m", *entry, *option],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 2
    assert option[1] in proc.stderr  # the line names the value refused
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert proc.stdout == ""


#: What the emulator may import from finkcube: the leaf modules and itself. The client's
#: code (finkcube.service, ...) stays out, or the stand-in would share the code it tests.
EMULATOR_MAY_IMPORT = {
    "finkcube._version", "finkcube.names", "finkcube.errors", "finkcube.ids",
    "finkcube.config", "finkcube.cutouts", "finkcube.stretch", "finkcube.emulator",
}  # fmt: skip


def test_the_emulator_imports_only_leaf_modules_of_finkcube() -> None:
    folder = Path(finkcube.emulator.__file__).parent
    files = sorted(folder.rglob("*.py"))
    assert len(files) > 10
    imported: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name == "finkcube" or name.startswith("finkcube."):
                    imported.setdefault(name, set()).add(path.name)
    assert "finkcube.stretch" in imported  # the walk does see the emulator's imports
    outside = {
        name: files_
        for name, files_ in imported.items()
        if not any(name == ok or name.startswith(ok + ".") for ok in EMULATOR_MAY_IMPORT)
    }
    assert outside == {}


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
