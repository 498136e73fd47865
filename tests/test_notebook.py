"""The tour notebook runs from top to bottom, cleanly, on this environment's interpreter.

``notebooks/tour.ipynb`` is stored with its outputs (``python notebooks/execute.py``), so
that a reader on the web sees its figures; the stored copy is checked (every cell run, a
picture for every plotting cell, no timings, a modest size, the outputs of the current
sources). This test also executes it with nbclient in a kernel started from this very
interpreter (a kernelspec written into ``tmp_path``, so that no ``python3`` kernel
installed elsewhere on the machine is picked up) and checks what a reader would see: no
error, no warning, a picture for every plotting cell and an ML batch of the shape the
notebook asks for.
"""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest

from finkcube.names import KINDS

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "tour.ipynb"
#: Seconds a cell may run; the whole notebook takes well under a minute.
CELL_TIMEOUT_S = 120
#: Prepended to the notebook before running it: show every warning (once per place) on
#: stderr, where the checks below see it, and say which interpreter runs the kernel.
PROBE = "import sys, warnings\nwarnings.simplefilter('default')\nprint(sys.prefix)"
#: Cells that draw: their source matches this, and each must show a PNG.
PLOTTING = re.compile(r"\.fink\.plot_\w+\(|plt\.subplots\(")
#: Marks of a warning in a cell's stderr (Python warnings and numpy/dask RuntimeWarnings).
WARNING_MARKS = re.compile(r"Warning\b|warnings\.warn")
#: The stored notebook, outputs included, stays small enough to read on the web.
MAX_STORED_BYTES = 1_500_000


def kernel_manager(tmp_path: Path) -> Any:
    """A KernelManager for a ``python3`` kernel that runs ``sys.executable``."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    kernels = tmp_path / "kernels"
    write_kernel_spec(kernels / "python3")
    specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    manager = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)
    assert manager.kernel_spec is not None
    assert manager.kernel_spec.argv[0] == sys.executable
    return manager


def outputs(cell: Any, kind: str) -> list[Any]:
    return [out for out in cell.get("outputs", []) if out.get("output_type") == kind]


def stream_text(cell: Any, name: str) -> str:
    return "".join(out["text"] for out in outputs(cell, "stream") if out.get("name") == name)


def find_cell(cells: list[Any], pattern: str) -> Any:
    found = [cell for cell in cells if re.search(pattern, cell.source)]
    assert len(found) == 1, f"expected one cell matching {pattern!r}, found {len(found)}"
    return found[0]


def shape_of(text: str, label: str) -> tuple[int, ...]:
    match = re.search(rf"{label}\s*\(([\d, ]+)\)", text)
    assert match, f"no shape printed after {label!r} in {text!r}"
    return tuple(int(n) for n in match.group(1).split(","))


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], Path]:
    """The notebook's code cells after a run (the probe cell dropped), and its folder."""
    tmp_path = tmp_path_factory.mktemp("notebook")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE))
    client = nbclient.NotebookClient(
        nb,
        km=kernel_manager(tmp_path),
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,
        resources={"metadata": {"path": str(cwd)}},
    )
    # We made the kernel manager, so nbclient would leave the kernel running: ask it to stop.
    client.execute(cleanup_kc=True)
    probe, *cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert stream_text(probe, "stdout").strip() == sys.prefix
    return cells, cwd


def pictures(cell: Any) -> list[str]:
    return [
        out["data"]["image/png"]
        for out in outputs(cell, "display_data")
        if "image/png" in out.get("data", {})
    ]


def test_notebook_is_stored_with_its_outputs() -> None:
    assert NOTEBOOK.stat().st_size < MAX_STORED_BYTES
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    # Run once, top to bottom, without errors; no timings (they change at every run).
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert all(not outputs(cell, "error") for cell in code)
    assert all("execution" not in cell.metadata for cell in code)
    plotting = [cell for cell in code if PLOTTING.search(cell.source)]
    assert plotting
    assert all(len(pictures(cell)) == 1 for cell in plotting)


@pytest.mark.slow
def test_stored_outputs_are_those_of_the_current_sources(
    executed: tuple[list[Any], Path],
) -> None:
    cells, _ = executed
    stored = [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]
    assert [c.source for c in stored] == [c.source for c in cells]
    kinds = [[(o["output_type"], o.get("name")) for o in c.outputs] for c in cells]
    assert [[(o["output_type"], o.get("name")) for o in c.outputs] for c in stored] == kinds


@pytest.mark.slow
def test_notebook_runs_without_errors_or_warnings(executed: tuple[list[Any], Path]) -> None:
    cells, cwd = executed
    for cell in cells:
        assert not outputs(cell, "error"), cell.source
        stderr = stream_text(cell, "stderr")
        assert not WARNING_MARKS.search(stderr), f"{cell.source}\n---\n{stderr}"
    assert list(cwd.iterdir()) == [], "the notebook left files in its working directory"


@pytest.mark.slow
def test_notebook_plotting_cells_show_pictures(executed: tuple[list[Any], Path]) -> None:
    from io import BytesIO

    import numpy as np
    from PIL import Image

    cells, _ = executed
    plotting = [cell for cell in cells if PLOTTING.search(cell.source)]
    assert len(plotting) >= 4  # stamps, overview, light curve, median stamps, batch
    for cell in plotting:
        pngs = pictures(cell)
        assert len(pngs) == 1, f"expected one picture from:\n{cell.source}"
        with Image.open(BytesIO(base64.b64decode(pngs[0]))) as image:
            pixels = np.asarray(image.convert("L"), dtype=np.float64)
        assert pixels.std() > 0


@pytest.mark.slow
def test_notebook_ml_batch_has_the_shape_asked(executed: tuple[list[Any], Path]) -> None:
    cells, _ = executed
    build = find_cell(cells, r"build_store\(")
    epochs = int(re.search(r"(\d+) epochs added", stream_text(build, "stdout")).group(1))
    dataset = find_cell(cells, r"CubeDataset\(")
    size = int(re.search(r"CubeDataset\([^)]*size=(\d+)", dataset.source).group(1))
    assert f"{epochs} stamps" in stream_text(dataset, "stdout")

    batch_cell = find_cell(cells, r"np\.stack\(")
    batch_size = int(re.search(r"size=(\d+), replace=False", batch_cell.source).group(1))
    batch = shape_of(stream_text(batch_cell, "stdout"), "batch:")
    assert batch == (batch_size, len(KINDS), size, size)

    export = find_cell(cells, r"to_numpy\(")
    exported = shape_of(stream_text(export, "stdout"), r"\bx")
    assert exported == (epochs, len(KINDS), size, size)


@pytest.mark.slow
def test_notebook_streams_every_stamp_it_built(executed: tuple[list[Any], Path]) -> None:
    cells, _ = executed
    build = find_cell(cells, r"build_store\(")
    epochs = int(re.search(r"(\d+) epochs added", stream_text(build, "stdout")).group(1))
    stream = stream_text(find_cell(cells, r"iter_cutouts\("), "stdout")
    per_object = re.findall(r"^(\d+): +(\d+) epochs", stream, flags=re.MULTILINE)
    assert len(per_object) >= 2
    assert sum(int(n) for _, n in per_object) == epochs
    assert f"streamed: {epochs * len(KINDS)} stamps" in stream
