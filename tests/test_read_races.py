"""Readers racing writers: every read returns one complete version of a cube, or an error.

Reader threads read a cube again and again (``open_cube(...).load()``, ``iter_cutouts``,
``open_store(...).to_datatree()``) while another thread rewrites it (updates adding epochs,
``--overwrite`` rebuilds). The oracle is plain xarray: right after each of its writes, the
writer thread, the only writer, reads the cube with ``xr.open_zarr``. A read must equal the
version of its number of epochs, value for value; a read may fail only with finkcube's own errors
(a cube rewritten under a lazy reader says "open it again"), never return a mix or NaN
where the cube has pixels.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from finkcube import build_store, update_store
from finkcube.emulator import Emulator
from finkcube.errors import FinkcubeError, NotFoundError
from finkcube.store import iter_cutouts, open_cube, open_store

READERS = 2
MIN_READS = 200


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def _plain(store: str, oid: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mid-run, the root is not consolidated
        return np.asarray(xr.open_zarr(store, group=str(oid), consolidated=False).cutout.values)


def _race(
    store: str, oid: int, write: Callable[[int], None], rounds: int
) -> tuple[dict[int, np.ndarray], list[tuple[str, Any]], int]:
    """Readers against ``rounds`` calls of ``write``: the versions, the reads, the errors."""
    versions = {}
    arr = _plain(store, oid)
    versions[arr.shape[0]] = arr
    done = threading.Event()
    reads: list[tuple[str, Any]] = []
    errors: list[BaseException] = []
    refused = [0]

    def writer() -> None:
        try:
            for i in range(rounds):
                write(i)
                arr = _plain(store, oid)
                versions[arr.shape[0]] = arr
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def from_tree() -> np.ndarray:
        tree = open_store(store).to_datatree()
        if str(oid) not in tree.children:  # between an overwrite's delete and its write
            raise NotFoundError(f"no cube {oid} in the tree")
        return np.asarray(tree[str(oid)].cutout.values)

    ways: list[Callable[[], np.ndarray]] = [
        lambda: open_cube(store, oid).load().cutout.values,
        lambda: next(iter(iter_cutouts(store, [oid])))[1],
        from_tree,
    ]

    def reader(start: int) -> None:
        i = start
        while not done.is_set() or len(reads) < MIN_READS:
            way = i % len(ways)
            i += 1
            try:
                reads.append((str(way), np.asarray(ways[way]())))
            except FinkcubeError as exc:  # refused, never wrong
                reads.append(("error", exc))
                refused[0] += 1
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(READERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return versions, reads, refused[0]


def _wrong(versions: dict[int, np.ndarray], reads: list[tuple[str, Any]]) -> list[str]:
    wrong = []
    for way, got in reads:
        if way == "error":
            continue
        want = versions.get(got.shape[0])
        if want is None or not np.array_equal(got, want, equal_nan=True):
            wrong.append(f"{way}: {got.shape}, {np.isnan(got).mean():.0%} NaN")
    return wrong


def test_reads_during_repeated_updates_each_equal_a_complete_version(
    emu: Emulator, tmp_path: Path
) -> None:
    oid = emu.catalog.named("small")
    store = str(tmp_path / "cubes.zarr")
    build_store([oid], store, url=emu.url)

    def write(_: int) -> None:
        emu.catalog.add_sources(oid, 1)
        (result,) = update_store(store, url=emu.url).results
        assert result.status == "updated"

    versions, reads, refused = _race(store, oid, write, rounds=12)
    assert len(versions) == 13
    assert _wrong(versions, reads) == []
    good = len(reads) - refused
    assert good >= MIN_READS // 2, (good, refused)  # most reads succeed
    for way in ("0", "1", "2"):
        assert any(w == way for w, _ in reads)


def test_reads_during_overwrite_rebuilds_are_right_or_refused(
    emu: Emulator, tmp_path: Path
) -> None:
    oid = emu.catalog.named("small")
    store = str(tmp_path / "cubes.zarr")
    build_store([oid], store, url=emu.url)

    def write(_: int) -> None:
        build_store([oid], store, url=emu.url, overwrite=True)

    versions, reads, _ = _race(store, oid, write, rounds=10)
    assert len(versions) == 1
    assert _wrong(versions, reads) == []
    assert any(way != "error" for way, _ in reads)
