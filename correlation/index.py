"""Index rule steps by ``source`` and cheap discriminators.

Each compiled step predicate knows which ``source`` values it can match and a set
of ``(field, value)`` alternatives of which a matching event must have one (see
correlation/rules/predicates.py). The index files every step under those keys;
for an event, :meth:`StepIndex.candidates` does one dict lookup per indexed field
(``rule``, ``resource`` ...; one per tag) and returns only steps that can match.
Steps without a discriminator are always candidates for their sources.

A step is also dropped when the event's index fields meet none of its *terms* (every
index-field test its predicate implies, e.g. ``resource: deployments`` with ``verb:
create``: a controller's ``patch deployments`` is filed under the resource but fails
the verb). A step whose predicate *needs* identity fields set (``actor.service_account`` for the
steps that want service-account requests) is dropped for events where one is empty.

The answer depends only on an event's *discriminator* — ``(source, rule, tags,
resource, subresource, verb, is-set flags of the needed fields)`` — and real streams
repeat a few hundred of those (a kubelet's ``get pods``, a controller's ``update
leases``), so answers are memoized by it: the noise path costs one tuple and one dict
lookup. The memo is bounded (:data:`MEMO_MAX`, cleared when full).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Final

from correlation.event import SOURCES, Event
from correlation.rules.model import ChainRule
from correlation.rules.predicates import Terms

StepRef = tuple[int, int]  # (rule index, step index)
NO_STEPS: Final[tuple[StepRef, ...]] = ()
MEMO_MAX: Final = 4096
Discriminator = tuple[str, str, tuple[str, ...], str, str, str, tuple[bool, ...]]


class _SourceIndex:
    """The index for one ``source`` value."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, set[StepRef]]] = defaultdict(lambda: defaultdict(set))
        self.always: set[StepRef] = set()
        self.lookups: list[tuple[attrgetter[str], dict[str, frozenset[StepRef]]]] = []
        self.tags: dict[str, frozenset[StepRef]] = {}
        self.frozen_always: frozenset[StepRef] = frozenset()

    def freeze(self) -> None:
        self.tags = {v: frozenset(refs) for v, refs in self.tables.pop("tags", {}).items()}
        self.lookups = [
            (attrgetter(f), {v: frozenset(refs) for v, refs in t.items()})
            for f, t in sorted(self.tables.items())
        ]
        self.frozen_always = frozenset(self.always)


class StepIndex:
    """Maps an event to the (rule, step) pairs whose predicates may accept it."""

    def __init__(self, rules: Sequence[ChainRule]) -> None:
        self._by_source: dict[str, _SourceIndex] = {}
        # sorted candidate tuples per distinct set (few distinct sets exist)
        self._ordered: dict[frozenset[StepRef], tuple[StepRef, ...]] = {}
        self._memo: dict[Discriminator, tuple[StepRef, ...]] = {}
        self._needs: dict[StepRef, frozenset[str]] = {}
        self._terms: dict[StepRef, Terms] = {}
        for rule_no, rule in enumerate(rules):
            for step in rule.steps:
                if step.where.needs:
                    self._needs[(rule_no, step.index)] = step.where.needs
                if step.where.terms is not None:
                    self._terms[(rule_no, step.index)] = step.where.terms
                sources = step.where.sources if step.where.sources is not None else SOURCES
                for source in sources:
                    index = self._by_source.setdefault(source, _SourceIndex())
                    self._file(index, (rule_no, step.index), step.where.alts)
        for index in self._by_source.values():
            index.freeze()
        # "is set" flags of the fields some step needs: part of the discriminator
        self._flag_fields = sorted(set().union(*self._needs.values()))
        self._flags = _flags(self._flag_fields)

    @property
    def flag_fields(self) -> tuple[str, ...]:
        """Identity fields some step needs set, in the order :meth:`lookup` takes flags."""
        return tuple(self._flag_fields)

    @staticmethod
    def _file(index: _SourceIndex, ref: StepRef, alts: frozenset[tuple[str, str]] | None) -> None:
        if alts is None:
            index.always.add(ref)
            return
        for field, value in alts:
            index.tables[field][value].add(ref)

    def candidates(self, event: Event) -> tuple[StepRef, ...]:
        """Candidate steps, sorted by rule then *descending* step index.

        Descending order is the engine's "last step first" rule: an event that
        could serve two steps of one rule is offered to the later step first.
        """
        key: Discriminator = (
            event.source, event.rule, event.tags, event.resource, event.subresource, event.verb,
            self._flags(event),
        )  # fmt: skip
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= MEMO_MAX:
                self._memo.clear()  # bounded; a working set refills within a few events
            found = self._memo[key] = self.lookup(event, key[-1])
        return found

    def lookup(self, event: Event, flags: tuple[bool, ...]) -> tuple[StepRef, ...]:
        """:meth:`candidates` unmemoized, with the "is set" ``flags`` of :attr:`flag_fields`.

        Reads only the event's discriminator fields, so a probe event carrying just those
        answers for every event that shares them (see ``correlation/interest.py``).
        """
        index = self._by_source.get(event.source)
        if index is None:
            return NO_STEPS
        found: frozenset[StepRef] | None = None
        for get, table in index.lookups:
            hit = table.get(get(event))
            if hit:
                found = hit if found is None else found | hit
        if index.tags:
            for tag in event.tags:
                hit = index.tags.get(tag)
                if hit:
                    found = hit if found is None else found | hit
        if index.frozen_always:
            found = index.frozen_always if found is None else found | index.frozen_always
        unset = {f for f, is_set in zip(self._flag_fields, flags, strict=True) if not is_set}
        if found and unset:
            found = frozenset(r for r in found if unset.isdisjoint(self._needs.get(r, ())))
        if found and self._terms:
            terms = self._terms
            found = frozenset(r for r in found if r not in terms or _satisfies(terms[r], event))
        if not found:
            return NO_STEPS
        ordered = self._ordered.get(found)
        if ordered is None:
            ordered = self._ordered[found] = tuple(sorted(found, key=lambda r: (r[0], -r[1])))
        return ordered


def _satisfies(terms: Terms, event: Event) -> bool:
    """Whether the event's index fields meet one term (every clause of it) of a step."""
    return any(all(any(_has(event, f, v) for f, v in clause) for clause in term) for term in terms)


def _has(event: Event, field: str, value: str) -> bool:
    if field == "tags":
        return value in event.tags
    return bool(getattr(event, field) == value)


def _flags(fields: list[str]) -> Callable[[Event], tuple[bool, ...]]:
    """The "is set" flags of ``fields`` for an event (one C-level attrgetter call)."""
    if not fields:
        return lambda event: ()
    # runs for every event: one getter per field and ``not not`` (an opcode, not a call)
    # cost half of ``tuple(map(bool, attrgetter(*fields)(event)))``
    if len(fields) == 1:
        get = attrgetter(fields[0])
        return lambda event: (not not get(event),)
    if len(fields) == 2:
        first, second = attrgetter(fields[0]), attrgetter(fields[1])
        return lambda event: (not not first(event), not not second(event))
    values = attrgetter(*fields)
    return lambda event: tuple(map(bool, values(event)))
