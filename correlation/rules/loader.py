"""Load chain-rule YAML files: signals first, then rules; all errors at once.

A file holds a mapping with ``signals:`` (name → predicate) and/or ``rules:``
(a list of rules). The shipped ``signals.yaml`` is always loaded first, so user
rule files can reference ``recon``, ``token-read`` ... and may redefine a shipped
signal by name (a user file's later definition wins). Two user files defining the
same signal, or two rules with the same id, are errors. If any file has an error,
:class:`RuleError` lists every error as ``path:line: message`` and nothing loads.
This module is the only place in ``correlation/`` that touches the file system.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from correlation.errors import RuleError
from correlation.rules.model import ChainRule, RuleParser
from correlation.rules.predicates import PredicateCompiler
from correlation.rules.source import Located, load_located

BUILTIN_DIR: Final = Path(__file__).parent
SIGNALS_FILE: Final = BUILTIN_DIR / "signals.yaml"
TOP_KEYS: Final = frozenset({"signals", "rules", "version"})
MAX_FILE_BYTES: Final = 4 * 1024 * 1024


def builtin_rules_paths() -> list[Path]:
    """The shipped YAML files (signals and the chain rules), sorted."""
    return sorted(BUILTIN_DIR.glob("*.yaml"))


def _expand(paths: Sequence[str | Path], errors: list[str]) -> list[Path]:
    files: list[Path] = [SIGNALS_FILE]
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                errors.append(f"{path}:0: directory holds no *.yaml rule files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{path}:0: no such rule file or directory")
    unique: dict[Path, Path] = {}
    for file in files:
        unique.setdefault(file.resolve(), file)
    return list(unique.values())


def _read(path: Path, errors: list[str]) -> Located | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            errors.append(f"{path}:0: file larger than {MAX_FILE_BYTES} bytes")
            return None
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(f"{path}:0: cannot read: {exc}")
        return None
    try:
        doc = load_located(str(path), text)
    except ValueError as exc:
        errors.append(f"{path}:{exc}")
        return None
    if doc.value is None:
        doc.value = {}
    if not isinstance(doc.value, Mapping):
        errors.append(f"{path}:1: top level must be a mapping with 'signals' and/or 'rules'")
        return None
    for key in doc.value:
        if key not in TOP_KEYS:
            errors.append(f"{doc.where(doc.value, str(key))}: unknown top-level key {key!r}")
    return doc


def _signals(docs: list[Located], compiler: PredicateCompiler, errors: list[str]) -> None:
    owner: dict[str, str] = {}
    for doc in docs:
        block = doc.value.get("signals", {})
        if not isinstance(block, Mapping):
            errors.append(f"{doc.where(doc.value, 'signals')}: 'signals' must be a mapping")
            continue
        for name, node in block.items():
            previous = owner.get(str(name))
            if previous is not None and previous != str(SIGNALS_FILE):
                errors.append(
                    f"{doc.where(block, str(name))}: signal {name!r} already defined in {previous}"
                )
            owner[str(name)] = doc.path
            compiler.define_signal(str(name), node, doc)
    # compile every signal once, so errors inside unused signals are reported too
    for name, (doc, node) in list(compiler.signals.items()):
        compiler.compile({"signal": name}, doc, {"signal": node}, "signal")


def load_rules(paths: Sequence[str | Path]) -> list[ChainRule]:
    """Compile the rules in ``paths`` (files or directories of ``*.yaml``).

    Raises :class:`RuleError` with every problem found; returns enabled rules only.
    """
    errors: list[str] = []
    docs = [doc for path in _expand(paths, errors) if (doc := _read(path, errors))]
    compiler = PredicateCompiler(errors)
    _signals(docs, compiler, errors)
    parser = RuleParser(compiler, errors)
    rules: list[ChainRule] = []
    seen: dict[str, str] = {}
    for doc in docs:
        block = doc.value.get("rules", [])
        if not isinstance(block, list):
            errors.append(f"{doc.where(doc.value, 'rules')}: 'rules' must be a list")
            continue
        for raw in block:
            rule = parser.parse(raw, doc)
            if rule is None:
                continue
            if rule.id in seen:
                errors.append(
                    f"{doc.where(raw, 'id')}: rule id {rule.id!r} already in {seen[rule.id]}"
                )
            seen[rule.id] = f"{rule.path}:{rule.line}"
            rules.append(rule)
    if errors:
        raise RuleError(errors)
    return [r for r in rules if r.enabled]
