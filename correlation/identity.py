"""Identity resolution: which pod an event belongs to, learned from events.

Three bindings, all bounded (oldest evicted first, counted) and serialisable:

* ``container id → pod``: Falco alerts from upstream rules often carry only
  ``container.id``; any alert carrying both teaches the binding. Container ids are
  not reused, but a binding only applies to events at most ``hold_ns`` before the
  first alert that taught it, so the answer does not depend on arrival order
  (the engine holds unresolved alerts for ``hold_ns`` of event time).
* ``IP → pod`` over time: IPs are reused, so each IP keeps a short list of
  ``(start_ns, pod)``; a lookup at time *t* takes the latest binding that started
  at or before *t* (or the first one, when *t* precedes them all).
* ``pod → IPs``: the reverse view, used to tell a pod's own address from a foreign one.

Falco alerts teach both (the pod's own ``actor.ips``); an audit request with a bound
token teaches ``IP → pod`` only while the pod has no known address and the IP is
free — a replayed stolen token must not be able to claim the victim's identity.
"""

from __future__ import annotations

from bisect import insort
from typing import Final

import msgspec

from correlation.event import FALCO, Event, Identity

PER_KEY: Final = 4  # bindings kept per IP and per pod
# What Resolver.resolve may fill in on an event that lacks it (nothing else changes).
FILLED_BY_RESOLVE: Final = frozenset({"actor.namespace", "actor.pod", "actor.pod_ref"})


class ResolverState(msgspec.Struct, array_like=True):
    """The resolver's bindings, as snapshotted."""

    containers: dict[str, tuple[str, str, int]] = {}  # id → (namespace, pod, first_ns)
    ips: dict[str, list[tuple[int, str]]] = {}  # ip → [(start_ns, "ns/pod")]
    pods: dict[str, list[tuple[int, str]]] = {}  # "ns/pod" → [(start_ns, ip)]


class Resolver:
    """Fills in the pod of events and answers "is this source IP the pod's own?"."""

    def __init__(self, max_bindings: int, hold_ns: int, state: ResolverState | None = None):
        self.max_bindings = max_bindings
        self.hold_ns = hold_ns
        self.state = state or ResolverState()
        self.evicted = 0

    @property
    def size(self) -> int:
        """Number of live bindings (containers + IPs)."""
        return len(self.state.containers) + len(self.state.ips)

    def container_pod(self, event: Event) -> tuple[str, str] | None:
        """``(namespace, pod)`` for the event's container when a binding applies."""
        hit = self.state.containers.get(event.actor.container_id)
        if hit is None or hit[2] > event.time_ns + self.hold_ns:
            return None
        return hit[0], hit[1]

    def resolve(self, event: Event) -> Event:
        """The event with its actor pod filled in when it was missing and is known."""
        actor = event.actor
        if actor.pod and actor.namespace:
            return event
        if event.source == FALCO and actor.container_id:
            hit = self.container_pod(event)
            if hit is not None:
                return _with_actor(
                    event, msgspec.structs.replace(actor, namespace=hit[0], pod=hit[1])
                )
            return event
        if actor.ips:
            owner = self.ip_owner(actor.ips[0], event.time_ns)
            if owner:
                ns, _, pod = owner.partition("/")
                if not actor.namespace or actor.namespace == ns:
                    return _with_actor(event, msgspec.structs.replace(actor, namespace=ns, pod=pod))
        return event

    def ip_owner(self, ip: str, time_ns: int) -> str:
        """The pod bound to ``ip`` at ``time_ns`` (``""`` when unknown)."""
        return _at(self.state.ips.get(ip), time_ns)

    def pod_ips(self, pod_ref: str, time_ns: int) -> set[str]:
        """Addresses bound to the pod at ``time_ns``."""
        return {
            ip
            for _, ip in self.state.pods.get(pod_ref, ())
            if _at(self.state.ips.get(ip), time_ns) == pod_ref
        }

    def source_ip_foreign(self, event: Event) -> bool:
        """True when the request came from an address that is not its actor pod's."""
        pod, ips = event.actor.pod_ref, event.actor.ips
        return bool(pod and ips) and self.foreign_ip(pod, ips[0], event.time_ns)

    def foreign_ip(self, pod_ref: str, ip: str, time_ns: int) -> bool:
        """Whether ``ip`` at ``time_ns`` is another pod's, or not one of ``pod_ref``'s
        known addresses (False when nothing is known of either)."""
        owner = self.ip_owner(ip, time_ns)
        if owner:
            return owner != pod_ref
        return bool(self.pod_ips(pod_ref, time_ns))

    def audit_teaches(self, pod_ref: str, ip: str, time_ns: int) -> bool:
        """Whether an audit request of ``pod_ref`` from ``ip`` binds that IP (see the
        module docstring): the pod has no known address and the IP no owner."""
        return bool(ip) and pod_ref not in self.state.pods and not self.ip_owner(ip, time_ns)

    def claim_matters(self, pod_ref: str, ip: str, time_ns: int, foreign: bool) -> bool:
        """``audit_teaches(pod_ref, ip, time_ns) or (foreign and foreign_ip(pod_ref, ip,
        time_ns))`` for a non-empty ``ip``: the engine's test of a claim, which runs for
        ~40 % of a cluster's audit lines, with one look at the address's bindings."""
        owner = _at(self.state.ips.get(ip), time_ns)
        if owner:  # then it teaches nothing; foreign when it is another pod's
            return foreign and owner != pod_ref
        if pod_ref not in self.state.pods:
            return True  # the pod has no address yet and this one no owner: it teaches
        return foreign and bool(self.pod_ips(pod_ref, time_ns))

    def learn(self, event: Event) -> None:
        """Record the bindings this event teaches (see the module docstring)."""
        actor = event.actor
        if not actor.pod or not actor.namespace:
            return
        if event.source == FALCO:
            if actor.container_id:
                self._learn_container(actor, event.time_ns)
            for ip in actor.ips:
                self._bind(ip, actor.pod_ref, event.time_ns)
        elif actor.ips and self.audit_teaches(actor.pod_ref, actor.ips[0], event.time_ns):
            self._bind(actor.ips[0], actor.pod_ref, event.time_ns)

    def _learn_container(self, actor: Identity, time_ns: int) -> None:
        known = self.state.containers.get(actor.container_id)
        if known is None:
            self._make_room()
        elif known[2] <= time_ns:
            return
        # the earliest teacher wins, whatever order teachers arrive in
        self.state.containers[actor.container_id] = (actor.namespace, actor.pod, time_ns)

    def _bind(self, ip: str, pod_ref: str, time_ns: int) -> None:
        bindings = self.state.ips.get(ip)
        if bindings is None:
            self._make_room()
            bindings = self.state.ips[ip] = []
        if _at(bindings, time_ns) == pod_ref and bindings[0][0] <= time_ns:
            return
        _add(bindings, (time_ns, pod_ref))
        _add(self.state.pods.setdefault(pod_ref, []), (time_ns, ip))

    def _make_room(self) -> None:
        state = self.state
        while len(state.containers) + len(state.ips) >= self.max_bindings:
            # dicts keep insertion order: the first key is the oldest binding
            if len(state.containers) >= len(state.ips):
                del state.containers[next(iter(state.containers))]
            else:
                ip = next(iter(state.ips))
                for _, pod in state.ips.pop(ip):
                    state.pods.pop(pod, None)
            self.evicted += 1


def _at(bindings: list[tuple[int, str]] | None, time_ns: int) -> str:
    if not bindings:
        return ""
    owner = bindings[0][1]
    for start, pod in bindings:
        if start > time_ns:
            break
        owner = pod
    return owner


def _add(bindings: list[tuple[int, str]], item: tuple[int, str]) -> None:
    if item in bindings:
        return
    insort(bindings, item)
    if len(bindings) > PER_KEY:
        del bindings[0]


def _with_actor(event: Event, actor: Identity) -> Event:
    return msgspec.structs.replace(event, actor=actor)
