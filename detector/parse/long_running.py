"""Long-running requests: one event per request, at the first stage with the decision.

A watch, exec, attach, port-forward, proxy or followed log is logged at up to three
stages under one ``auditID``, all stamped with the same ``requestReceivedTimestamp``
(the event time the parser takes)::

    RequestReceived   at once        no decision yet, no response    → folded away
    ResponseStarted   at once        decision, 101 / 200 headers     → the event
    ResponseComplete  minutes later  same decision, final status     → folded away

ResponseStarted is the earliest stage that carries ``authorization.k8s.io/decision``,
so the request is correlated there, promptly. Its ResponseComplete (or Panic) is the same
request, not a second piece of evidence: passed on, it would arrive minutes behind its
own event time and be counted late by the engine (a real k3s log shows a watch's
ResponseComplete 6 m 47 s after its ResponseStarted).

Being the same event, both stages get the same id, ``"<auditID>/ResponseStarted"``
(:func:`event_id`; the Event's ``stage`` field keeps the real stage). So whichever of
them arrives first — always ResponseStarted from a live API server, either one in a
replay whose lines were shuffled — the evidence id, and with it the chain id, is the
same. :class:`LongRunningStages` sits between the parsers and the engine (the live
correlator and replay) and drops the second one.

Events the early reject reduces to time-only ticks (``detector/parse/early.py``) carry no
id to fold on; a tick of a later stage carries that stage's own time instead
(:meth:`detector.parse.early.EarlyReject.audit_or_claim`), so it is not late either.

A request passed on as a claim (``detector/parse/early.py``: the Event is built only if
the engine needs it) carries the id its stages fold under and its stage, so
:meth:`LongRunningStages.admit_claim` folds it exactly as it would fold its Event.

The requests remembered are part of the engine checkpoint (:meth:`snapshot`,
:meth:`restore`; ``detector run`` stores them beside the engine state): a watch or exec
whose ResponseStarted was correlated before a restart still has its ResponseComplete
folded after it, instead of passed on as a duplicate minutes behind its own event time.

A request logged at ResponseComplete only (a policy that omits ResponseStarted, a denied
exec that never opened a stream) is that one event. The requests remembered are bounded
(oldest forgotten first, counted): a forgotten request's other stage is passed on, a
duplicate id that the engine may count late, never a loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

import msgspec

from correlation.chain import Chain
from correlation.event import K8S_AUDIT, Claim, Event, Incoming

# kube-apiserver's own long-running check (verbs, subresources): these may hold a
# response open for as long as the client likes
LONG_RUNNING_VERBS: Final = frozenset(("watch", "proxy"))
LONG_RUNNING_SUBRESOURCES: Final = frozenset(("attach", "exec", "log", "portforward", "proxy"))
STARTED: Final = "ResponseStarted"
LATER_STAGES: Final = frozenset(("ResponseComplete", "Panic"))
RESPONDING: Final = frozenset((STARTED, *LATER_STAGES))
RECEIVED: Final = "RequestReceived"
MAX_OPEN: Final = 65_536


def long_running(verb: str, subresource: str) -> bool:
    """Whether kube-apiserver treats a request with this verb and subresource as long-running."""
    return verb in LONG_RUNNING_VERBS or subresource in LONG_RUNNING_SUBRESOURCES


def is_long_running(event: Event) -> bool:
    """Whether the audit event belongs to a request the API server treats as long-running."""
    return long_running(event.verb, event.subresource)


def event_id(audit_id: str, stage: str, verb: str, subresource: str) -> str:
    """``"<auditID>/<stage>"``; every responding stage of a long-running request is
    ``"<auditID>/ResponseStarted"``: the same event, whichever stage delivered it."""
    if stage in RESPONDING and long_running(verb, subresource):
        return f"{audit_id}/{STARTED}"
    return f"{audit_id}/{stage}"


class Takes(Protocol):
    """What :meth:`LongRunningStages.run` hands events to (the engine)."""

    def process(self, event: Event, input: str = "", now_ns: int = 0) -> list[Chain]: ...
    def tick(self, time_ns: int, source: str, input: str = "", now_ns: int = 0) -> list[Chain]: ...
    def claimed(self, claim: Claim, input: str = "", now_ns: int = 0) -> list[Chain]: ...


class LongRunningStages:
    """Admits one event per long-running request (see the module docstring)."""

    def __init__(self, max_open: int = MAX_OPEN) -> None:
        self._max_open = max(max_open, 1)
        self._open: dict[str, None] = {}  # ids of requests passed on, oldest first
        self.folded = 0  # later (or earlier, decision-less) stages dropped as duplicates
        self.forgotten = 0  # open requests evicted to stay bounded

    def admit(self, event: Event) -> bool:
        """False when ``event`` is another stage of a request already passed on."""
        if event.source != K8S_AUDIT or not is_long_running(event):
            return True
        return self._admit(event.id, event.stage)  # one id for every responding stage

    def admit_claim(self, claim: Claim) -> bool:
        """:meth:`admit` of the Event ``claim`` stands for (its ``fold``: that Event's id
        when it is long-running, else ``""``)."""
        return not claim.fold or self._admit(claim.fold, claim.stage)

    def run(
        self, engine: Takes, items: Sequence[Incoming], start: int, input: str = "", now_ns: int = 0
    ) -> tuple[int, list[Chain]]:
        """``items[start:]`` into ``engine`` as the parsers made them — an Event, a
        time-only tick (``engine.tick``) or a claim (``engine.claimed``), another stage of
        a request already passed on left out (folded) — until one confirms chains: the
        index after it and its chains, or ``(len(items), [])``. The loop of the live
        correlator and of replay: it runs once per event, so the dispatch is written out
        here, no call per event (one cost ~4 % of a replay's CPU, 2e5 disordered stream)."""
        process, tick, claimed = engine.process, engine.tick, engine.claimed
        admit, admit_claim = self.admit, self.admit_claim
        for at in range(start, len(items)):
            item = items[at]
            if isinstance(item, Claim):
                if item.fold and not admit_claim(item):  # only long-running claims fold
                    continue
                found = claimed(item, input, now_ns)
            elif not item.id:
                found = tick(item.time_ns, item.source, input, now_ns)
            elif admit(item):
                found = process(item, input, now_ns)
            else:
                continue
            if found:
                return at + 1, found
        return len(items), []

    def _admit(self, key: str, stage: str) -> bool:
        if stage in RESPONDING:
            if key not in self._open:
                self._remember(key)
                return True
            del self._open[key]
        elif stage != RECEIVED:
            return True
        self.folded += 1
        return False

    def __len__(self) -> int:
        """Open long-running requests remembered."""
        return len(self._open)

    def snapshot(self) -> bytes:
        """The open requests' ids, oldest first (msgpack)."""
        return msgspec.msgpack.encode(list(self._open))

    def restore(self, data: bytes) -> None:
        """Take back what :meth:`snapshot` wrote (``msgspec.DecodeError`` if it is not)."""
        ids = msgspec.msgpack.decode(data, type=list[str])
        self._open = dict.fromkeys(ids[-self._max_open :])

    def _remember(self, key: str) -> None:
        opened = self._open
        opened[key] = None
        if len(opened) > self._max_open:
            del opened[next(iter(opened))]
            self.forgotten += 1
