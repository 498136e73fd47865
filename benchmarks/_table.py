"""Rows of the benchmark table, the machine they ran on, and how both are printed."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from dataclasses import asdict, dataclass
from typing import Any

COLUMNS = ("id", "what", "finkcube", "baseline", "ratio", "target", "pass")


@dataclass
class Row:
    """One figure: finkcube's value, the baseline measured in the same run, their ratio."""

    id: str
    what: str
    finkcube: float | None
    baseline: float | None = None
    unit: str = ""
    baseline_unit: str | None = None
    ratio: str = ""
    target: str = "-"
    passed: bool | None = None

    def cells(self) -> tuple[str, ...]:
        verdict = {True: "pass", False: "FAIL", None: "-"}[self.passed]
        bunit = self.unit if self.baseline_unit is None else self.baseline_unit
        return (
            self.id,
            self.what,
            _value(self.finkcube, self.unit),
            _value(self.baseline, bunit),
            self.ratio or "-",
            self.target,
            verdict,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100 or float(value).is_integer():
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 0.1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def render(rows: list[Row]) -> str:
    """Return the rows as a Markdown table (readable as plain text too)."""
    cells = [COLUMNS, *(r.cells() for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]

    def line(values: tuple[str, ...]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(c) for c in cells[1:])])


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for text in f:
                if text.startswith("model name"):
                    return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> dict[str, Any]:
    """Describe the machine and the software the figures came from."""
    versions = {}
    for name in ("finkcube", "numpy", "xarray", "zarr", "dask", "requests", "orjson", "numcodecs"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": sys.version.split()[0],
        "versions": versions,
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def machine_line(info: dict[str, Any]) -> str:
    """One line saying where the figures come from."""
    versions = " ".join(f"{k} {v}" for k, v in info["versions"].items())
    load = info.get("loadavg_start")
    load_text = f"; load average at start {load[0]:.2f}" if load else ""
    return (
        f"machine: {info['platform']}; {info['cpu']}; {info['usable_cores']} usable cores "
        f"of {info['cores']}; Python {info['python']}; {versions}{load_text}"
    )
