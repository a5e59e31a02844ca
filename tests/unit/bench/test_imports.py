"""bench/ imports go one way: no module imports one that (transitively) imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench"


def _imports(path: Path) -> set[str]:
    """bench modules ``path`` imports, at any depth (function-level imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "bench":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("bench."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("bench."))
    return found


def test_no_import_cycles() -> None:
    graph = {p.stem: _imports(p) for p in BENCH.glob("*.py")}
    assert graph["measure"] and graph["render"]  # the walk sees imports at all

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(name for name in graph if reaches(name, name, {name}))
    assert cycles == []
