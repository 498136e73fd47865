"""Forced photometry in the cube: the ``fp_time`` dimension equals what ``/api/v1/fp`` serves,
survives the store, is refreshed by an update and drawn by the light-curve plot."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from finkcube import InputError, build_cube, build_store, open_cube, update_store
from finkcube.cli import main
from finkcube.emulator import Emulator

FP = ("fp_diaForcedSourceId", "fp_visit", "fp_band", "fp_psfFlux", "fp_psfFluxErr",
      "fp_scienceFlux", "fp_scienceFluxErr")  # fmt: skip


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """An emulator of this module's own: its tests add sources to objects."""
    with Emulator() as emu:
        yield emu


def _expected(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The oracle: the rows the emulator serves, sorted by (time, id), as plain lists."""
    rows = sorted(rows, key=lambda r: (r["r:midpointMjdTai"], r["r:diaForcedSourceId"]))

    def num(value: Any) -> float:
        return math.nan if value is None else float(value)

    return {
        "fp_time": [float(r["r:midpointMjdTai"]) for r in rows],
        "fp_diaForcedSourceId": [int(r["r:diaForcedSourceId"]) for r in rows],
        "fp_visit": [int(r["r:visit"]) for r in rows],
        "fp_band": [str(r["r:band"]) for r in rows],
        **{f"fp_{name}": [num(r[f"r:{name}"]) for r in rows]
           for name in ("psfFlux", "psfFluxErr", "scienceFlux", "scienceFluxErr")},
    }  # fmt: skip


def _check(cube: xr.Dataset, rows: list[dict[str, Any]]) -> None:
    expected = _expected(rows)
    assert len(rows) > 0
    assert cube.sizes["fp_time"] == len(rows)
    for name, values in expected.items():
        held = cube[name].values
        if name in ("fp_diaForcedSourceId", "fp_visit"):
            assert held.dtype == np.int64
            assert held.tolist() == values, name
        elif name == "fp_band":
            assert [str(v) for v in held] == values
        else:
            assert held.dtype == np.float64
            np.testing.assert_array_equal(held, np.array(values), err_msg=name)


def test_a_cube_carries_the_forced_light_curve_served(emu: Emulator) -> None:
    oid = emu.catalog.named("small")
    cube = build_cube(oid, url=emu.url, forced_photometry=True)
    _check(cube, emu.catalog.forced_photometry(oid))
    assert cube.attrs["forced_photometry"] is True
    assert np.all(np.diff(cube.fp_time.values) >= 0)
    # The stamps and detections are those of a cube built without it.
    plain = build_cube(oid, url=emu.url)
    assert "fp_time" not in plain.dims
    xr.testing.assert_equal(cube.drop_dims("fp_time"), plain)


def test_the_forced_light_curve_survives_the_store(emu: Emulator, tmp_path: Path) -> None:
    oid = emu.catalog.named("single")
    store = tmp_path / "fp.zarr"
    report = build_store([oid], store, url=emu.url, forced_photometry=True)
    assert report.count("built") == 1
    rows = emu.catalog.forced_photometry(oid)
    _check(open_cube(store, oid), rows)
    _check(
        xr.open_zarr(store, group=str(oid), consolidated=False).load(), rows
    )  # plain xarray reads it too


def test_an_update_refreshes_the_forced_light_curve(emu: Emulator, tmp_path: Path) -> None:
    oid = emu.catalog.add_object(ra=201.5, dec=-12.25, sources=4)
    store = tmp_path / "fp.zarr"
    build_store([oid], store, url=emu.url, forced_photometry=True)
    before = emu.catalog.forced_photometry(oid)

    # Nothing new: the light curve is asked again, the cube left as it was.
    report = update_store(store)
    assert [r.status for r in report.results] == ["unchanged"]
    _check(open_cube(store, oid), before)

    emu.catalog.add_sources(oid, 2)
    after = emu.catalog.forced_photometry(oid)
    assert len(after) > len(before)
    report = update_store(store)
    assert [(r.status, r.added) for r in report.results] == [("updated", 2)]
    cube = open_cube(store, oid)
    _check(cube, after)
    assert cube.sizes["time"] == 6


def test_a_build_without_it_keeps_its_cubes_as_before(emu: Emulator, tmp_path: Path) -> None:
    oid = emu.catalog.named("small")
    store = tmp_path / "plain.zarr"
    build_store([oid], store, url=emu.url)
    cube = open_cube(store, oid)
    assert "fp_time" not in cube.dims
    assert "forced_photometry" not in cube.attrs
    # Resuming that store with forced photometry would skip cubes that lack it: refused.
    with pytest.raises(InputError, match="forced photometry"):
        build_store([oid], store, url=emu.url, forced_photometry=True)


def test_the_command_line_builds_it_and_info_and_the_accessor_still_work(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    oid = emu.catalog.named("small")
    store = tmp_path / "cli.zarr"
    argv = ["build", str(oid), "--out", str(store), "--url", emu.url, "--forced-photometry"]
    assert main(argv) == 0
    _check(open_cube(store, oid), emu.catalog.forced_photometry(oid))
    assert main(["info", str(store)]) == 0
    assert main(["info", str(store), str(oid)]) == 0
    assert f"diaObjectId {oid}" in capsys.readouterr().out
    cube = open_cube(store, oid)
    resized = cube.fink.resize(40)
    assert resized.sizes["x"] == 40
    xr.testing.assert_equal(resized.fp_psfFlux, cube.fp_psfFlux)


def test_the_light_curve_shows_the_forced_points(emu: Emulator) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from finkcube.viz.plot import plot_lightcurve

    oid = emu.catalog.named("small")
    cube = build_cube(oid, url=emu.url, forced_photometry=True)
    ax = plot_lightcurve(cube)
    labels = [c.get_label() for c in ax.containers]
    forced = [label for label in labels if label.endswith("(forced)")]
    bands = {str(b) for b, f in zip(cube.fp_band.values, cube.fp_psfFlux.values, strict=True)
             if np.isfinite(f)}  # fmt: skip
    assert sorted(forced) == sorted(f"{b} (forced)" for b in bands)
    points = sum(len(c.lines[0].get_xdata()) for c in ax.containers
                 if c.get_label().endswith("(forced)"))  # fmt: skip
    assert points == int(np.isfinite(cube.fp_psfFlux.values).sum())
    plt.close(ax.figure)
