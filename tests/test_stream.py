"""Tests of finkcube.store.iter_cutouts: every cube's pixels, in order, read ahead."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest
import zarr

from finkcube.errors import IncompleteCubeError, InputError, InvalidIdError, NotFoundError
from finkcube.store import (
    COMPLETE_ATTR,
    delete_cube,
    init_store,
    iter_cutouts,
    open_cube,
    write_cube,
)
from finkcube.store import stream as _stream
from tests._cubes import synthetic_cube

#: Objects of different sizes, written in an order that is not the id order.
CUBES = {33: (30, 41), 7: (30,) * 12, 1000: (64, 30, 50), 12: (35,)}


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store holding :data:`CUBES`, on disk or in fsspec's memory filesystem."""
    if request.param == "local":
        url = str(tmp_path / "cubes.zarr")
    else:
        url = f"memory://stream-{uuid.uuid4().hex}.zarr"
    init_store(url)
    for oid, sides in CUBES.items():
        write_cube(synthetic_cube(sides, object_id=oid, seed=oid), url)
    yield url
    if request.param == "memory":
        fsspec.filesystem("memory").rm(url.removeprefix("memory://"), recursive=True)


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_every_cube_in_id_order_with_open_cubes_values(
    store: str, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_stream, "BATCH_BYTES", 200_000)  # several objects, several batches
    got = list(iter_cutouts(store, threads=threads))
    assert [oid for oid, _ in got] == sorted(CUBES)
    for oid, array in got:
        expected = open_cube(store, oid).cutout.values
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, expected)
        assert array.flags.writeable


def test_attributes_and_arrays_in_one_pass_equal_plain_zarr(store: str) -> None:
    from finkcube.store.stream import read_with_attributes

    got = read_with_attributes(store, [1000, 7], variable="diaSourceId", threads=1)
    assert sorted(got) == [7, 1000]
    root = zarr.open_group(store, mode="r")  # the oracle: zarr-python alone
    for oid, (attrs, ids) in got.items():
        assert attrs == dict(root[str(oid)].attrs)
        np.testing.assert_array_equal(ids, root[str(oid)]["diaSourceId"][...])


def test_chosen_objects_come_in_the_order_asked(store: str) -> None:
    got = [oid for oid, _ in iter_cutouts(store, ["1000", 7, 33])]
    assert got == [1000, 7, 33]


def test_psf_of_a_full_planes_cube_and_a_clear_error_without_one(tmp_path: Path) -> None:
    url = str(tmp_path / "full.zarr")
    init_store(url)
    write_cube(synthetic_cube((30, 40), planes="all", object_id=5), url)
    write_cube(synthetic_cube((30,), object_id=6), url)
    ((oid, psf),) = iter_cutouts(url, [5], variable="psf")
    assert oid == 5
    np.testing.assert_array_equal(psf, open_cube(url, 5).psf.values)
    with pytest.raises(InputError, match=r"diaObjectId 6 has no array 'psf'.*planes='all'"):
        iter_cutouts(url, variable="psf")


def test_bad_requests_fail_before_anything_is_read(store: str) -> None:
    with pytest.raises(NotFoundError, match="no cube of diaObjectId 99"):
        iter_cutouts(store, [7, 99])
    with pytest.raises(InvalidIdError):
        iter_cutouts(store, ["7x"])
    for bad in (-1, 1.5, True):
        with pytest.raises(InputError, match="threads must be a whole number"):
            iter_cutouts(store, threads=bad)  # type: ignore[arg-type]


def test_an_incomplete_cube_is_refused_by_name_and_skipped_by_default(store: str) -> None:
    zstore = zarr.storage.FsspecStore.from_url(store) if "://" in store else store
    del zarr.open_group(zstore, path="12", mode="r+").attrs[COMPLETE_ATTR]  # as if cut short
    assert 12 not in [oid for oid, _ in iter_cutouts(store)]
    with pytest.raises(IncompleteCubeError, match="diaObjectId 12"):
        iter_cutouts(store, [12])


def test_stopping_early_stops_the_readers(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_stream, "BATCH_BYTES", 1)  # one object per batch: many queued
    stream = iter_cutouts(store, threads=2)
    first, _ = next(stream)
    stream.close()  # type: ignore[attr-defined]
    assert first == min(CUBES)
    assert list(stream) == []


@pytest.mark.parametrize("threads", [0, 2])
def test_a_cube_rewritten_after_the_check_is_read_in_its_new_version(
    store: str, threads: int
) -> None:
    stream = iter_cutouts(store, [7, 33], threads=threads)  # every cube checked here
    newer = synthetic_cube((30, 44, 50), object_id=7, seed=99)
    write_cube(newer, store)  # then 7 is rewritten before anything is read
    got = dict(stream)
    np.testing.assert_array_equal(got[7], newer.cutout.values)
    np.testing.assert_array_equal(got[33], open_cube(store, 33).cutout.values)


@pytest.mark.parametrize("threads", [0, 2])
def test_a_cube_deleted_after_the_check_is_an_error_not_a_hole(store: str, threads: int) -> None:
    stream = iter_cutouts(store, [7], threads=threads)
    delete_cube(store, 7)
    with pytest.raises(IncompleteCubeError, match=r"diaObjectId 7 .* deleted while being read"):
        list(stream)
