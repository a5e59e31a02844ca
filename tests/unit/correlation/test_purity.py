"""correlation/ is a pure library: no I/O, no asyncio, no logging, no wall clock.

Walks every module with ``ast`` and fails on forbidden imports and calls. Only the
rule loader may use the file system (``pathlib``), as documented in its docstring.
"""

from __future__ import annotations

import ast
from pathlib import Path

import correlation

PACKAGE = Path(correlation.__file__).parent
FORBIDDEN_MODULES = {
    "asyncio",
    "socket",
    "logging",
    "structlog",
    "time",
    "os",
    "subprocess",
    "threading",
    "multiprocessing",
    "random",
    "urllib",
    "http",
    "requests",
    "aiohttp",
    "sqlite3",
    "shutil",
    "tempfile",
    "signal",
    "select",
    "selectors",
    "ssl",
    "io",
    "sys",
}
LOADER_ONLY = {"pathlib"}
LOADER_FILES = {"rules/loader.py"}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "time_ns", "monotonic", "perf_counter"}
FORBIDDEN_BUILTINS = {"open", "print", "input", "exec", "eval"}


def problems(path: Path, rel: str = "") -> list[str]:
    rel = rel or path.relative_to(PACKAGE).as_posix()
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module.split(".")[0]]
        for name in names:
            allowed = rel in LOADER_FILES and name in LOADER_ONLY
            if name in FORBIDDEN_MODULES or (name in LOADER_ONLY and not allowed):
                found.append(f"{rel}:{getattr(node, 'lineno', 0)}: imports {name}")
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in FORBIDDEN_CALLS:
                found.append(f"{rel}:{node.lineno}: calls .{func.attr}()")
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
                found.append(f"{rel}:{node.lineno}: calls {func.id}()")
    return found


def test_correlation_is_pure() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    assert [p for f in files for p in problems(f)] == []


def test_the_walker_catches_violations(tmp_path: Path) -> None:
    bad = tmp_path / "probe.py"
    bad.write_text("import asyncio\nfrom pathlib import Path\nx = datetime.now()\nopen('f')\n")
    assert len(problems(bad, rel="engine.py")) == 4
