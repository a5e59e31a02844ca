"""The early reject: events no loaded rule or identity binding can use skip normalization.

~97 % of a cluster's input is noise, and most of it is noise no rule step can want —
a kubelet renewing its lease, a controller updating an EndpointSlice. Normalizing it
fully (fields, target, actor, id) costs more than everything the engine then does with
it. :class:`EarlyReject` sits where a decoded document becomes an :class:`Event`: it
reads the few parts the engine's index keys on, asks :class:`~correlation.interest.Interest`
(derived from the rules and allowlist the engine runs with) whether any step, binding
or allowlist entry could use the event, and if none can, passes it on as a *time-only
tick* (:func:`~correlation.event.time_only`) — its event time and source, which the
engine needs for its watermark and counts. Everything else is normalized as before.

What makes an event not rejectable (each checked exactly as normalization would see it):

* a step may want it: ``Interest.wants`` on the index's discriminator (verb, resource,
  subresource; Falco rule and tags) and the identity fields the steps need and join on
  (a step joining on the actor's pod cannot keep an event that has none and cannot get
  one: every built-in step, so a host's Falco alert is a tick under the built-in rules);
* the resolver may learn from it: an audit request with its pod claim, a Falco alert
  with a pod, container id or address (the resolver learns only from events that name
  their pod, or a container it can resolve: ``correlation/identity.py``);
* the global allowlist may match its actor (the event then counts as suppressed);
* anything unusual: over-long parts (normalization would cut them), impersonation.

A request made with a pod's token is different: besides the steps that may want it as
above, a step that needs a foreign source IP may, and the resolver may learn its IP, and
both depend on the bindings the engine has learned by the time it is processed. With
:meth:`EarlyReject.audit_or_claim`, such a request that only foreign-IP steps may want
(a pod calling the API with its own token, ~40 % of a cluster's audit traffic) is passed
on as a :class:`~correlation.event.Claim` — its time, pod, first source IP and its JSON
— and :meth:`correlation.engine.Engine.claimed` normalizes it only if
it matters then. :meth:`EarlyReject.audit` normalizes them all, for callers that pass
Events only.

The checks every event must pass run for a tick too, so a bad event is still refused
with the same error: for an audit event its API version, auditID and timestamps; for a
Falco alert :func:`~detector.parse.falco.checked` (rule, priority, sizes, time). A Falco
alert's actor is read off its ``output_fields`` by the same function normalization uses
(:func:`~detector.parse.falco.actor_of`); only an alert without one (no pod, container,
address, image or namespace) whose rule and tags no step wants becomes a tick, before
its fields are redacted, its id hashed or its summary written.

Rules change → the :class:`Interest` built from them changes → so does what is rejected.
"""

from __future__ import annotations

from functools import partial
from typing import Final, Literal, Protocol, TypeVar, overload

import msgspec

from correlation.event import FALCO, K8S_AUDIT, Claim, Event, time_only
from correlation.index import MEMO_MAX
from correlation.interest import BY_IP, Interest
from detector.parse.audit import (
    AuditEvent,
    ObjectRef,
    actor_ips,
    audit_event_id,
    audit_json,
    audit_time_ns,
    normalize_audit,
    reads_query,
    service_account_of,
)
from detector.parse.falco import (
    FalcoAlert,
    actor_of,
    build_falco,
    check_lists,
    checked,
    rule_and_tags,
)
from detector.parse.limits import MAX_FIELD_CHARS
from detector.parse.long_running import LATER_STAGES, long_running
from detector.parse.timestamps import rfc3339_ns

_NO_REF: Final = ObjectRef()
# identity fields an audit event's parts tell exactly (others are "not known to be empty")
_AUDIT_KNOWN: Final = ("actor.namespace", "actor.pod", "actor.pod_ref", "actor.service_account",
                       "actor.user")  # fmt: skip


AuditKey = tuple[str, str, str, str, bool]  # verb, resource, subresource, username, has IPs
ClaimKey = tuple[str, str, str, str]  # verb, resource, subresource, username
# namespace, service account, (claimable, foreign) with the target in that namespace and
# with any other, and whether it is long-running
ClaimPlan = tuple[str, str, tuple[bool, bool], tuple[bool, bool], bool]
_NORMALIZE: Final = (False, False)
# the plans of an audit event without a pod claim (compared by identity)
_NORMALIZE_IT: Final = "normalize"
_TICK: Final = "tick"
_TICK_LATER_STAGE: Final = "tick, a later stage at its own time"


E_co = TypeVar("E_co", covariant=True)
Json = bytes | msgspec.Raw


class Converter(Protocol[E_co]):
    """Where the parsers turn a decoded document into what the engine takes: an
    :class:`EarlyReject` (Events and ticks) or its :attr:`EarlyReject.claiming` view."""

    def audit(self, event: AuditEvent, data: Json) -> E_co:
        """``event`` decoded from ``data`` (its JSON: a line, an EventList item)."""
        ...

    def falco(self, alert: FalcoAlert) -> E_co: ...

    @property
    def events(self) -> Converter[Event]:
        """The same decisions making Events only (no claims)."""
        ...


class EarlyReject:
    """``audit(event)`` / ``falco(alert)``: the normalized Event, or a time-only tick."""

    def __init__(self, interest: Interest) -> None:
        self._interest = interest
        asks = interest.asks
        self._audit_slots = tuple(
            (_AUDIT_KNOWN.index(name) if name in _AUDIT_KNOWN else -1) for name in asks
        )
        # with a pod claim and a service account, every identity part it knows is set
        self._claim_empty = (False,) * len(asks)
        self._falco_empty = tuple(
            name in ("actor.namespace", "actor.pod", "actor.pod_ref", "actor.service_account")
            for name in asks
        )
        # the decision for an audit event without a pod claim depends only on these parts
        self._decided: dict[AuditKey, str] = {}
        # and for a Falco alert without an actor, on its rule and tags as decoded
        self._falco_decided: dict[tuple[str, tuple[str, ...]], bool] = {}
        self._claim_plans: dict[ClaimKey, ClaimPlan] = {}
        self.ticks = 0  # events passed on as time-only ticks
        self.claims = 0  # pod-token requests passed on as claims (audit_or_claim)
        self.claiming = Claiming(self)
        """This early reject for a consumer that hands claims to ``Engine.claimed``."""

    @property
    def events(self) -> EarlyReject:
        """Itself: its decisions make Events and ticks only (claims: :attr:`claiming`)."""
        return self

    def audit(self, event: AuditEvent, data: Json = b"") -> Event:
        """The normalized Event or a tick (``data``, the JSON, is not needed here)."""
        return self.audit_or_claim(event, data, claims=False)

    @overload
    def audit_or_claim(self, event: AuditEvent, data: Json, claims: Literal[False]) -> Event: ...
    @overload
    def audit_or_claim(
        self, event: AuditEvent, data: Json, claims: bool = True
    ) -> Event | Claim: ...
    def audit_or_claim(self, event: AuditEvent, data: Json, claims: bool = True) -> Event | Claim:
        """:meth:`audit`, except that a request made with a pod's token that no step but a
        foreign-source-IP one may want comes back as a :class:`Claim` (the engine decides
        it against the bindings of the time it is processed: ``Engine.claimed``). The
        claim keeps ``data``, the JSON ``event`` was decoded from, to build its Event
        from: one object instead of the ~25 of the decoded struct, which are freed now
        (holding them for a batch cost more than normalizing).

        This runs for every audit line of a replay, so the tick's path is written out
        here: its decision memo, its checks and time (:func:`audit_time_ns`) and the
        tick itself, no further Python call."""
        user = event.user
        if user is None or event.impersonatedUser is not None:
            return normalize_audit(event)
        pods = user.extra.pod_name
        if pods and pods[0]:
            if claims:
                return self._claim(event, data, user.username, pods[0])
            return normalize_audit(event)  # a pod's own request: the resolver may learn it
        ref = event.objectRef or _NO_REF
        key = (event.verb, ref.resource, ref.subresource, user.username, any(event.sourceIPs))
        plan = self._decided.get(key)
        if plan is None:
            plan = self._audit_plan(key)
            if len(self._decided) >= MEMO_MAX:
                self._decided.clear()  # bounded; the working set refills within a few events
            self._decided[key] = plan
        if plan is _NORMALIZE_IT:
            return normalize_audit(event)
        time_ns = audit_time_ns(event)
        if plan is _TICK_LATER_STAGE and event.stage in LATER_STAGES and event.stageTimestamp:
            # a later stage of a long-running request was written at its stageTimestamp,
            # minutes after the requestReceivedTimestamp it carries: a tick at the event
            # time would be counted late although the input delivered it in order (a
            # normalized one is folded into its ResponseStarted instead: long_running.py)
            time_ns = max(time_ns, rfc3339_ns(event.stageTimestamp))
        self.ticks += 1
        return Event(time_ns, K8S_AUDIT, "")  # time_only(time_ns, K8S_AUDIT), inlined

    def _claim(self, event: AuditEvent, data: Json, username: str, pod: str) -> Event | Claim:
        time_ns = audit_time_ns(event)  # the checks every audit event must pass, first
        ref = event.objectRef or _NO_REF
        key = (event.verb, ref.resource, ref.subresource, username)
        plan = self._claim_plans.get(key)
        if plan is None:
            plan = self._claim_plan(key)
            if len(self._claim_plans) >= MEMO_MAX:
                self._claim_plans.clear()
            self._claim_plans[key] = plan
        namespace, account, same, other, folds = plan
        claimable, foreign = same if namespace and ref.namespace == namespace else other
        if not claimable or len(pod) > MAX_FIELD_CHARS:
            return normalize_audit(event)
        pod_ref = f"{namespace}/{pod}"
        if self._interest.allowlisted(namespace, "", account, pod_ref):
            return normalize_audit(event)  # the engine counts it suppressed
        ips = actor_ips(event.sourceIPs)
        self.claims += 1
        ip = ips[0] if ips else ""
        if folds:  # long-running: its stages fold by the Event's id (long_running.py)
            fold = audit_event_id(event)
            return Claim(time_ns, pod_ref, ip, foreign, data, audit_json, fold, event.stage)
        return Claim(time_ns, pod_ref, ip, foreign, data, audit_json)

    def _claim_plan(self, key: ClaimKey) -> ClaimPlan:
        """What to do with a pod-token request with these parts: its actor's namespace
        and service account, and ``(claimable, foreign)`` for a target in that namespace
        and for any other. Claimable: only foreign-IP steps may want it (``foreign``: some
        may) and nothing about it is unusual. Last: whether it is long-running."""
        verb, resource, subresource, username = key
        namespace, account = service_account_of(username)
        folds = long_running(verb, subresource)
        if (
            not namespace  # no pod_ref: the resolver may still fill the pod in from its IP
            or reads_query(resource, subresource)  # a bad query would fail its parse late
            or len(verb) + len(resource) + len(subresource) + len(username) > MAX_FIELD_CHARS
        ):
            return namespace, account, _NORMALIZE, _NORMALIZE, folds
        decide = partial(self._interest.claimed, verb, resource, subresource, self._claim_empty)
        same, other = decide(True), decide(False)
        return namespace, account, (not same[0], same[1]), (not other[0], other[1]), folds

    def _audit_plan(self, key: AuditKey) -> str:
        """What to do with an audit event with these parts and no pod claim: normalize it
        when a step or the allowlist may use it, else a tick (one of a long-running
        request, whose later stages tick at their own time, or any other)."""
        verb, resource, subresource, username, ips = key
        if self._audit_wanted(key):
            return _NORMALIZE_IT
        return _TICK_LATER_STAGE if long_running(verb, subresource) else _TICK

    def _audit_wanted(self, key: AuditKey) -> bool:
        """May a step or the allowlist use an audit event with these parts and no pod claim?"""
        verb, resource, subresource, username, ips = key
        if len(verb) + len(resource) + len(subresource) + len(username) > MAX_FIELD_CHARS:
            return True  # normalization would cut some of them: let it
        namespace, account = service_account_of(username)
        if self._interest.allowlisted(namespace, "", account, ""):
            return True
        parts = (namespace, "", "", account, username)  # in _AUDIT_KNOWN's order
        empty = tuple(slot >= 0 and not parts[slot] for slot in self._audit_slots)
        resolve_by = BY_IP if ips else ""
        return self._interest.wants(
            K8S_AUDIT, "", (), verb, resource, subresource, empty, resolve_by
        )

    def falco(self, alert: FalcoAlert) -> Event:
        time_ns, priority = checked(alert)  # a bad alert is refused as normalization would
        actor = actor_of(alert)
        if actor.namespace or actor.pod or actor.container_id or actor.ips or actor.image:
            # an actor: the resolver, held alerts or the allowlist may use it
            return build_falco(alert, time_ns, priority, actor)
        key = (alert.rule, tuple(alert.tags))
        wanted = self._falco_decided.get(key)
        if wanted is None:
            rule, tags = rule_and_tags(alert)
            wanted = self._interest.wants(FALCO, rule, tags, empty=self._falco_empty,
                                          resolve_by="")  # fmt: skip
            if len(self._falco_decided) >= MEMO_MAX:
                self._falco_decided.clear()
            self._falco_decided[key] = wanted
        if wanted:
            return build_falco(alert, time_ns, priority, actor)
        check_lists(alert.output_fields)  # what building it would have refused
        self.ticks += 1
        return time_only(time_ns, FALCO)


class Claiming:
    """:class:`EarlyReject` as a :class:`Converter` whose ``audit`` may return a Claim."""

    def __init__(self, early: EarlyReject) -> None:
        self.audit = early.audit_or_claim  # bound once: this runs for every line
        self.falco = early.falco
        self.events: EarlyReject = early
