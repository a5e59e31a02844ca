"""The service never imports the benchmark-only (AGPL-3.0) ``eql`` package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["correlation", "detector"])
def test_runtime_packages_never_import_eql(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    offenders = [str(p.relative_to(ROOT)) for p in files if "eql" in _imported(p)]
    assert offenders == []


def test_the_check_sees_an_eql_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import eql.parser\nfrom eql import parse_query\n", encoding="utf-8")
    assert "eql" in _imported(sample)
