"""What the loaded rules can use of an event, asked before the event is normalized.

Most input is noise no rule step can want: a kubelet's ``update leases``, a controller's
``update endpointslices``. The engine already rejects those with one index lookup, but only
after the parser built a full :class:`~correlation.event.Event` (fields, target, actor,
summary parts) for each. :class:`Interest` answers the same question from the few parts
a parser can read off the decoded document cheaply, so the parser can skip the rest::

    wants(source, rule, tags, verb, resource, subresource, empty, resolve_by)
        → may any step's predicate accept such an event?   (the engine's StepIndex)
    allowlisted(...)      → would the engine's allowlist count it as suppressed?

An event for which both say no, and that carries no pod of its own (the resolver learns
bindings only from events that name their pod: see ``identity.py``), changes nothing in
the engine but its event time and its ``events``/``late`` counts, so it can travel as a
*time-only tick* (:func:`~correlation.event.time_only`). Everything is derived from the
rules and the allowlist the engine runs with, through the engine's own index, so a rule
that starts wanting an event makes it un-rejected with no list to edit. Answers are
memoized by their arguments (bounded like the index's memo).

One refinement beyond the index: a step that needs ``source_ip_foreign`` cannot accept
an event whose pod, if any, the resolver would find *from its source IP* (that IP is
then the pod's own), so audit requests without a pod claim skip those steps. Another:
a step can keep an event only under its join key (``by``), and keys read off the actor's
pod (or an identity field the event is known to lack) are empty for an event without
one that the resolver cannot complete, so such steps do not want it either (unless the
rule has a ``suppress`` list, which counts a matching event before keys are read). For a
request *with* a pod claim, :meth:`Interest.claimed` tells those steps apart from the
rest: when only they may want it, whether it matters depends on the bindings learned
by the time it is processed, which the engine decides (``Engine.claimed``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from correlation.allowlist import EMPTY_ALLOWLIST, Allowlist
from correlation.event import K8S_AUDIT, Event
from correlation.identity import FILLED_BY_RESOLVE
from correlation.index import MEMO_MAX, StepIndex, StepRef
from correlation.keys import ACTOR_POD_KEYS
from correlation.rules.model import ChainRule
from correlation.rules.predicates import Compiled

__all__ = ["BY_CONTAINER", "BY_IP", "Interest"]

WantsKey = tuple[str, str, tuple[str, ...], str, str, str, tuple[bool, ...], str]
BY_IP: Final = "ip"
BY_CONTAINER: Final = "container"


class Interest:
    """The engine's view of which events matter, for use before normalization."""

    def __init__(self, rules: Sequence[ChainRule], allowlist: Allowlist = EMPTY_ALLOWLIST):
        self._index = StepIndex(rules)
        self.asks: tuple[str, ...] = tuple(sorted({*self._index.flag_fields, "actor.pod"}))
        """Identity fields :meth:`wants` must be told are empty or not (``empty`` flags)."""
        self._flag_fields = self._index.flag_fields
        # steps that need a foreign source IP: a pod found *from* the source IP is never that
        self._foreign = _steps(rules, lambda where: where.foreign)
        # steps that need the actor's namespace to differ from the target's
        self._cross = _steps(rules, lambda where: where.cross)
        # the identity fields each step's join key reads that an event may be known to
        # lack: without them it offers no key, so the step cannot keep it. Rules with a
        # suppress list are left out: they count a matching event before keys are read.
        self._key_needs = {
            (rule_no, step.index): needs
            for rule_no, rule in enumerate(rules)
            if not rule.suppress
            for step in rule.steps
            if (needs := _key_needs(step.by, self.asks))
        }
        self._allowlist = allowlist if allowlist else None
        self._wants: dict[WantsKey, bool] = {}
        self._listed: dict[tuple[str, str, str, str], bool] = {}
        self._claimed: dict[tuple[str, str, str, tuple[bool, ...], bool], tuple[bool, bool]] = {}

    def wants(
        self,
        source: str,
        rule: str = "",
        tags: tuple[str, ...] = (),
        verb: str = "",
        resource: str = "",
        subresource: str = "",
        empty: tuple[bool, ...] = (),
        resolve_by: str = BY_IP,
    ) -> bool:
        """May any step accept an event with these parts (values exactly as normalized)?

        ``empty``: for each field of :attr:`asks`, whether the normalized event leaves it
        empty (``False`` when set or not known). ``resolve_by``: how the resolver may
        still fill in the pod of an event that lacks one: ``"ip"`` (it has a source IP),
        ``"container"`` (a Falco alert with a container id) or ``""`` (it cannot).
        """
        key = (source, rule, tags, verb, resource, subresource, empty, resolve_by)
        hit = self._wants.get(key)
        if hit is None:
            hit = self._lookup(key)
            if len(self._wants) >= MEMO_MAX:
                self._wants.clear()
            self._wants[key] = hit
        return hit

    def claimed(
        self,
        verb: str,
        resource: str,
        subresource: str,
        empty: tuple[bool, ...],
        same_namespace: bool,
    ) -> tuple[bool, bool]:
        """For an audit request with its pod claim (``empty`` as for :meth:`wants`, with
        the pod set): may a step that does not need a foreign source IP want it, and may
        one that does? Only the second depends on engine state (``Engine.claimed``).
        ``same_namespace``: its target namespace is known to be the actor's (steps that
        need ``cross_namespace`` cannot want it)."""
        key = (verb, resource, subresource, empty, same_namespace)
        hit = self._claimed.get(key)
        if hit is None:
            probe = (K8S_AUDIT, "", (), verb, resource, subresource, empty, "")
            refs = self._refs(probe)
            if same_namespace:
                refs = tuple(ref for ref in refs if ref not in self._cross)
            hit = (
                any(ref not in self._foreign for ref in refs),
                any(ref in self._foreign for ref in refs),
            )
            if len(self._claimed) >= MEMO_MAX:
                self._claimed.clear()
            self._claimed[key] = hit
        return hit

    def _lookup(self, key: WantsKey) -> bool:
        return bool(self._refs(key))

    def _refs(self, key: WantsKey) -> tuple[StepRef, ...]:
        source, rule, tags, verb, resource, subresource, empty, resolve_by = key
        unset = {name for name, is_empty in zip(self.asks, empty, strict=True) if is_empty}
        podless = "actor.pod" in unset
        if resolve_by:
            unset -= FILLED_BY_RESOLVE
        flags = tuple(name not in unset for name in self._flag_fields)
        probe = Event(
            0, source, "", rule=rule, tags=tags, verb=verb, resource=resource,
            subresource=subresource,
        )  # fmt: skip
        refs = self._index.lookup(probe, flags)
        if podless and resolve_by == BY_IP:
            refs = tuple(ref for ref in refs if ref not in self._foreign)
        if refs and unset:
            refs = tuple(r for r in refs if unset.isdisjoint(self._key_needs.get(r, ())))
        return refs

    def allowlisted(
        self, namespace: str = "", image: str = "", service_account: str = "", pod_ref: str = ""
    ) -> bool:
        """Would the engine's allowlist match this actor (and count the event suppressed)?"""
        if self._allowlist is None:
            return False
        key = (namespace, image, service_account, pod_ref)
        hit = self._listed.get(key)
        if hit is None:
            hit = self._allowlist.matches_actor(*key)
            if len(self._listed) >= MEMO_MAX:
                self._listed.clear()
            self._listed[key] = hit
        return hit


def _key_needs(by: Sequence[str], asks: Sequence[str]) -> frozenset[str]:
    """Of the fields :meth:`Interest.wants` is told about, those a step's join key
    (``by``) is empty without: any one missing and the step offers no key (keys.py)."""
    return frozenset(
        "actor.pod" if name in ACTOR_POD_KEYS else name
        for name in by
        if name in ACTOR_POD_KEYS or name in asks
    )


def _steps(rules: Sequence[ChainRule], test: Callable[[Compiled], bool]) -> frozenset[StepRef]:
    """The steps whose compiled predicate passes ``test`` (its index hints)."""
    return frozenset(
        (rule_no, step.index)
        for rule_no, rule in enumerate(rules)
        for step in rule.steps
        if test(step.where)
    )
