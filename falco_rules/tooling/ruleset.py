"""Load a Falco rules file, check its structure, and expand macros and lists.

Two expansions, for two consumers:

* :meth:`RuleSet.expanded_text` rewrites the author's own condition text, replacing each macro
  reference by ``(<its expanded condition>)`` and each list name inside a value list by the
  list's items, as Falco does before compiling. This text goes to the real compiler, so no
  re-rendering of our AST can hide a syntax error from it.
* :meth:`RuleSet.expanded_tree` gives the same thing as an AST for the evaluator.

Structure errors are collected, all of them, as ``path:line: message``
(:class:`RuleFileError`); a file with any error never yields a half-loaded :class:`RuleSet`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from falco_rules.tooling import condition as cond
from falco_rules.tooling.errors import ConditionSyntaxError, RuleFileError
from falco_rules.tooling.structure import check_items

_SAFE_BARE: Final = re.compile(r"[A-Za-z0-9_./:\-\[\]<>=!*?+@]+")


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    desc: str
    condition: str
    output: str
    priority: str
    source: str
    tags: tuple[str, ...]
    line: int
    enabled: bool = True


@dataclass(slots=True)
class RuleSet:
    """One loaded rules file: rules, macros and lists by name, plus the declared engine."""

    path: str
    engine_version: str
    rules: dict[str, Rule] = field(default_factory=dict)
    macros: dict[str, str] = field(default_factory=dict)
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def list_items(self, name: str) -> tuple[str, ...]:
        """A list's items with nested list names replaced by their own items."""
        out: list[str] = []
        for item in self.lists[name]:
            out += self.list_items(item) if item in self.lists else [item]
        return tuple(out)

    def expanded_text(self, condition: str) -> str:
        """``condition`` with macros and lists substituted textually, as Falco expands them."""
        edits: list[tuple[int, int, str]] = []
        for node in cond.walk(cond.parse(condition)):
            if isinstance(node, cond.MacroRef) and node.name in self.macros:
                inner = self.expanded_text(self.macros[node.name])
                edits.append((node.start, node.end, f"({inner})"))
            elif isinstance(node, cond.Check) and node.values is not None:
                edits += self._list_edits(node.values)
        for start, end, text in sorted(edits, reverse=True):
            condition = condition[:start] + text + condition[end:]
        return condition

    def _list_edits(self, values: tuple[cond.Value, ...]) -> list[tuple[int, int, str]]:
        edits = []
        for value in values:
            if not value.quoted and value.text in self.lists:
                rendered = ", ".join(_render(item) for item in self.list_items(value.text))
                edits.append((value.start, value.end, rendered))
        return edits

    def expanded_tree(self, condition: str) -> cond.Node:
        """The fully expanded condition as an AST (macros inlined, list names replaced)."""
        return cond.parse(self.expanded_text(condition))


def _render(item: str) -> str:
    """A list item as condition text: bare when safe, else double-quoted."""
    if _SAFE_BARE.fullmatch(item):
        return item
    escaped = item.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def load(path: str | Path) -> RuleSet:
    """Read and check ``path``; raises :class:`RuleFileError` listing every problem."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        lines = _item_lines(text)
    except yaml.YAMLError as exc:
        raise RuleFileError([f"{path}: YAML error: {exc}"]) from exc
    errors = check_items(str(path), data, lines)
    if errors:
        raise RuleFileError(errors)
    ruleset = _build(str(path), data, lines)
    errors = _check_conditions(ruleset, lines, data)
    if errors:
        raise RuleFileError(errors)
    return ruleset


def _item_lines(text: str) -> list[int]:
    """1-based line of each top-level item (the structure is already a YAML sequence)."""
    node = yaml.compose(text)
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]


def _build(path: str, data: list[dict[str, Any]], lines: list[int]) -> RuleSet:
    engine = next(str(i["required_engine_version"]) for i in data if "required_engine_version" in i)
    ruleset = RuleSet(path=path, engine_version=engine)
    for item, line in zip(data, lines, strict=True):
        if "macro" in item:
            ruleset.macros[item["macro"]] = str(item["condition"]).strip()
        elif "list" in item:
            ruleset.lists[item["list"]] = tuple(str(i) for i in item["items"])
        elif "rule" in item:
            ruleset.rules[item["rule"]] = _rule(item, line)
    return ruleset


def _rule(item: dict[str, Any], line: int) -> Rule:
    return Rule(
        name=item["rule"],
        desc=" ".join(str(item["desc"]).split()),
        condition=str(item["condition"]).strip(),
        output=" ".join(str(item["output"]).split()),
        priority=str(item["priority"]),
        source=str(item["source"]),
        tags=tuple(str(t) for t in item["tags"]),
        line=line,
        enabled=bool(item.get("enabled", True)),
    )


def _check_conditions(ruleset: RuleSet, lines: list[int], data: list[dict[str, Any]]) -> list[str]:
    """Every condition parses, every reference resolves, and nothing defined goes unused."""
    errors: list[str] = []
    used: set[str] = set()
    defined: set[str] = set()
    for item, line in zip(data, lines, strict=True):
        where = f"{ruleset.path}:{line}"
        for name in item.get("items", []) if "list" in item else []:
            if name in ruleset.lists and name not in defined:
                errors.append(f"{where}: list {name} is used before its definition")
        defined.add(str(item.get("macro") or item.get("list") or ""))
        text = item.get("condition")
        if text is None:
            continue
        try:
            tree = cond.parse(str(text).strip())
        except ConditionSyntaxError as exc:
            errors.append(f"{where}: condition does not parse: {exc}")
            continue
        errors += [f"{where}: {e}" for e in _references(ruleset, tree, used, defined)]
    for name in ruleset.lists.values():
        used.update(i for i in name if i in ruleset.lists)
    unused = (set(ruleset.macros) | set(ruleset.lists)) - used
    errors += [f"{ruleset.path}: {name} is defined but never used" for name in sorted(unused)]
    return errors


def _references(ruleset: RuleSet, tree: cond.Node, used: set[str], defined: set[str]) -> list[str]:
    """Unknown macros and lists, and names used before the item that defines them.

    Older Falco resolves names in file order, so a forward reference would fail to load there.
    """
    names: list[tuple[str, str]] = []
    for node in cond.walk(tree):
        if isinstance(node, cond.MacroRef):
            names.append(("macro", node.name))
        elif isinstance(node, cond.Check) and node.values is not None:
            names += [("list", v.text) for v in node.values if v.text.startswith("lmd_")]
    errors = []
    for kind, name in names:
        known = ruleset.macros if kind == "macro" else ruleset.lists
        used.add(name)
        if name not in known:
            errors.append(f"unknown {kind} {name}")
        elif name not in defined:
            errors.append(f"{kind} {name} is used before its definition")
    return errors
