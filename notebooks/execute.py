"""Run ``tour.ipynb`` and store it with its outputs, so that a reader on the web sees them.

``python notebooks/execute.py`` (from the repository root, in the project's environment).
The kernel runs this interpreter; timings and other volatile metadata are left out, and the
figures are PNGs at the inline backend's modest resolution. ``tests/test_notebook.py`` runs
the notebook again and checks the stored copy.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbclient
import nbformat

NOTEBOOK = Path(__file__).resolve().parent / "tour.ipynb"


def main() -> None:
    """Execute the notebook in a scratch directory and write it back with its outputs."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    nb = nbformat.read(NOTEBOOK, as_version=4)
    with tempfile.TemporaryDirectory() as scratch:
        kernels = Path(scratch) / "kernels"
        write_kernel_spec(kernels / "python3")
        specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
        manager = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)
        assert manager.kernel_spec is not None
        assert manager.kernel_spec.argv[0] == sys.executable
        cwd = Path(scratch) / "cwd"
        cwd.mkdir()
        client = nbclient.NotebookClient(
            nb, km=manager, timeout=300, allow_errors=False, record_timing=False,
            resources={"metadata": {"path": str(cwd)}},
        )  # fmt: skip
        client.execute(cleanup_kc=True)
    nb.metadata["language_info"] = {"name": "python"}  # no interpreter version: it varies
    nbformat.validate(nb)
    nbformat.write(nb, NOTEBOOK)
    print(f"wrote {NOTEBOOK} ({NOTEBOOK.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
