"""The exported API: ``finkcube.__all__`` lists exactly the public names, all documented."""

from __future__ import annotations
import __future__

import inspect
import subprocess
import sys
import types

import finkcube


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(finkcube).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType | __future__._Feature)
    }
    assert set(finkcube.__all__) == public | {"__version__"}
    assert len(finkcube.__all__) == len(set(finkcube.__all__))


def test_every_public_name_has_a_numpydoc_docstring() -> None:
    for name in finkcube.__all__:
        if name == "__version__":
            continue
        value = getattr(finkcube, name)
        doc = inspect.getdoc(value)
        assert doc, f"finkcube.{name} has no docstring"
        if inspect.isfunction(value) and inspect.signature(value).parameters:
            assert "Parameters\n----------" in doc, f"finkcube.{name}: no Parameters section"


def test_import_is_light_and_offline() -> None:
    # Importing finkcube loads neither matplotlib, distributed, s3fs nor torch.
    code = (
        "import sys, finkcube; "
        "print(sorted(m for m in ('matplotlib', 'distributed', 's3fs', 'torch') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
    assert done.stderr == ""


def test_accessor_is_registered() -> None:
    import xarray as xr

    assert hasattr(xr.Dataset, "fink")
