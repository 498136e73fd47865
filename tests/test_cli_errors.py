"""Bad input at the command line (issue 5): one line on stderr, exit 2, nothing sent or written.

Ids that are not positive decimal integers and malformed objects files are covered in
``test_cli_usage.py``; this file covers what needs a live service: unknown objects, output
paths that are not finkcube stores, and requests that must never be sent.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from finkcube.cli import main
from finkcube.emulator import Emulator
from finkcube.store import list_objects

UNKNOWN = 4242424242424242
OTHER_UNKNOWN = 4242424242424243


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one line the command wrote on stderr (and it wrote nothing on stdout)."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("finkcube: error: ")
    assert "Traceback" not in captured.err
    assert captured.out == ""
    return lines[0]


def _build(store: Path, *args: str, url: str) -> list[str]:
    return ["build", *args, "--out", str(store), "--url", url]


def test_unknown_object_writes_nothing(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert UNKNOWN not in emulator.catalog.object_ids()
    store = tmp_path / "s.zarr"
    assert main(_build(store, str(UNKNOWN), str(OTHER_UNKNOWN), url=emulator.url)) == 2
    line = _error_line(capsys)
    assert f"diaObjectIds {UNKNOWN}, {OTHER_UNKNOWN}" in line
    assert "nothing written" in line
    assert not store.exists()


def test_known_objects_are_built_and_unknown_ones_named(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = emulator.catalog.named("single")
    store = tmp_path / "s.zarr"
    assert main(_build(store, str(UNKNOWN), str(known), url=emulator.url)) == 2
    captured = capsys.readouterr()
    assert "1 built" in captured.out
    assert "1 failed" in captured.out
    lines = captured.err.strip().splitlines()
    assert lines == [
        f"finkcube: error: the service lists no source for diaObjectId {UNKNOWN}: "
        "unknown object? check the id"
    ]
    assert list_objects(store) == [known]


def test_an_unknown_object_in_an_existing_store_leaves_it_as_it_was(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "s.zarr"
    assert main(_build(store, str(emulator.catalog.named("single")), url=emulator.url)) == 0
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(_build(store, str(UNKNOWN), url=emulator.url)) == 2
    assert str(UNKNOWN) in _error_line(capsys)
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before


def test_many_unknown_objects_on_one_line(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [str(UNKNOWN + i) for i in range(8)]
    assert main(_build(tmp_path / "s.zarr", *ids, url=emulator.url)) == 2
    line = _error_line(capsys)
    assert ", ".join(ids[:5]) + " and 3 more" in line


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_foreign_output_path_is_refused_before_any_request(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    target = tmp_path / "mine"
    if kind == "folder":
        target.mkdir()
        (target / "notes.txt").write_text("keep me")
    else:
        target.write_text("keep me")
    before = Counter(emulator.requests)
    assert main(_build(target, str(emulator.catalog.named("single")), url=emulator.url)) == 2
    line = _error_line(capsys)
    assert "is not a finkcube store" in line
    assert "--overwrite" in line
    assert emulator.requests == before
    kept = target / "notes.txt" if kind == "folder" else target
    assert kept.read_text() == "keep me"


def test_overwrite_replaces_a_foreign_path(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("replace me")
    oid = emulator.catalog.named("single")
    assert main([*_build(target, str(oid), url=emulator.url), "--overwrite"]) == 0
    assert not (target / "notes.txt").exists()
    assert list_objects(target) == [oid]
    assert "1 built" in capsys.readouterr().out


def test_overwrite_with_only_unknown_objects_leaves_the_path_alone(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    assert main([*_build(target, str(UNKNOWN), url=emulator.url), "--overwrite"]) == 2
    assert "nothing written" in _error_line(capsys)
    assert (target / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("content", ["", "\n\n", "# only comments\n   # indented\n"])
def test_an_empty_objects_file(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text(content)
    store = tmp_path / "s.zarr"
    before = Counter(emulator.requests)
    assert main(_build(store, "--objects-file", str(ids), url=emulator.url)) == 2
    assert "no diaObjectId given" in _error_line(capsys)
    assert emulator.requests == before
    assert not store.exists()


@pytest.mark.parametrize("bad", ["", "abc", "-5", "1" * 20, "12 34", "0x1F"])
def test_one_bad_id_among_good_ones_sends_nothing(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    good = str(emulator.catalog.named("single"))
    store = tmp_path / "s.zarr"
    before = Counter(emulator.requests)
    assert main(_build(store, good, bad, url=emulator.url)) == 2
    assert f"invalid diaObjectId {bad!r}" in _error_line(capsys)
    assert emulator.requests == before
    assert not store.exists()


def test_objects_file_with_a_bad_line_among_good_ones_sends_nothing(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{emulator.catalog.named('single')}\n\n# x\n-12\n")
    before = Counter(emulator.requests)
    assert main(_build(tmp_path / "s.zarr", "--objects-file", str(ids), url=emulator.url)) == 2
    assert f"{ids}, line 4: invalid diaObjectId '-12'" in _error_line(capsys)
    assert emulator.requests == before


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "localhost:5000"])
def test_urls_other_than_http_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    store = tmp_path / "s.zarr"
    assert main(_build(store, "313761043604045880", url=url)) == 2
    assert "invalid service URL" in _error_line(capsys)
    assert not store.exists()


def test_info_errors_are_one_line(
    emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "s.zarr"
    assert main(_build(store, str(emulator.catalog.named("single")), url=emulator.url)) == 0
    capsys.readouterr()
    listing = sorted(p.name for p in store.rglob("*"))
    for argv, message in [
        (["info", str(store), "../etc"], "invalid diaObjectId '../etc'"),
        (["info", str(store), str(UNKNOWN)], f"no cube of diaObjectId {UNKNOWN}"),
        (["info", str(tmp_path / "nowhere.zarr")], "is not a finkcube store"),
        (["info", str(tmp_path)], "is not a finkcube store"),
    ]:
        assert main(argv) == 2, argv
        assert message in _error_line(capsys)
    assert sorted(p.name for p in store.rglob("*")) == listing
