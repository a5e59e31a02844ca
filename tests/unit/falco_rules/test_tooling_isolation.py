"""The rules tooling is test/CI tooling: the service and the library never import it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_detector_and_correlation_do_not_import_falco_rules() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("detector", "correlation")
        for path in sorted((ROOT / package).rglob("*.py"))
        if any(name.startswith("falco_rules") for name in _imports(path))
    ]
    assert offenders == []
