"""The service's own documentation snippets, run against the emulator unchanged but for the URL.

The snippets (``seeds/fink-lsst-cutouts-doc.txt``) use diaObjectId 313761043604045880 and
diaSourceId 170050479238676547: the emulator serves both (its ``doc`` object).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import requests
from astropy.io import fits
from PIL import Image as im

from finkcube.emulator import Emulator


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The snippets write to the working directory: make it a temporary one."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sources_snippet(emulator: Emulator) -> None:
    # Get all diaSourceId for 313761043604045880
    r = requests.post(
        f"{emulator.url}/api/v1/sources",
        json={"diaObjectId": "313761043604045880", "columns": "r:diaSourceId,r:midpointMjdTai"},
    )
    records = r.json()
    assert 170050479238676547 in [rec["r:diaSourceId"] for rec in records]
    times = [rec["r:midpointMjdTai"] for rec in records]
    assert times == sorted(times, reverse=True)


def test_fits_snippet(emulator: Emulator, in_tmp: Path) -> None:
    # get data for 170050479238676547
    r = requests.post(
        f"{emulator.url}/api/v1/cutouts",
        json={"diaSourceId": "170050479238676547", "kind": "Science", "output-format": "FITS"},
    )
    data = fits.open(io.BytesIO(r.content), ignore_missing_simple=True)
    data.writeto("170050479238676547_cutoutScience.fits")
    data.close()

    with fits.open("170050479238676547_cutoutScience.fits") as hdu:
        header = hdu[0].header
        data = hdu[0].data
        assert header["BUNIT"] == "nJy"
        np.testing.assert_array_equal(data, emulator.catalog.array(170050479238676547, "Science"))
    assert (in_tmp / "170050479238676547_cutoutScience.fits").is_file()


def test_png_snippet(emulator: Emulator, in_tmp: Path) -> None:
    # get data for 170050479238676547
    r = requests.post(
        f"{emulator.url}/api/v1/cutouts",
        json={"diaSourceId": "170050479238676547", "kind": "Science"},
    )
    image = im.open(io.BytesIO(r.content))
    image.save("170050479238676547_cutoutScience.png")
    assert image.mode == "L"
    with im.open(in_tmp / "170050479238676547_cutoutScience.png") as saved:
        assert saved.size == image.size


def test_png_snippet_with_options(emulator: Emulator, in_tmp: Path) -> None:
    # get data for 170050479238676547
    r = requests.post(
        f"{emulator.url}/api/v1/cutouts",
        json={
            "diaSourceId": "170050479238676547",
            "kind": "Science",  # (1)!
            "stretch": "sigmoid",  # (2)!
            "colormap": "viridis",  # (3)!
            "pmin": 0.5,  # (4)!
            "pmax": 99.5,  # (5)!
            "convolution_kernel": "gauss",  # (6)!
        },
    )
    image = im.open(io.BytesIO(r.content))
    image.save("mysupercutout.png")
    assert image.mode == "RGBA"
    assert (in_tmp / "mysupercutout.png").is_file()


def test_array_snippet(emulator: Emulator) -> None:
    # get data for 170050479238676547
    r = requests.post(
        f"{emulator.url}/api/v1/cutouts",
        json={"diaSourceId": "170050479238676547", "kind": "Science", "output-format": "array"},
    )
    array = r.json()["b:cutoutScience"]
    np.testing.assert_array_equal(
        np.array(array, dtype=np.float32), emulator.catalog.array(170050479238676547, "Science")
    )


def test_kind_all_snippet(emulator: Emulator) -> None:
    # get data for 170050479238676547
    r = requests.post(
        f"{emulator.url}/api/v1/cutouts",
        json={"diaSourceId": "170050479238676547", "kind": "All", "output-format": "array"},
    )
    data = r.json()
    assert str(data.keys()) == (
        "dict_keys(['b:cutoutDifference', 'b:cutoutScience', 'b:cutoutTemplate'])"
    )
