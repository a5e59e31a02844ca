"""Shared fixtures data for the rule tests: the shipped rules file and the behaviour table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from falco_rules.tooling import evaluate, events, ruleset

RULES_PATH = Path(__file__).resolve().parents[3] / "falco_rules" / "lmd_rules.yaml"
TABLE_PATH = Path(__file__).with_name("behaviour.yaml")
_META_KEYS = ("case", "pod", "kind", "also", "append")


@dataclass(frozen=True)
class Case:
    rule: str
    name: str
    fire: bool
    event: dict[str, evaluate.FieldValue]
    also: frozenset[str]
    append: dict[str, list[str]]

    @property
    def id(self) -> str:
        return f"{self.rule} / {'fire' if self.fire else 'quiet'}: {self.name}"


@cache
def rules() -> ruleset.RuleSet:
    return ruleset.load(RULES_PATH)


@cache
def cases() -> tuple[Case, ...]:
    table = yaml.safe_load(TABLE_PATH.read_text(encoding="utf-8"))
    found = []
    for rule, groups in table["rules"].items():
        for outcome in ("fire", "quiet"):
            found += [_case(table, rule, outcome == "fire", raw) for raw in groups[outcome]]
    return tuple(found)


def _case(table: dict[str, Any], rule: str, fire: bool, raw: dict[str, Any]) -> Case:
    base = {**table["pods"][raw.get("pod", "web")], **table["kinds"][raw["kind"]]}
    given = {k: v for k, v in raw.items() if k not in _META_KEYS}
    return Case(
        rule=rule,
        name=raw["case"],
        fire=fire,
        event=events.derive({**base, **given}),
        also=frozenset(raw.get("also", ())),
        append=raw.get("append", {}),
    )


def with_appended(base: ruleset.RuleSet, append: dict[str, list[str]]) -> ruleset.RuleSet:
    """``base`` with items appended to lists, as ``override: {items: append}`` does in Falco."""
    if not append:
        return base
    lists = dict(base.lists)
    for name, items in append.items():
        lists[name] = lists[name] + tuple(items)
    return dataclasses.replace(base, lists=lists)


def firing(rs: ruleset.RuleSet, event: evaluate.EventFields) -> set[str]:
    """Names of the rules whose condition holds for ``event``."""
    return {
        rule.name
        for rule in rs.rules.values()
        if evaluate.matches(rs.expanded_tree(rule.condition), event)
    }
