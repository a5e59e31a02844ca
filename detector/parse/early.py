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
  subresource; Falco rule and tags) and the identity fields the steps need;
* the resolver may learn from it: an audit request with its pod claim, a Falco alert
  with a pod, container id or address (the resolver learns only from events that name
  their pod, or a container it can resolve: ``correlation/identity.py``);
* the global allowlist may match its actor (the event then counts as suppressed);
* anything unusual: over-long parts (normalization would cut them), impersonation.

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

from typing import Final

from correlation.event import FALCO, K8S_AUDIT, Event, time_only
from correlation.index import MEMO_MAX
from correlation.interest import BY_IP, Interest
from detector.parse.audit import (
    AuditEvent,
    ObjectRef,
    normalize_audit,
    service_account_of,
    tick_time_ns,
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

_NO_REF: Final = ObjectRef()
# identity fields an audit event's parts tell exactly (others are "not known to be empty")
_AUDIT_KNOWN: Final = ("actor.namespace", "actor.pod", "actor.pod_ref", "actor.service_account",
                       "actor.user")  # fmt: skip


AuditKey = tuple[str, str, str, str, bool]  # verb, resource, subresource, username, has IPs


class EarlyReject:
    """``audit(event)`` / ``falco(alert)``: the normalized Event, or a time-only tick."""

    def __init__(self, interest: Interest) -> None:
        self._interest = interest
        asks = interest.asks
        self._audit_slots = tuple(
            (_AUDIT_KNOWN.index(name) if name in _AUDIT_KNOWN else -1) for name in asks
        )
        self._falco_empty = tuple(
            name in ("actor.namespace", "actor.pod", "actor.pod_ref", "actor.service_account")
            for name in asks
        )
        # the decision for an audit event without a pod claim depends only on these parts
        self._decided: dict[AuditKey, bool] = {}
        # and for a Falco alert without an actor, on its rule and tags as decoded
        self._falco_decided: dict[tuple[str, tuple[str, ...]], bool] = {}
        self.ticks = 0  # events passed on as time-only ticks

    def audit(self, event: AuditEvent) -> Event:
        user = event.user
        if user is None or event.impersonatedUser is not None:
            return normalize_audit(event)
        claim = user.extra.pod_name
        if claim and claim[0]:
            return normalize_audit(event)  # a pod's own request: the resolver may learn it
        ips = any(event.sourceIPs)
        ref = event.objectRef or _NO_REF
        key = (event.verb, ref.resource, ref.subresource, user.username, ips)
        wanted = self._decided.get(key)
        if wanted is None:
            wanted = self._audit_wanted(key)
            if len(self._decided) >= MEMO_MAX:
                self._decided.clear()  # bounded; the working set refills within a few events
            self._decided[key] = wanted
        if wanted:
            return normalize_audit(event)
        self.ticks += 1
        return time_only(tick_time_ns(event), K8S_AUDIT)

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
