"""The sequence engine: events in (any order within the lateness), chains out.

State shape — per rule, one dict per step keyed by the join tuple, each value the
step's matching events sorted by ``(time_ns, id)``::

    rule recon-token-pivot (within 15m, by actor.pod)
      steps[0] recon:        {("ns/p",): [e1, e4]}
      steps[1] token-read:   {("ns/p",): [e2]}
      steps[2] cross-ns-api: {("ns/p",): [e3]}
      windows:               {("ns/p",): [(e1.time, "lmc-…")]}   emitted, still absorbing

Events of the first stage are *anchors*. Time is event time only. Every input (a
Falco node, an API server, a file) keeps its own progress and the engine's watermark
is the minimum over active inputs (``watermarks.py``); *settled* is the watermark held
back by any alert still waiting for its pod. Nothing older than the watermark can
still arrive, so a decision over events up to *settled* is final. For each key, anchors
are decided oldest first, and a chain is emitted as soon as its evidence is settled,
not when the window closes::

    e1 (anchor)     e2        e3                     e1 + within
    |---------------|---------|----------------------|
                              settled > e3 and e1..e3 a full match → emit now,
                                                     id = hash(rule, key, e1)
    a later anchor inside an emitted window            → absorbed (one chain, not two)
    settled > e1 + within with no match                → e1 dropped
    otherwise                                          → wait (later anchors wait too)

Why ids and evidence do not depend on arrival order: once settled passes the last
event of a match, every event up to it has arrived — no earlier anchor, no earlier
candidate for any step — and the matcher's earliest-first picks use nothing later
(``matcher.py``), so the sorted stream would have found the same match from the same
anchor. A late event (older than the watermark) is counted, handed to ``on_late`` and
checked: if it would have completed a chain, ``late_chains_missed`` counts it. Every
buffered event expires when ``settled`` passes ``time + within``; caps per key and
in total evict the oldest, counted by reason. Candidate steps are found through
:class:`~correlation.index.StepIndex` and offered last step first, so one event
never serves two steps of one chain (the matcher also excludes reuse).

Neighbours: the per-rule buffers live in ``buffers.py``, container-only alerts waiting
for their pod in ``held.py``, snapshot bytes in ``snapshots.py``; buffers hold the
compact copy of an event and shared join keys (``compact.py``), made once per event.
On the noise path (an event no step wants) the engine does one index lookup, its
input's bookkeeping and, unless the watermark passed a due time, no heap work:
:meth:`Engine._process` inlines that check. A *claim* (a pod-token request only a
foreign-IP step may want, not yet normalized: ``correlation/event.py``) takes the same
path unless, with the bindings of the moment, the resolver would learn from it or its
source IP is foreign; only then is its Event built (:meth:`Engine.claimed`).
"""

from __future__ import annotations

import heapq
from bisect import insort
from collections.abc import Callable, Iterable, Sequence
from itertools import count, product
from typing import Final

import msgspec

from correlation import snapshots
from correlation.buffers import RuleBuffers
from correlation.chain import Chain, ChainStep
from correlation.compact import Compactor
from correlation.event import K8S_AUDIT, Claim, Event, time_only
from correlation.held import HeldAlerts, must_hold
from correlation.identity import Resolver
from correlation.incidents import Incidents, entities_of, short_hash
from correlation.index import StepIndex
from correlation.keys import fields_read
from correlation.matcher import NEVER, Picked, find_match, last_time, sort_key
from correlation.rules.model import ChainRule, Step
from correlation.state import EngineConfig, EngineStats, Entry, Snapshot
from correlation.watermarks import Inputs, InputState, clamp_to_clock

__all__ = ["Engine", "EngineConfig", "EngineStats"]

Key = tuple[str, ...]
INCIDENT_SWEEP_NS: Final = 60 * 1_000_000_000


class Engine:
    """Push events with :meth:`process`; confirmed chains come back from every call."""

    def __init__(
        self,
        rules: Sequence[ChainRule],
        config: EngineConfig | None = None,
        on_late: Callable[[Event], None] | None = None,
    ) -> None:
        self.rules = list(rules)
        self.config = config or EngineConfig()
        self.on_late = on_late
        self._states = [RuleBuffers(r) for r in self.rules]
        self._rule_no = {r.id: n for n, r in enumerate(self.rules)}
        self._index = StepIndex(self.rules)
        # per (rule, step): the predicate, the rule's suppression list (None when empty)
        self._plans = {
            (rule_no, step.index): (step.where.pred, rule.suppress or None, step)
            for rule_no, rule in enumerate(self.rules)
            for step in rule.steps
        }
        self._resolver = Resolver(self.config.max_identities, self.config.hold_ns)
        self._incidents = Incidents(
            self.config.incident_window_ns, self.config.max_incident_entities
        )
        self._stats = EngineStats()
        self._seq = count()
        self._inputs = Inputs(self.config.watermarks)
        self._holder: InputState | None = None  # the input that held the watermark back
        self._settled = -NEVER
        self._swept = -NEVER
        self._live = 0
        # heaps: (expire_at, seq, rule_no, step_no or -1 for a window, key, event or None)
        self._expiry: list[tuple[int, int, int, int, Key, Event | None]] = []
        self._wakeups: list[tuple[int, int, int, Key]] = []
        self._wake_at: dict[tuple[int, Key], int] = {}
        self._held = HeldAlerts(self.config.max_pending, self.config.hold_ns)
        # buffered events are compact copies: fields no later reader wants are dropped
        self._compactor = Compactor(
            f for r in self.rules for s in r.steps if s.distinct for f in fields_read(s.distinct)
        )
        # precomputed once: the noise path must not re-derive these per event
        self._allowlist = self.config.allowlist if self.config.allowlist else None

    # ---------------------------------------------------------------- public API
    @property
    def watermark(self) -> int:
        """The minimum over active inputs' progress (ns); see ``watermarks.py``."""
        return self._inputs.watermark

    def add_input(self, name: str, pushed: bool, disorder_ns: int | None = None) -> None:
        """Declare an input before its events flow (a pulled input then holds the
        watermark back from the start). ``disorder_ns`` defaults to ``lateness_ns``."""
        disorder = self.config.lateness_ns if disorder_ns is None else disorder_ns
        self._inputs.add(name, pushed, disorder)
        self._holder = None  # the watermark is recomputed with the next event or tick

    def inputs(self) -> list[InputState]:
        """Every input's progress (read-only use: metrics, logs, alignment)."""
        return list(self._inputs.by_name.values())

    def input_watermark(self, name: str) -> int | None:
        """One input's own watermark, None for an unknown input."""
        state = self._inputs.by_name.get(name)
        return None if state is None else self._inputs.of(state)

    def process(self, event: Event, input: str = "", now_ns: int = 0) -> list[Chain]:
        """Push one event of ``input`` received at clock ``now_ns`` (0: no clock, as in
        a replay); returns the chains confirmed by it (often none)."""
        out: list[Chain] = []
        try:
            self._process(event, input, now_ns, out)
        except Exception:  # noqa: BLE001 — a bad event must never stop the stream
            self._count("error")
        return out

    def tick(self, time_ns: int, source: str, input: str = "", now_ns: int = 0) -> list[Chain]:
        """:meth:`process` of the time-only tick ``time_only(time_ns, source)`` (an event
        nothing can use: only its time counts), without building the event."""
        # the guard of process() written out: a call through a shared guard cost ~0.3 µs
        # per tick or claim (2e5 disordered stream: engine over its parsed ticks 0.126 →
        # 0.092 s, ticks and claims 0.28 → 0.21 s)
        out: list[Chain] = []
        try:
            state = self._arrival(time_ns, source, input, now_ns)
            watermark = self._inputs.watermark
            if time_ns >= watermark:  # on time: only its time counts
                self._stats.time_only += 1
                self._settle_after(watermark, out)
            else:
                self._late(time_only(time_ns, source), state, watermark)
        except Exception:  # noqa: BLE001 — a bad event must never stop the stream
            self._count("error")
        return out

    def claimed(self, claim: Claim, input: str = "", now_ns: int = 0) -> list[Chain]:
        """:meth:`process` of ``claim.event()``, building that Event only when it matters.

        Decided with the state as of this call: a late claim, one the resolver learns
        from, or one a foreign-IP step may want whose source IP is foreign now, is built
        and processed; any other changes nothing but event time and the counts, so it is
        taken as :meth:`tick` takes a tick. The outcome is that of processing the Event
        (chains, every counter, ``on_late``, snapshots), but ``time_only`` counts it.

        Why that holds: the parser made a claim only when no step but a foreign-IP one
        may want the event and the allowlist does not match its actor; the resolver
        leaves its pod as it is and never holds it, and only Falco alerts release held
        ones. So, on time, the Event can change only what ``learn`` and a foreign-IP
        step's predicate read: whether its IP is bound or foreign now."""
        out: list[Chain] = []  # guarded as in tick(), written out for the same reason
        try:
            time_ns, ip = claim.time_ns, claim.ip
            state = self._arrival(time_ns, K8S_AUDIT, input, now_ns)
            watermark = self._inputs.watermark
            if time_ns < watermark:
                self._late(claim.event(), state, watermark)
                return out
            if ip and self._resolver.claim_matters(claim.pod_ref, ip, time_ns, claim.foreign):
                self._take(claim.event(), out)
            else:
                self._stats.time_only += 1
            self._settle_after(watermark, out)
        except Exception:  # noqa: BLE001 — a bad event must never stop the stream
            self._count("error")
        return out

    def advance(self, now_ns: int, at_end: Iterable[str] = ()) -> list[Chain]:
        """The receiving clock is ``now_ns`` (pushed inputs progress with it); pulled
        inputs named in ``at_end`` that were quiet for the idle timeout go idle."""
        self._inputs.advance(now_ns, at_end)
        self._holder = None
        out: list[Chain] = []
        self._settle(out)
        return out

    def progress(self, input: str, time_ns: int, now_ns: int = 0) -> list[Chain]:
        """``input`` has delivered everything it will deliver in order up to ``time_ns``
        (a relay's progress marker, read from the partition like an event) at clock
        ``now_ns``: the input moves as an event at that time would, with no event."""
        state = self._inputs.by_name.get(input)
        if state is None:
            state = self._inputs.add(input, False, self.config.lateness_ns)
        self._inputs.saw(state, time_ns, now_ns)
        state.events -= 1  # a marker is not an event
        self._holder = None
        out: list[Chain] = []
        self._settle(out)
        return out

    def flush(self) -> list[Chain]:
        """End of input: release held alerts, decide every anchor, clear the buffers."""
        out: list[Chain] = []
        for event in self._held.drain():
            self._offer(event, out)
        self._settled = NEVER
        for rule_no, state in enumerate(self._states):
            for key in state.anchor_keys():
                self._evaluate(rule_no, key, out)
        for state in self._states:
            state.clear()
        self._expiry.clear()
        self._wakeups.clear()
        self._wake_at.clear()
        self._compactor.clear()
        self._live = 0
        self._settled = self.watermark
        return out

    def stats(self) -> EngineStats:
        """A copy of the counters, with live gauges filled in."""
        stats = msgspec.structs.replace(
            self._stats,
            partials=self._live,
            pending=self._held.count,
            identity_bindings=self._resolver.size,
            watermark_ns=max(self.watermark, 0),
            evictions=dict(self._stats.evictions),
            chains=dict(self._stats.chains),
        )
        if self._resolver.evicted:
            stats.evictions["identity_cap"] = self._resolver.evicted
        if self._incidents.evicted:
            stats.evictions["incident_cap"] = self._incidents.evicted
        return stats

    # ---------------------------------------------------------------- intake
    def _process(self, event: Event, input: str, now_ns: int, out: list[Chain]) -> None:
        time_ns = event.time_ns
        state = self._arrival(time_ns, event.source, input, now_ns)
        watermark = self._inputs.watermark
        if time_ns < watermark:
            self._late(event, state, watermark)
            return
        if not event.id:  # a time-only tick (correlation/interest.py): only its time counts
            self._stats.time_only += 1
        else:
            self._take(event, out)
        self._settle_after(watermark, out)

    def _take(self, event: Event, out: list[Chain]) -> None:
        """An event on time: suppressed, held, or offered to the steps and learned from."""
        if self._allowlist is not None and self._allowlist.matches(event):
            self._stats.suppressed += 1
            return
        resolved = self._resolver.resolve(event)
        if must_hold(resolved):
            self._hold(resolved, out)
            return
        self._offer(resolved, out)
        self._resolver.learn(resolved)
        if self._held.count:
            for released in self._held.release(resolved, self._resolver):
                self._offer(released, out)

    def _arrival(self, time_ns: int, source: str, input: str, now_ns: int) -> InputState:
        """Count an event of ``input`` at ``time_ns`` and move the watermark with it."""
        self._stats.events += 1
        inputs = self._inputs
        state = inputs.by_name.get(input)
        if state is None or state.idle:
            state = state or inputs.add(input, False, self.config.lateness_ns)
            self._holder = None  # an input joined or rejoined: the minimum may be its
        before = state.max_seen_ns
        if not inputs.saw(state, time_ns, now_ns):
            self._stats.clock_skew[source] = self._stats.clock_skew.get(source, 0) + 1
        if self._holder is None:
            self._holder = inputs.update()
        elif state is self._holder and state.max_seen_ns != before:
            self._holder = inputs.moved(state)  # only the holder's progress can move it
        return state

    def _settle_after(self, watermark: int, out: list[Chain]) -> None:
        """After an event on time: settle up to the watermark it left."""
        if self._held.count:
            self._settle(out)
            return
        # the common case, inlined: with nothing held, settled is the watermark, and the
        # heaps need a look only when it passes their next due time
        if watermark > self._settled:
            self._settled = watermark
            if (
                (self._wakeups and self._wakeups[0][0] <= watermark)
                or (self._expiry and self._expiry[0][0] < watermark)
                or watermark - self._swept > INCIDENT_SWEEP_NS
            ):
                self._settle_due(watermark, out)

    def _late(self, event: Event, state: InputState, watermark: int) -> None:
        """Older than the watermark: counted, handed over, checked for a missed chain."""
        self._stats.late += 1
        state.late += 1
        state.late_max_ns = watermark - event.time_ns
        if event.id and self._would_complete(event):  # a tick completes nothing
            self._stats.late_chains_missed += 1
        if self.on_late is not None:
            self.on_late(event)

    def _would_complete(self, event: Event) -> bool:
        """Whether a late event, had it been on time, completes a chain not emitted."""
        if self._allowlist is not None and self._allowlist.matches(event):
            return False
        resolved = self._resolver.resolve(event)
        for ref in self._index.candidates(resolved):
            pred, suppress, step = self._plans[ref]
            if not pred(resolved, self._resolver):
                continue
            if suppress is not None and suppress.matches(resolved):
                continue
            for key in _keys(step, resolved):
                if self._completes_with(ref[0], ref[1], key, resolved):
                    return True
        return False

    def _completes_with(self, rule_no: int, step_no: int, key: Key, event: Event) -> bool:
        state = self._states[rule_no]
        rule = state.rule
        lists = state.lists(key)
        trial = list(lists)
        trial[step_no] = sorted([*lists[step_no], event], key=sort_key)
        anchors = state.anchors(key)
        if step_no in state.first_stage:
            anchors.append((step_no, event))
        for anchor_step, anchor in anchors:
            if state.in_window(key, anchor.time_ns):
                continue
            if find_match(rule, trial, anchor_step, anchor) is None:
                continue
            if anchor is event or find_match(rule, lists, anchor_step, anchor) is None:
                return True
        return False

    def _offer(self, event: Event, out: list[Chain]) -> None:
        """Insert the event under every step it matches, then re-decide those keys."""
        resolver = self._resolver
        kept: Event | None = None  # the compact copy, made once for all steps and keys
        for ref in self._index.candidates(event):
            pred, suppress, step = self._plans[ref]
            if not pred(event, resolver):
                continue
            if suppress is not None and suppress.matches(event):
                self._stats.suppressed += 1
                continue
            rule_no, step_no = ref
            for key in _keys(step, event):
                if kept is None:
                    kept = self._compactor.compact(event)
                key = self._compactor.share(key)  # buckets, heap entries and windows share it
                if self._insert(rule_no, step_no, key, kept):
                    self._evaluate(rule_no, key, out)

    def _insert(self, rule_no: int, step_no: int, key: Key, event: Event) -> bool:
        state = self._states[rule_no]
        rule = state.rule
        if step_no not in state.first_stage and event.time_ns < self._settled:
            if event.time_ns + rule.within_ns < self._settled:
                return False  # too old to join any anchor that can still be decided
            if not state.has_anchor(key):
                return False  # later steps are kept only if an anchor exists or may arrive
        bucket = state.add(step_no, key, event)
        if bucket is None:
            return False  # the same event twice (e.g. a re-delivered audit batch)
        self._live += 1
        expire_at = event.time_ns + rule.within_ns
        heapq.heappush(self._expiry, (expire_at, next(self._seq), rule_no, step_no, key, event))
        if len(bucket) > self.config.max_partials_per_key:
            victim = bucket.pop(0)
            self._live -= 1
            self._count("key_cap")
            if victim is event:
                return False
        while self._live > self.config.max_partials_total and self._expiry:
            self._expire_one(reason="total_cap")
        return True

    # ---------------------------------------------------------------- deciding
    def _evaluate(self, rule_no: int, key: Key, out: list[Chain]) -> None:
        """Decide the anchors of one key, oldest first (see the module docstring)."""
        state = self._states[rule_no]
        rule = state.rule
        within = rule.within_ns
        lists = state.lists(key)
        for step_no, anchor in state.anchors(key):
            start = anchor.time_ns
            if state.in_window(key, start):
                self._remove(state, step_no, key, anchor)
                self._stats.absorbed += 1
                continue
            match = find_match(rule, lists, step_no, anchor)
            if match is not None:
                last = last_time(match)
                if last >= self._settled:
                    self._wake(last + 1, rule_no, key)  # an earlier event may still come
                    return
                out.append(self._emit(rule_no, key, anchor, match))
                self._remove(state, step_no, key, anchor)
            elif self._settled > start + within:
                self._remove(state, step_no, key, anchor)
            else:
                self._wake(start + within + 1, rule_no, key)
                return

    def _emit(self, rule_no: int, key: Key, anchor: Event, picked: Picked) -> Chain:
        rule = self.rules[rule_no]
        steps = tuple(ChainStep(rule.steps[i].name, e) for i in sorted(picked) for e in picked[i])
        events = [s.event for s in steps]
        chain_id = short_hash("lmc-", rule.id, "|".join(key), anchor.id)
        entities = entities_of(events)
        incident = self._incidents.stitch(chain_id, events, entities)
        self._states[rule_no].open_window(key, anchor.time_ns, chain_id)
        expire_at = anchor.time_ns + rule.within_ns
        heapq.heappush(self._expiry, (expire_at, next(self._seq), rule_no, -1, key, None))
        self._stats.chains[rule.id] = self._stats.chains.get(rule.id, 0) + 1
        return Chain(
            id=chain_id,
            incident=incident.id,
            rule=rule.id,
            title=rule.title,
            severity=rule.severity,
            techniques=rule.techniques,
            steps=steps,
            entities=entities,
            path=tuple(incident.path),
        )

    def _wake(self, at: int, rule_no: int, key: Key) -> None:
        known = self._wake_at.get((rule_no, key))
        if known is not None and known <= at:
            return
        self._wake_at[(rule_no, key)] = at
        heapq.heappush(self._wakeups, (at, next(self._seq), rule_no, key))

    def _settle(self, out: list[Chain]) -> None:
        """Apply a new watermark: release held alerts, wake keys, expire state."""
        if self._holder is None:
            self._holder = self._inputs.update()
        for event in self._held.expired(self.watermark):
            self._offer(self._resolver.resolve(event), out)
        settled = self.watermark
        oldest = self._held.oldest_ns
        if oldest is not None:
            settled = min(settled, oldest)
        if settled <= self._settled:
            return
        self._settled = settled
        self._settle_due(settled, out)

    def _settle_due(self, settled: int, out: list[Chain]) -> None:
        """Wake keys and expire state due at ``settled`` (already stored as settled)."""
        while self._wakeups and self._wakeups[0][0] <= settled:
            at, _, rule_no, key = heapq.heappop(self._wakeups)
            if self._wake_at.get((rule_no, key)) == at:
                del self._wake_at[(rule_no, key)]
                self._evaluate(rule_no, key, out)
        while self._expiry and self._expiry[0][0] < settled:
            self._expire_one(reason="")
        if settled - self._swept > INCIDENT_SWEEP_NS:
            self._swept = settled
            self._incidents.expire(settled)

    # ---------------------------------------------------------------- removal
    def _remove(self, state: RuleBuffers, step_no: int, key: Key, event: Event) -> bool:
        if not state.remove(step_no, key, event):
            return False
        self._live -= 1
        return True

    def _expire_one(self, reason: str) -> None:
        """Pop the oldest expiry entry; count it under ``reason`` when it was live."""
        _, _, rule_no, step_no, key, event = heapq.heappop(self._expiry)
        state = self._states[rule_no]
        if event is None:
            state.close_window(key)
            return
        if self._remove(state, step_no, key, event) and reason:
            self._count(reason)

    def _count(self, reason: str) -> None:
        self._stats.evictions[reason] = self._stats.evictions.get(reason, 0) + 1

    # ---------------------------------------------------------------- held alerts
    def _hold(self, event: Event, out: list[Chain]) -> None:
        """Keep a container-only alert until its pod is learned or ``lateness`` passes."""
        evicted = self._held.hold(event)
        if evicted is not None:
            self._count("pending_cap")
            self._offer(evicted, out)

    # ---------------------------------------------------------------- snapshots
    def snapshot(self) -> bytes:
        """The engine's whole state as msgpack bytes (see :meth:`restore`)."""
        return snapshots.encode(
            self._inputs.now_ns,
            self._inputs.watermark,
            self.inputs(),
            self._states,
            self._held.events(),
            self._resolver.state,
            self._incidents.state,
            self.stats(),
        )

    @classmethod
    def restore(
        cls,
        rules: Sequence[ChainRule],
        config: EngineConfig | None,
        data: bytes,
        on_late: Callable[[Event], None] | None = None,
        now_ns: int = 0,
    ) -> Engine:
        """An engine continuing from :meth:`snapshot` bytes (rules may have changed).

        With the receiving clock ``now_ns``, no input's progress and not the watermark
        come back ahead of ``now`` (a checkpoint taken after a future
        stamp, or by a host whose clock was ahead, cannot blind the restarted engine)."""
        snap = snapshots.decode(data)
        engine = cls(rules, config, on_late)
        engine._load(snap, now_ns)
        return engine

    def _load(self, snap: Snapshot, now_ns: int) -> None:
        self._load_progress(snap, now_ns)
        self._resolver.state = snap.identity
        self._incidents.state = snap.incidents
        self._stats = msgspec.structs.replace(snap.stats, partials=0, pending=0)
        self._restore_entries(snap.entries)
        for window in snap.windows:
            rule_no = self._rule_no.get(window.rule)
            if rule_no is not None:
                state = self._states[rule_no]
                state.open_window(window.key, window.anchor_ns, window.chain_id)
                expire_at = window.anchor_ns + state.rule.within_ns
                heapq.heappush(
                    self._expiry, (expire_at, next(self._seq), rule_no, -1, window.key, None)
                )
        for event in sorted(snap.pending, key=sort_key):
            self._held.hold(event)

    def _load_progress(self, snap: Snapshot, now_ns: int) -> None:
        inputs = self._inputs
        inputs.now_ns = min(snap.clock_ns, now_ns) if now_ns else snap.clock_ns
        inputs.watermark = snap.watermark_ns
        if now_ns:
            inputs.watermark = clamp_to_clock(snap.watermark_ns, now_ns)
        for state in snap.inputs:
            if not state.name:  # the default input takes this engine's lateness
                state.disorder_ns = self.config.lateness_ns
        inputs.restore(snap.inputs, now_ns)
        self._settled = -NEVER  # decided again from the restored buffers

    def _restore_entries(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            rule_no = self._rule_no.get(entry.rule)
            if rule_no is None or entry.step >= len(self.rules[rule_no].steps):
                self._count("restore_unknown_rule")
                continue
            state = self._states[rule_no]
            event = self._compactor.compact(entry.event)
            key = self._compactor.share(entry.key)
            insort(state.steps[entry.step].setdefault(key, []), event, key=sort_key)
            self._live += 1
            expire_at = event.time_ns + state.rule.within_ns
            heapq.heappush(
                self._expiry, (expire_at, next(self._seq), rule_no, entry.step, key, event)
            )
            if entry.step in state.rule.stages[0]:
                self._wake(-NEVER, rule_no, key)


def _keys(step: Step, event: Event) -> Iterable[Key]:
    if len(step.keys) == 1:
        return [(value,) for value in step.keys[0](event)]
    return product(*(fn(event) for fn in step.keys))
