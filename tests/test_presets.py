"""Each preset against an independent re-implementation of its published formula.

The oracles loop over images in plain numpy, written from the papers' and codes'
descriptions, not from ``finkcube.ml.presets``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from finkcube import build_store
from finkcube.emulator import Emulator
from finkcube.ml import PRESETS, export, register_preset
from finkcube.ml.presets import alerce_normalise, btsbot_normalise, reliability_normalise


def random_stamps(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(50.0, 30.0, (4, 3, 31, 31)).astype(np.float32)
    x[0, 1, :5] = np.nan  # a blank edge
    x[1, 2] = np.nan  # a blank image
    x[2, 0, 3, 3] = np.inf
    return x


def alerce_oracle(image: np.ndarray) -> np.ndarray:
    a = np.abs(image.astype(np.float64)).ravel()
    a = a[np.isfinite(a) & (a <= 1e10)]
    if a.size == 0:
        return np.zeros(image.shape, np.float32)
    low, high = a.min(), np.percentile(a, 99)
    y = np.clip((image - low) / (high - low + 1e-8), -2, 2)
    y[~np.isfinite(y)] = 0.0
    return y.astype(np.float32)


def btsbot_oracle(image: np.ndarray) -> np.ndarray:
    y = np.where(np.isnan(image), 0.0, image).astype(np.float64)
    norm = np.sqrt((y**2).sum())
    return (y / norm if norm else y).astype(np.float32)


@pytest.mark.parametrize(
    ("function", "oracle"),
    [(alerce_normalise, alerce_oracle), (btsbot_normalise, btsbot_oracle)],
)
def test_normalisations_equal_their_formula(function, oracle) -> None:  # type: ignore[no-untyped-def]
    x = random_stamps()
    x[2, 0, 3, 3] = np.nan if function is btsbot_normalise else x[2, 0, 3, 3]
    got = function(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            np.testing.assert_allclose(got[n, c], oracle(x[n, c]), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(function(x[0]), got[0], rtol=1e-6)  # one sample as a batch


def test_reliability_input_is_the_stamps_with_nan_as_zero() -> None:
    x = random_stamps()
    x[2, 0, 3, 3] = 7.0
    np.testing.assert_array_equal(reliability_normalise(x), np.where(np.isnan(x), 0, x))


def test_presets_fix_size_and_channels() -> None:
    assert (PRESETS["alerce"].size, PRESETS["alerce"].mask) == (31, True)
    assert PRESETS["rubin-reliability"].size == 51
    assert PRESETS["rubin-reliability"].channels == (
        "Difference/data", "Science/data", "Template/data",
    )  # fmt: skip
    assert PRESETS["btsbot"].size == 63
    assert PRESETS["btsbot"].channels == ("Science/data", "Template/data", "Difference/data")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("presets") / "cubes.zarr"
    with Emulator() as emu:
        build_store([emu.catalog.named("mixed_sizes")], path, url=emu.url)
    return path


@pytest.mark.parametrize("name", ["alerce", "rubin-reliability", "btsbot"])
def test_exported_presets_equal_the_formula_on_real_stamps(
    store: Path, tmp_path: Path, name: str
) -> None:
    preset = PRESETS[name]
    raw_path, out = tmp_path / "raw.zarr", tmp_path / "preset.zarr"
    export(store, raw_path, channels=preset.channels, size=preset.size, fill=None)
    export(store, out, preset=name)
    raw = xr.open_zarr(raw_path).stamps.values
    got = xr.open_zarr(out).stamps.values
    oracle = {"alerce": alerce_oracle, "btsbot": btsbot_oracle}.get(name)
    for n in range(raw.shape[0]):
        for c in range(len(preset.channels)):
            image = raw[n, c]
            want = np.where(np.isnan(image), 0, image) if oracle is None else oracle(image)
            np.testing.assert_allclose(got[n, c], want, rtol=1e-5, atol=1e-7)
            if preset.mask:
                k = len(preset.channels) + c
                np.testing.assert_array_equal(got[n, k], np.isnan(image).astype(np.float32))


def test_a_user_preset_is_one_function(store: Path, tmp_path: Path) -> None:
    register_preset("halves", size=20, channels=["Difference"], normalise=lambda x: x / 2)
    try:
        export(store, tmp_path / "raw.zarr", channels=["Difference"], size=20)
        export(store, tmp_path / "halves.zarr", preset="halves")
        raw = xr.open_zarr(tmp_path / "raw.zarr").stamps.values
        got = xr.open_zarr(tmp_path / "halves.zarr").stamps.values
        np.testing.assert_array_equal(got, raw / 2)
    finally:
        del PRESETS["halves"]
