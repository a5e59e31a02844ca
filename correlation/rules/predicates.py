"""Compile rule predicates (YAML mappings) once into closures.

A predicate is a mapping; several keys in one mapping must all hold::

    {signal: recon}                         a named predicate from a ``signals:`` block
    {all: [p, ...]}  {any: [p, ...]}  {not: p}
    {cross_namespace: true}                 actor.namespace set and ≠ target.namespace
    {source_ip_foreign: true}               the request's source IP is not the actor pod's
    {<field>: value}                        equality            (tuple fields: any element;
                                            fields.<key> holding a Falco list: any element)
    {<field>: [v1, v2]}                     in-list
    {<field>: {<op>: value, ...}}           eq, in, not_in, startswith, endswith, contains
                                            (value or list), gte, gt, lte, lt, exists

Every compiled predicate also carries an *index hint*: the ``source`` values it
can match and a set of ``(field, value)`` alternatives of which an event must
have at least one (``rule``, ``tags``, ``resource``, ``subresource``, ``verb``), and
the identity fields it *needs* set (``{actor.service_account: {exists: true}}`` inside
an ``all``), so an ordinary user's request skips the service-account steps unevaluated,
and whether it holds only for a *foreign* source IP (``source_ip_foreign: true`` inside
an ``all``; see ``correlation/interest.py``) or only across namespaces (``cross``:
``cross_namespace: true`` inside an ``all``). The index files a step under one set of
alternatives; its *terms* (:data:`Terms`) keep every index-field test the predicate
implies (``resource: pods`` *and* ``verb: [get, list]``), which the index checks too.
The engine files each step under those keys, so most noise events are rejected
by one or two dict lookups without calling any closure.

Inside an ``all``, children run cheapest-and-most-selective first (their ``rank``
attribute, see :data:`RANK`): ``cross_namespace`` and ``exists`` reject most of the
audit noise that reaches a step; ``source`` tests go late because the index already
routed the event by source; context lookups (``source_ip_foreign``) go last. The
tests are pure, so the order changes cost, never the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from correlation.event import Event
from correlation.rules.fields import NUMERIC_FIELDS, TUPLE_FIELDS, field_error, getter
from correlation.rules.source import Located


class Context(Protocol):
    """What a predicate may ask the engine beyond the event itself."""

    def source_ip_foreign(self, event: Event) -> bool:
        """True when the event's source IP belongs to another pod than its actor."""
        ...


Pred = Callable[[Event, Context], bool]
Alts = frozenset[tuple[str, str]]
# Any-of-all-of clauses over index fields: an accepted event satisfies one term, i.e.
# has one (field, value) of every clause in it. None: nothing known.
Terms = tuple[tuple[Alts, ...], ...]
MAX_TERMS: Final = 64  # beyond this an ``all`` stops adding clauses (weaker, still sound)
# Lower rank = more selective; an ``all`` indexes on its most selective child.
INDEX_RANK: Final = {"rule": 0, "tags": 0, "subresource": 1, "resource": 2, "verb": 3}
NO_NEEDS: Final[frozenset[str]] = frozenset()
STRING_OPS: Final = ("startswith", "endswith", "contains")
# What a field holds: one value, a tuple (any element matches), or either (a Falco output
# field is a string, or a tuple for list-typed fields such as k8s.pod.labels).
ONE, MANY, EITHER = "one", "many", "either"
# evaluation order inside an ``all`` (lower first); unranked closures count as "other"
RANK: Final = {
    "cross_namespace": 0,
    "exists": 1,
    "member": 2,
    "other": 3,
    "source": 5,
    "context": 9,
}
NUMBER_OPS: Final = {
    "gte": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "lte": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}


@dataclass(frozen=True)
class Compiled:
    """A predicate closure and its index hint (``None`` = no constraint known)."""

    pred: Pred
    sources: frozenset[str] | None = None
    alts: Alts | None = None
    needs: frozenset[str] = frozenset()  # identity fields that must be set (non-empty)
    foreign: bool = False  # true only of events whose source IP is not their pod's own
    terms: Terms | None = None  # every index-field test it implies (see :data:`Terms`)
    cross: bool = False  # true only of events whose actor.namespace is set and not the target's


def _true(event: Event, ctx: Context) -> bool:
    return True


class PredicateCompiler:
    """Compiles predicate nodes; collects errors as ``path:line: message``."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        self.signals: dict[str, tuple[Located, Any]] = {}
        self._compiled: dict[str, Compiled] = {}
        self._compiling: set[str] = set()

    def define_signal(self, name: str, node: Any, doc: Located) -> None:
        """Register a named predicate (later definitions replace earlier ones)."""
        self.signals[name] = (doc, node)
        self._compiled.pop(name, None)

    def compile(self, node: Any, doc: Located, parent: object, key: str) -> Compiled:
        """Compile ``parent[key]`` (``node``); on error record it and return match-nothing."""
        if not isinstance(node, Mapping) or not node:
            return self._fail(doc, parent, key, "a predicate must be a non-empty mapping")
        parts = [self._entry(str(k), v, doc, node) for k, v in node.items()]
        return parts[0] if len(parts) == 1 else _all(parts)

    def _fail(self, doc: Located, obj: object, key: str | None, msg: str) -> Compiled:
        self.errors.append(f"{doc.where(obj, key)}: {msg}")
        return Compiled(lambda event, ctx: False, frozenset(), frozenset())

    def _entry(self, key: str, value: Any, doc: Located, node: Any) -> Compiled:
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                return self._fail(doc, node, key, f"'{key}' needs a non-empty list")
            parts = [self.compile(item, doc, value, str(i)) for i, item in enumerate(value)]
            return _all(parts) if key == "all" else _any(parts)
        if key == "not":
            inner = self.compile(value, doc, node, key).pred
            return Compiled(lambda event, ctx: not inner(event, ctx))
        if key == "signal":
            return self._signal(value, doc, node)
        if key in ("cross_namespace", "source_ip_foreign"):
            return self._flag(key, value, doc, node)
        problem = field_error(key)
        if problem:
            return self._fail(doc, node, key, problem)
        return self._field(key, value, doc, node)

    def _signal(self, name: Any, doc: Located, node: Any) -> Compiled:
        if not isinstance(name, str) or name not in self.signals:
            return self._fail(doc, node, "signal", f"unknown signal {name!r}")
        if name in self._compiled:
            return self._compiled[name]
        if name in self._compiling:
            return self._fail(doc, node, "signal", f"signal {name!r} refers to itself")
        self._compiling.add(name)
        sig_doc, sig_node = self.signals[name]
        compiled = self.compile(sig_node, sig_doc, node, "signal")
        self._compiling.discard(name)
        self._compiled[name] = compiled
        return compiled

    def _flag(self, key: str, value: Any, doc: Located, node: Any) -> Compiled:
        if not isinstance(value, bool):
            return self._fail(doc, node, key, f"'{key}' takes true or false")
        if key == "cross_namespace":

            def cross(event: Event, ctx: Context) -> bool:
                ns = event.actor.namespace
                return bool(ns) and ns != event.target.namespace

            test: Pred = _ranked(cross, "cross_namespace")
        else:

            def test(event: Event, ctx: Context) -> bool:
                return ctx.source_ip_foreign(event)

            _ranked(test, "context")

        if value:
            return Compiled(
                test, foreign=key == "source_ip_foreign", cross=key == "cross_namespace"
            )
        return Compiled(lambda event, ctx: not test(event, ctx))

    def _field(self, name: str, spec: Any, doc: Located, node: Any) -> Compiled:
        if isinstance(spec, list):
            spec = {"in": spec}
        elif not isinstance(spec, Mapping):
            spec = {"eq": spec}
        parts = [self._op(name, str(op), arg, doc, spec, node) for op, arg in spec.items()]
        if not parts:
            return self._fail(doc, node, name, "empty operator mapping")
        return parts[0] if len(parts) == 1 else _all(parts)

    def _op(self, name: str, op: str, arg: Any, doc: Located, spec: Any, node: Any) -> Compiled:
        get = getter(name)
        many = MANY if name in TUPLE_FIELDS else EITHER if name.startswith("fields.") else ONE
        where = spec if spec is not node else node
        if op in ("eq", "in", "not_in"):
            values = arg if isinstance(arg, list) else [arg]
            if not all(isinstance(v, str | int | bool) for v in values):
                return self._fail(doc, where, op, f"'{op}' takes scalars")
            wanted = frozenset(_norm(name, v) for v in values)
            test = _ranked(_member(get, wanted, many), "source" if name == "source" else "member")
            if op == "not_in":
                return Compiled(lambda event, ctx: not test(event, ctx))
            alts = _alts(name, wanted)
            return Compiled(test, _sources(name, wanted), alts, terms=((alts,),) if alts else None)
        if op in STRING_OPS:
            words = arg if isinstance(arg, list) else [arg]
            if not words or not all(isinstance(w, str) for w in words):
                return self._fail(doc, where, op, f"'{op}' takes a string or a list of strings")
            return Compiled(_text(get, op, tuple(words), many))
        if op in NUMBER_OPS:
            if not isinstance(arg, int) or isinstance(arg, bool):
                return self._fail(doc, where, op, f"'{op}' takes an integer")
            return Compiled(_number(get, NUMBER_OPS[op], arg))
        if op == "exists":
            if not isinstance(arg, bool):
                return self._fail(doc, where, op, "'exists' takes true or false")
            test = _ranked(lambda event, ctx: bool(get(event)) is arg, "exists")
            return Compiled(test, needs=_needs(name) if arg else NO_NEEDS)
        return self._fail(doc, where, op, f"unknown operator {op!r}")


def _ranked(pred: Pred, kind: str) -> Pred:
    pred.rank = RANK[kind]  # type: ignore[attr-defined]
    return pred


def _norm(name: str, value: str | int | bool) -> str | int:
    if name in NUMERIC_FIELDS:
        return int(value)
    return str(value).lower() if isinstance(value, bool) else value


def _member(get: Callable[[Event], Any], wanted: frozenset[Any], many: str) -> Pred:
    if many == MANY:
        return lambda event, ctx: not wanted.isdisjoint(get(event))
    if many == EITHER:

        def member(event: Event, ctx: Context) -> bool:
            value = get(event)
            return value in wanted if isinstance(value, str) else not wanted.isdisjoint(value)

        return member
    return lambda event, ctx: get(event) in wanted


def _text(get: Callable[[Event], Any], op: str, words: tuple[str, ...], many: str) -> Pred:
    def one(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        if op == "startswith":
            return value.startswith(words)
        if op == "endswith":
            return value.endswith(words)
        return any(w in value for w in words)

    if many == MANY:
        return lambda event, ctx: any(one(v) for v in get(event))
    if many == EITHER:

        def either(event: Event, ctx: Context) -> bool:
            value = get(event)
            return one(value) if isinstance(value, str) else any(one(v) for v in value)

        return either
    return lambda event, ctx: one(get(event))


def _number(get: Callable[[Event], Any], cmp: Callable[[int, int], bool], bound: int) -> Pred:
    def test(event: Event, ctx: Context) -> bool:
        value = get(event)
        if isinstance(value, str):
            if not value.lstrip("-").isdigit():
                return False
            value = int(value)
        return isinstance(value, int) and cmp(value, bound)

    return test


def _sources(name: str, wanted: frozenset[Any]) -> frozenset[str] | None:
    return frozenset(str(v) for v in wanted) if name == "source" else None


def _alts(name: str, wanted: frozenset[Any]) -> Alts | None:
    if name not in INDEX_RANK:
        return None
    return frozenset((name, str(v)) for v in wanted)


def _needs(name: str) -> frozenset[str]:
    """``{actor.x: {exists: true}}``: the index may skip events where the field is empty."""
    if name.partition(".")[0] not in ("actor", "target") or name in TUPLE_FIELDS:
        return NO_NEEDS
    return frozenset({name})


def _rank(alts: Alts | None) -> tuple[int, int]:
    if alts is None:
        return (99, 0)
    if any(value == "" for _, value in alts):
        return (50, len(alts))  # "field is empty" is true of most events: a poor index
    return (max((INDEX_RANK[f] for f, _ in alts), default=0), len(alts))


def _all(parts: list[Compiled]) -> Compiled:
    preds = _flatten(parts)
    sources: frozenset[str] | None = None
    for part in parts:
        if part.sources is not None:
            sources = part.sources if sources is None else sources & part.sources
    alts = min((p.alts for p in parts), key=_rank)
    needs = frozenset().union(*(p.needs for p in parts))
    foreign = any(p.foreign for p in parts)
    cross = any(p.cross for p in parts)
    terms = _and_terms(parts)
    if len(preds) == 2:
        first, second = preds
        both: Pred = lambda event, ctx: first(event, ctx) and second(event, ctx)  # noqa: E731
        return Compiled(both, sources, alts, needs, foreign, terms, cross)

    def every(event: Event, ctx: Context) -> bool:
        # a plain loop: measurably faster than all() over a generator
        for pred in preds:
            if not pred(event, ctx):
                return False
        return True

    every.parts = preds  # type: ignore[attr-defined]
    return Compiled(every, sources, alts, needs, foreign, terms, cross)


def _and_terms(parts: list[Compiled]) -> Terms | None:
    """An ``all``'s terms: one term of each constrained child, every combination."""
    found: list[tuple[Alts, ...]] | None = None
    for part in parts:
        if part.terms is None:
            continue  # unconstrained: restricts nothing
        combined = [t + u for t in (found or [()]) for u in part.terms]
        if len(combined) > MAX_TERMS:
            continue  # leaving this child out keeps the terms true of every accepted event
        found = combined
    return tuple(found) if found is not None else None


def _flatten(parts: list[Compiled]) -> tuple[Pred, ...]:
    """Inline nested ``all`` children, ordered by :data:`RANK` (stable)."""
    preds: list[Pred] = []
    for part in parts:
        preds.extend(getattr(part.pred, "parts", (part.pred,)))
    return tuple(sorted(preds, key=lambda p: getattr(p, "rank", RANK["other"])))


def _any(parts: list[Compiled]) -> Compiled:
    preds = tuple(p.pred for p in parts)
    sources = None
    if all(p.sources is not None for p in parts):
        sources = frozenset().union(*(p.sources or () for p in parts))
    alts = None
    if all(p.alts is not None for p in parts):
        alts = frozenset().union(*(p.alts or () for p in parts))
    needs = frozenset.intersection(*(p.needs for p in parts))
    foreign = all(p.foreign for p in parts)
    cross = all(p.cross for p in parts)
    terms: Terms | None = None
    if all(p.terms is not None for p in parts):
        terms = tuple(t for p in parts for t in p.terms or ())
        if len(terms) > MAX_TERMS:
            terms = None

    def some(event: Event, ctx: Context) -> bool:
        for pred in preds:
            if pred(event, ctx):
                return True
        return False

    return Compiled(some, sources, alts, needs, foreign, terms, cross)


ALWAYS: Final = Compiled(_true)
