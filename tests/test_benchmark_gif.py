"""``benchmarks/gif.py`` runs end to end at a tiny size, so that it cannot rot.

No timing or memory is asserted: the figures are the benchmark's business.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gif.py"


@pytest.mark.slow
def test_gif_benchmark_produces_its_figures(tmp_path: Path) -> None:
    saved = tmp_path / "gif.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--epochs", "5", "--dpi", "30", "--workdir",
         str(tmp_path), "--json", str(saved)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(saved.read_text())
    assert figures["frames"] == 5
    assert figures["seconds"] > 0
    assert figures["maxrss_mb"] >= figures["rss_after_import_mb"] > 0
    assert done.stdout.startswith("G1 | GIF of 5 frames")
