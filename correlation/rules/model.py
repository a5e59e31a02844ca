"""The chain-rule model: :class:`ChainRule` and :class:`Step`, and their parser.

A rule is an ordered list of steps, each a compiled predicate plus the join key
it offers (``by``). Consecutive steps with the same ``group`` form one *stage*
whose steps may occur in any order; stages occur in order. Every event of a
chain lies in ``[anchor, anchor + within]`` where the anchor is the chain's
first event. A step may be ``optional`` (filled in when present) or need a
``count`` of events (``min``, optionally ``distinct`` values of a field).
The full YAML reference is docs/chain-rules.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from correlation.allowlist import EMPTY_ALLOWLIST, Allowlist
from correlation.chain import SEVERITIES
from correlation.event import Event
from correlation.keys import KeyFn, key_error, key_fn
from correlation.rules.predicates import ALWAYS, Compiled, Context, PredicateCompiler
from correlation.rules.source import Located

UNITS_NS: Final = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
DURATION: Final = re.compile(r"^(\d+)(ms|s|m|h)$")
TECHNIQUE: Final = re.compile(r"^T\d{4}(\.\d{3})?$")
RULE_ID: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
RULE_KEYS: Final = frozenset(
    {"id", "title", "description", "severity", "techniques", "within", "steps", "suppress",
     "enabled"}
)  # fmt: skip
STEP_KEYS: Final = frozenset({"name", "where", "by", "optional", "group", "count"})


class _NoContext:
    def source_ip_foreign(self, event: Event) -> bool:
        return False


NO_CONTEXT: Final = _NoContext()


def parse_duration(text: object) -> int | None:
    """``"15m"`` → nanoseconds; ``None`` when not a duration (units ms, s, m, h)."""
    match = DURATION.match(text) if isinstance(text, str) else None
    return int(match.group(1)) * UNITS_NS[match.group(2)] if match else None


@dataclass(frozen=True)
class Step:
    """One step of a rule: a predicate, the join key it offers, how many events."""

    name: str
    index: int
    stage: int
    where: Compiled
    by: tuple[str, ...]
    keys: tuple[KeyFn, ...]
    optional: bool = False
    count: int = 1
    distinct: str = ""
    distinct_fn: KeyFn | None = None


@dataclass(frozen=True)
class ChainRule:
    """A compiled chain rule (immutable; safe to share between engines)."""

    id: str
    title: str
    severity: str
    techniques: tuple[str, ...]
    within_ns: int
    steps: tuple[Step, ...]
    stages: tuple[tuple[int, ...], ...]
    description: str = ""
    suppress: Allowlist = EMPTY_ALLOWLIST
    path: str = ""
    line: int = 0
    enabled: bool = True
    step_names: tuple[str, ...] = field(default=())

    def step(self, name: str) -> Step:
        """The step called ``name`` (KeyError when there is none)."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def matching_steps(self, event: Event, ctx: Context = NO_CONTEXT) -> list[str]:
        """Names of the steps whose predicate accepts ``event`` (join keys not checked)."""
        return [s.name for s in self.steps if s.where.pred(event, ctx)]


class RuleParser:
    """Turns one rule mapping into a :class:`ChainRule`, recording errors."""

    def __init__(self, compiler: PredicateCompiler, errors: list[str]) -> None:
        self.compiler = compiler
        self.errors = errors

    def _err(self, doc: Located, obj: object, key: str | None, msg: str) -> None:
        self.errors.append(f"{doc.where(obj, key)}: {msg}")

    def parse(self, raw: Any, doc: Located) -> ChainRule | None:
        """The rule, or ``None`` when it has errors (all of them recorded)."""
        start = len(self.errors)
        if not isinstance(raw, Mapping):
            self._err(doc, raw, None, "a rule must be a mapping")
            return None
        for key in raw:
            if key not in RULE_KEYS:
                self._err(doc, raw, str(key), f"unknown rule key {key!r}")
        rule_id = self._rule_id(raw, doc)
        within = parse_duration(raw.get("within"))
        if within is None or within <= 0:
            self._err(doc, raw, "within", "'within' must be a duration like 60s, 15m, 1h")
        severity = raw.get("severity")
        if severity not in SEVERITIES:
            self._err(doc, raw, "severity", f"'severity' must be one of {', '.join(SEVERITIES)}")
        techniques = self._techniques(raw, doc)
        steps = self._steps(raw, doc)
        suppress = self._suppress(raw, doc)
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            self._err(doc, raw, "enabled", "'enabled' takes true or false")
        if len(self.errors) > start or within is None or not steps:
            return None
        return ChainRule(
            id=rule_id,
            title=str(raw.get("title") or rule_id),
            severity=str(severity),
            techniques=techniques,
            within_ns=within,
            steps=steps,
            stages=_stages(steps),
            description=str(raw.get("description") or ""),
            suppress=suppress,
            path=doc.path,
            line=doc.line_of(raw),
            enabled=bool(enabled),
            step_names=tuple(s.name for s in steps),
        )

    def _rule_id(self, raw: Mapping[str, Any], doc: Located) -> str:
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
            self._err(doc, raw, "id", "'id' must be lower-case letters, digits and dashes")
            return ""
        return rule_id

    def _techniques(self, raw: Mapping[str, Any], doc: Located) -> tuple[str, ...]:
        value = raw.get("techniques", [])
        if not isinstance(value, list) or not all(
            isinstance(t, str) and TECHNIQUE.match(t) for t in value
        ):
            self._err(doc, raw, "techniques", "'techniques' must list ATT&CK ids like T1046")
            return ()
        return tuple(value)

    def _suppress(self, raw: Mapping[str, Any], doc: Located) -> Allowlist:
        value = raw.get("suppress")
        if value is None:
            return EMPTY_ALLOWLIST
        try:
            return msgspec.convert(value, Allowlist)
        except msgspec.ValidationError as exc:
            self._err(doc, raw, "suppress", f"invalid 'suppress': {exc}")
            return EMPTY_ALLOWLIST

    def _steps(self, raw: Mapping[str, Any], doc: Located) -> tuple[Step, ...]:
        items = raw.get("steps")
        if not isinstance(items, list) or not items:
            self._err(doc, raw, "steps", "'steps' must be a non-empty list")
            return ()
        steps: list[Step] = []
        stage, group = -1, None
        for index, item in enumerate(items):
            this_group = item.get("group") if isinstance(item, Mapping) else None
            if this_group is None or this_group != group:
                stage += 1
            group = this_group
            step = self._step(item, index, stage, doc, items)
            if step is not None:
                steps.append(step)
        self._check_steps(steps, raw, doc)
        return tuple(steps)

    def _step(self, item: Any, index: int, stage: int, doc: Located, items: Any) -> Step | None:
        if not isinstance(item, Mapping):
            self._err(doc, items, None, f"step {index + 1} must be a mapping")
            return None
        for key in item:
            if key not in STEP_KEYS:
                self._err(doc, item, str(key), f"unknown step key {key!r}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            self._err(doc, item, "name", "each step needs a 'name'")
            name = f"step{index + 1}"
        where = self.compiler.compile(item.get("where"), doc, item, "where")
        if "where" not in item:
            where = ALWAYS
        by = self._by(item, doc)
        count, distinct = self._count(item, doc)
        optional = item.get("optional", False)
        if not isinstance(optional, bool):
            self._err(doc, item, "optional", "'optional' takes true or false")
        return Step(
            name=name,
            index=index,
            stage=stage,
            where=where,
            by=by,
            keys=tuple(key_fn(b) for b in by),
            optional=bool(optional),
            count=count,
            distinct=distinct,
            distinct_fn=key_fn(distinct) if distinct else None,
        )

    def _by(self, item: Mapping[str, Any], doc: Located) -> tuple[str, ...]:
        by = item.get("by")
        if isinstance(by, str):
            by = [by]
        if not isinstance(by, list) or not by or not all(isinstance(b, str) for b in by):
            self._err(doc, item, "by", "'by' must name the join key field(s) of this step")
            return ()
        for name in by:
            problem = key_error(name)
            if problem:
                self._err(doc, item, "by", problem)
        return tuple(by) if not any(key_error(b) for b in by) else ()

    def _count(self, item: Mapping[str, Any], doc: Located) -> tuple[int, str]:
        spec = item.get("count")
        if spec is None:
            return 1, ""
        if isinstance(spec, int) and not isinstance(spec, bool):
            spec = {"min": spec}
        if not isinstance(spec, Mapping) or set(spec) - {"min", "distinct"}:
            self._err(doc, item, "count", "'count' takes 'min' and optionally 'distinct'")
            return 1, ""
        minimum, distinct = spec.get("min", 1), spec.get("distinct", "")
        if not isinstance(minimum, int) or isinstance(minimum, bool) or not 1 <= minimum <= 1000:
            self._err(doc, spec, "min", "'count.min' must be an integer from 1 to 1000")
            minimum = 1
        if not isinstance(distinct, str) or (distinct and key_error(distinct)):
            self._err(doc, spec, "distinct", f"'count.distinct' is not a field: {distinct!r}")
            distinct = ""
        return minimum, distinct

    def _check_steps(self, steps: list[Step], raw: Mapping[str, Any], doc: Located) -> None:
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            self._err(doc, raw, "steps", "step names must be unique within a rule")
        arity = {len(s.by) for s in steps if s.by}
        if len(arity) > 1:
            self._err(doc, raw, "steps", "every step's 'by' must name the same number of fields")
        first = [s for s in steps if s.stage == 0]
        if any(s.optional for s in first):
            self._err(doc, raw, "steps", "steps of the first stage cannot be optional")
        if all(s.optional for s in steps):
            self._err(doc, raw, "steps", "a rule needs at least one required step")


def _stages(steps: tuple[Step, ...]) -> tuple[tuple[int, ...], ...]:
    count = max(s.stage for s in steps) + 1
    return tuple(tuple(s.index for s in steps if s.stage == k) for k in range(count))
