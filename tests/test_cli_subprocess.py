"""The installed ``finkcube`` console script, run as a user runs it: in a subprocess.

Every failure must end the process with exactly one ``finkcube: error: ...`` line on stderr,
the documented exit status (2: the user must act; 1: a failure while working) and no
traceback, not even one printed after the error line by a thread or at interpreter exit,
which a test calling ``main()`` in-process cannot see.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from finkcube.emulator import Emulator
from finkcube.emulator.alerts import sample_alerts_path
from finkcube.store import list_objects

_BESIDE = Path(sys.executable).parent / "finkcube"
#: The console script of this environment (the one ``pip install`` wrote).
FINKCUBE = str(_BESIDE) if _BESIDE.exists() else shutil.which("finkcube")

pytestmark = pytest.mark.skipif(FINKCUBE is None, reason="the finkcube console script is missing")


def _env(**extra: str) -> dict[str, str]:
    """The environment without the user's ``FINKCUBE_*``; failures fail fast (no retries)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINKCUBE_")}
    env.update({"FINKCUBE_RETRIES": "0", "FINKCUBE_TIMEOUT": "10"})
    env.update(extra)
    return env


def finkcube(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the console script to its end and return what it did."""
    assert FINKCUBE is not None
    return subprocess.run(
        [FINKCUBE, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=_env() if env is None else env,
        cwd=cwd,
    )


def error_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    """Check the process failed with ``code`` and one error line; return that line."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("finkcube: error: "), done.stderr
    assert done.returncode == code, done.stderr
    return lines[0]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def built(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of one complete object, built by the console script with ``--planes data``."""
    store = tmp_path_factory.mktemp("cli") / "s.zarr"
    oid = emulator.catalog.named("single")
    done = finkcube("build", oid, "--out", store, "--url", emulator.url)
    assert done.returncode == 0, done.stderr
    assert list_objects(store) == [oid]
    return store


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound by no listener: a connection to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_a_normal_build_exits_0_and_writes_nothing_on_stderr(
    emulator: Emulator, tmp_path: Path
) -> None:
    oid = emulator.catalog.named("small")
    done = finkcube("build", oid, "--out", tmp_path / "s.zarr", "--url", emulator.url)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "1 built" in done.stdout
    assert list_objects(tmp_path / "s.zarr") == [oid]


def test_a_rerun_on_complete_cubes_skips_them_quietly(emulator: Emulator, built: Path) -> None:
    before = _tree(built)
    oid = emulator.catalog.named("single")
    done = finkcube("build", oid, "--out", built, "--url", emulator.url)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "1 skipped" in done.stdout
    assert _tree(built) == before


@pytest.mark.parametrize("kind", ["file", "foreign folder"])
def test_build_refuses_an_out_that_is_not_a_store(
    kind: str, emulator: Emulator, tmp_path: Path
) -> None:
    out = tmp_path / "thing"
    if kind == "file":
        out.write_text("keep me\n")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("keep me\n")
    sent = emulator.requests.total()
    done = finkcube("build", emulator.catalog.named("single"), "--out", out, "--url", emulator.url)
    assert "not a finkcube store" in error_line(done, 2)
    assert emulator.requests.total() == sent
    assert (out.read_text() if kind == "file" else (out / "notes.txt").read_text()) == "keep me\n"


def test_build_refuses_an_out_under_a_file_before_any_request(
    emulator: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "afile").write_text("keep me\n")
    sent = emulator.requests.total()
    out = tmp_path / "afile" / "c.zarr"
    done = finkcube("build", emulator.catalog.named("single"), "--out", out, "--url", emulator.url)
    assert "afile" in error_line(done, 2)
    assert emulator.requests.total() == sent
    assert (tmp_path / "afile").read_text() == "keep me\n"


@pytest.mark.parametrize("address", ["localhost", "foo://127.0.0.1:9", "tcp://127.0.0.1:{port}"])
def test_a_bad_scheduler_is_one_line_and_nothing_at_exit(
    address: str, closed_port: int, emulator: Emulator, tmp_path: Path
) -> None:
    """No half-made dask client is left to hang and print a traceback at exit."""
    pytest.importorskip("distributed")
    address = address.format(port=closed_port)
    env = _env(DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1s")
    sent = emulator.requests.total()
    done = finkcube("build", emulator.catalog.named("single"), "--out", tmp_path / "c.zarr",
                    "--url", emulator.url, "--scheduler", address, env=env)  # fmt: skip
    assert "dask scheduler" in error_line(done, 2)
    assert emulator.requests.total() == sent
    assert not (tmp_path / "c.zarr").exists()


def test_update_of_a_missing_store(tmp_path: Path) -> None:
    done = finkcube("update", tmp_path / "missing.zarr")
    assert "missing.zarr" in error_line(done, 2)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FINKCUBE_TIMEOUT", "abc"),
        ("FINKCUBE_TIMEOUT", "-3"),
        ("FINKCUBE_RETRIES", "-1"),
        ("FINKCUBE_RETRIES", "two"),
        ("FINKCUBE_URL", "ftp://example.org"),
    ],
)
def test_a_bad_environment_variable_is_named(
    variable: str, value: str, emulator: Emulator, tmp_path: Path
) -> None:
    sent = emulator.requests.total()
    # FINKCUBE_URL is only read without --url.
    url = [] if variable == "FINKCUBE_URL" else ["--url", emulator.url]
    out = tmp_path / "s.zarr"
    done = finkcube(
        "build", emulator.catalog.named("single"), "--out", out, *url, env=_env(**{variable: value})
    )
    assert variable in error_line(done, 2)
    assert emulator.requests.total() == sent
    assert not out.exists()


def test_a_closed_port_is_a_failure_while_working(closed_port: int, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    done = finkcube("build", "313761043604045880", "--out", tmp_path / "s.zarr", "--url", url)
    assert url in error_line(done, 1)
    assert not (tmp_path / "s.zarr").exists()


def test_update_with_a_closed_port_in_url(closed_port: int, built: Path) -> None:
    before = _tree(built)
    done = finkcube("update", built, "--url", f"http://127.0.0.1:{closed_port}")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "127.0.0.1" in done.stderr
    assert all(line.startswith("finkcube: ") for line in done.stderr.splitlines())
    assert _tree(built) == before


def test_update_prefers_finkcube_url_to_the_stored_url(closed_port: int, built: Path) -> None:
    # The store was built from the emulator, which is up: the variable must win over it.
    done = finkcube("update", built, env=_env(FINKCUBE_URL=f"http://127.0.0.1:{closed_port}"))
    assert done.returncode == 1, done.stderr
    assert f"127.0.0.1:{closed_port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_update_without_url_uses_the_stored_url(built: Path) -> None:
    done = finkcube("update", built)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "1 unchanged" in done.stdout


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_one_line_naming_the_file(built: Path, emulator: Emulator) -> None:
    # Writes to /dev/full fail with ENOSPC, as on a full disk; the error carries no path.
    out = built.parent / "full.png"
    out.unlink(missing_ok=True)
    out.symlink_to("/dev/full")
    done = finkcube("plot", built, emulator.catalog.named("single"), "-o", out)
    line = error_line(done, 1)
    assert "No space left on device" in line
    assert str(out) in line


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_emulator_rejects_a_bad_port(port: str) -> None:
    done = finkcube("emulator", "--port", port)
    assert "--port" in error_line(done, 2)


def test_emulator_on_a_port_in_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        done = finkcube("emulator", "--port", sock.getsockname()[1])
    assert done.returncode in (1, 2), done.stderr
    error_line(done, done.returncode)


@pytest.mark.parametrize("kind", ["file", "foreign folder", "under a file"])
def test_demo_refuses_an_out_it_did_not_make(kind: str, tmp_path: Path) -> None:
    thing = tmp_path / "thing"
    if kind == "foreign folder":
        thing.mkdir()
        (thing / "notes.txt").write_text("keep me\n")
    else:
        thing.write_text("keep me\n")
    out = thing / "demo" if kind == "under a file" else thing
    before = _tree(tmp_path)
    assert "--out" in error_line(finkcube("demo", "--out", out, cwd=tmp_path), 2)
    assert _tree(tmp_path) == before


@pytest.mark.slow
def test_demo_runs_again_on_its_own_output(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    for run in ("first", "again"):
        done = finkcube("demo", "--out", out, cwd=tmp_path)
        assert done.returncode == 0, f"{run}: {done.stderr}"
        assert done.stderr == "", run
        assert (out / "preview.png").stat().st_size > 10_000
    assert "1 skipped" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["cubes.zarr", "preview.png"]


PLAIN_ID = "313761043604045880"


@pytest.mark.parametrize("with_id", [False, True], ids=["store", "store-and-id"])
def test_info_on_a_plain_xarray_zarr_store(with_id: bool, tmp_path: Path) -> None:
    store = tmp_path / "plain.zarr"
    # A Zarr v3 store from plain xarray: its `time` coordinate is compressed (zstd).
    times = np.array([60000.5, 60001.5, 60002.5])
    cube = xr.Dataset(
        {"cutout": (("time", "y"), np.zeros((3, 2), "float32"))}, coords={"time": times}
    )
    cube.to_zarr(store, group=PLAIN_ID, zarr_format=3, consolidated=False)
    done = finkcube("info", store, *([PLAIN_ID] if with_id else []))
    assert "not a finkcube store" in error_line(done, 2)


@pytest.mark.parametrize("option", [["--planes", "all"], ["--size", "99"]])
def test_a_rerun_with_other_options_is_refused(
    option: list[str], emulator: Emulator, built: Path
) -> None:
    before = _tree(built)
    oid = emulator.catalog.named("single")
    done = finkcube("build", oid, "--out", built, "--url", emulator.url, *option)
    assert "was built with" in error_line(done, 2)
    assert _tree(built) == before


def test_verbose_verbose_adds_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    args = ("build", "313761043604045880", "--out", tmp_path / "afile")
    quiet = finkcube(*args, "--url", "http://127.0.0.1:9")
    line = error_line(quiet, 2)
    loud = finkcube("-vv", *args, "--url", "http://127.0.0.1:9")
    assert loud.returncode == 2
    assert "Traceback" in loud.stderr
    assert loud.stderr.splitlines()[-1] == line


def test_ctrl_c_exits_130_with_one_line(tmp_path: Path) -> None:
    with Emulator(latency_ms=3000) as slow:
        assert FINKCUBE is not None
        oid = slow.catalog.named("single")
        proc = subprocess.Popen(
            [FINKCUBE, "build", str(oid), "--out", str(tmp_path / "s.zarr"), "--url", slow.url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while slow.requests.total() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow.requests.total() > 0, "the build sent no request"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.splitlines() == ["finkcube: interrupted"]
    store = tmp_path / "s.zarr"
    assert not store.exists() or list_objects(store) == []


def _s3_env(closed_port: int, **extra: str) -> dict[str, str]:
    """The user's S3 settings replaced: an endpoint nobody answers on, one attempt a call."""
    env = {k: v for k, v in _env().items() if not k.startswith(("AWS_", "FSSPEC_"))}
    home = env.get("HOME", "")
    env |= {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",  # no credentials from an instance either
        "AWS_SHARED_CREDENTIALS_FILE": f"{home}/no-such-aws-credentials",
        "AWS_CONFIG_FILE": f"{home}/no-such-aws-config",
    }
    return env | extra


@pytest.mark.parametrize("credentials", [False, True], ids=["no credentials", "no endpoint"])
def test_an_s3_store_that_cannot_be_reached_is_one_line(
    credentials: bool, closed_port: int, built: Path, tmp_path: Path
) -> None:
    pytest.importorskip("s3fs")
    keys = {"AWS_ACCESS_KEY_ID": "finkcube", "AWS_SECRET_ACCESS_KEY": "test"} if credentials else {}
    env = _s3_env(closed_port, **keys)
    reason = "Could not connect to the endpoint URL" if credentials else "AWS_ACCESS_KEY_ID"
    for args in (
        ("ingest", sample_alerts_path(), "--out", "s3://cubes/s.zarr"),
        ("info", "s3://cubes/s.zarr"),
        (
            "build",
            "313761043604045880",
            "--out",
            "s3://cubes/s.zarr",
            "--url",
            "http://127.0.0.1:9",
        ),
        ("export", built, "s3://cubes/s.zarr", "--size", "31"),
    ):
        line = error_line(finkcube(*args, env=env), 1)
        assert line.startswith("finkcube: error: s3://cubes/s.zarr: "), line
        assert reason in line
    # Alert files listed on S3: the paths are the user's to fix.
    line = error_line(
        finkcube("ingest", "s3://alerts/night/", "--out", tmp_path / "s.zarr", env=env), 2
    )
    assert line.startswith("finkcube: error: cannot list 's3://alerts/night/': ")
    assert reason in line
    assert not (tmp_path / "s.zarr").exists()


def test_storage_options_the_sdk_refuses_are_one_line(closed_port: int, tmp_path: Path) -> None:
    # s3fs hands its options to aiobotocore only at the first call, as a TypeError.
    pytest.importorskip("s3fs")
    env = _s3_env(closed_port, FSSPEC_S3='{"retries": 1}')
    for args, status, start in (
        (("info", "s3://cubes/s.zarr"), 1, "finkcube: error: s3://cubes/s.zarr: "),
        (("ingest", "s3://alerts/night/", "--out", tmp_path / "s.zarr"), 2,
         "finkcube: error: cannot list 's3://alerts/night/': "),
    ):  # fmt: skip
        line = error_line(finkcube(*args, env=env), status)
        assert line.startswith(start), line
        assert "the storage options were refused" in line, line
        assert "'retries'" in line, line
        assert "FSSPEC_<PROTOCOL>" in line, line
    assert not (tmp_path / "s.zarr").exists()


def test_an_icechunk_repository_on_s3_without_credentials_is_one_line(closed_port: int) -> None:
    pytest.importorskip("icechunk")
    env = _s3_env(closed_port, AWS_DEFAULT_REGION="us-east-1")
    for args in (
        ("info", "icechunk+s3://cubes/s"),
        (
            "build",
            "313761043604045880",
            "--out",
            "icechunk+s3://cubes/s",
            "--url",
            "http://127.0.0.1:9",
        ),
    ):
        line = error_line(finkcube(*args, env=env), 1)
        assert line.startswith("finkcube: error: icechunk+s3://cubes/s: "), line
        # Icechunk's report on one line: what failed, then its innermost cause.
        assert line.endswith(": no providers in chain provided credentials"), line
