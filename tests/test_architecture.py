"""The package's shape: no import cycle, each folder importing only the layers below it,
no module past 400 lines, and the public API listed exactly.

The import graph is read from the source with :mod:`ast`, imports inside functions included
(a cycle hidden in a function is still a cycle of responsibilities).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import finkcube

PACKAGE = Path(finkcube.__file__).parent
MAX_LINES = 400

#: Which parts of finkcube each part may import. A part is a top-level module or folder.
LEAVES = {"_version", "names", "errors", "ids", "config", "cutouts", "stretch"}
ALLOWED: dict[str, set[str]] = {
    **{leaf: LEAVES for leaf in LEAVES},
    "service": LEAVES,
    "cube": LEAVES,
    "store": LEAVES,
    "bulk": LEAVES,  # alert files (fastavro, pyarrow, fsspec): reading only
    "emulator": LEAVES,
    "pipeline": LEAVES | {"service", "cube", "store", "bulk"},
    "viz": LEAVES | {"cube", "store"},
    "ml": LEAVES | {"cube", "store"},
    "accessor": LEAVES | {"cube", "viz"},
    "cli": LEAVES | {"service", "cube", "store", "pipeline", "viz", "ml", "emulator", "bulk"},
    "__init__": LEAVES | {"service", "cube", "store", "pipeline", "ml", "accessor"},
    "__main__": {"cli"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The finkcube modules ``path`` imports (``from finkcube.x import y`` counts as x.y when
    x.y is a module, else x)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("finkcube"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("finkcube"):
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


FILES = sorted(PACKAGE.rglob("*.py"))
MODULES = {_module_name(p) for p in FILES}
GRAPH = {_module_name(p): _imports(p) for p in FILES}


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH.get(module, ())):
            if target == module or target not in GRAPH:
                continue
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if state.get(target) is None:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_layers(module: str) -> None:
    part = _part(module)
    allowed = ALLOWED[part] | {part}
    wrong = sorted(t for t in GRAPH[module] if t in GRAPH and _part(t) not in allowed)
    assert not wrong, f"{module} ({part}) may not import {wrong}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_size(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines: split it by job"


def test_every_part_is_placed() -> None:
    assert {_part(m) for m in GRAPH} <= set(ALLOWED)
