"""Stitch chains that share an entity into incidents (P → Q → R).

Entities that stitch are pods (``ns/name``) and service accounts (``ns:name``):
a recon chain in pod P and an exec chain whose actor is P's service account and
whose target is Q become one incident with path ``P → Q``. The incident id is
``"inc-"`` + 20 hex of the first chain that opened it; when a chain bridges two
incidents they merge into the older one. Incidents idle for ``window_ns`` of event
time are forgotten, and at most ``max_entities`` entities are tracked.

Also here: the entity lists a chain record carries.
"""

from __future__ import annotations

from hashlib import blake2b

import msgspec

from correlation.event import IMPERSONATED_BY, K8S_AUDIT, Event, field_text


def short_hash(prefix: str, *parts: str) -> str:
    """``prefix`` + 20 hex chars of a hash over ``parts`` (stable across runs)."""
    digest = blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()
    return prefix + digest


def entities_of(events: list[Event]) -> dict[str, tuple[str, ...]]:
    """The chain record's entities: pods, service_accounts, namespaces, nodes, ips.

    ``impersonators`` (the real users behind impersonated requests) is added only when
    there is one, so records of chains without impersonation keep their shape.
    """
    found: dict[str, set[str]] = {
        k: set() for k in ("pods", "service_accounts", "namespaces", "nodes", "ips")
    }
    impersonators: set[str] = set()
    for event in events:
        actor, target = event.actor, event.target
        _add(found["pods"], actor.pod_ref)
        if event.source != K8S_AUDIT or event.resource == "pods":
            _add(found["pods"], target.pod_ref)
        _add(found["service_accounts"], actor.service_account)
        _add(found["namespaces"], actor.namespace, target.namespace)
        _add(found["nodes"], actor.node, target.node)
        _add(found["ips"], *actor.ips, *target.ips)
        _add(impersonators, field_text(event.fields.get(IMPERSONATED_BY, "")))
    if impersonators:
        found["impersonators"] = impersonators
    return {k: tuple(sorted(v)) for k, v in found.items()}


def pods_in_order(events: list[Event]) -> list[str]:
    """Pods of the evidence in order of first appearance (actor before target)."""
    order: list[str] = []
    for event in sorted(events, key=lambda e: (e.time_ns, e.id)):
        for ref in (event.actor.pod_ref, event.target.pod_ref if event.resource == "pods" else ""):
            if ref and ref not in order:
                order.append(ref)
    return order


def _add(bucket: set[str], *values: str) -> None:
    bucket.update(v for v in values if v)


class Incident(msgspec.Struct, array_like=True):
    """One stitched incident: its id, the path of pods, when it was last extended."""

    id: str
    first_ns: int
    last_ns: int
    path: list[str]
    entities: list[str]


class IncidentState(msgspec.Struct, array_like=True):
    """Live incidents, as snapshotted."""

    incidents: dict[str, Incident] = {}
    by_entity: dict[str, str] = {}


class Incidents:
    """Assigns each new chain to an incident and returns the incident's path."""

    def __init__(self, window_ns: int, max_entities: int, state: IncidentState | None = None):
        self.window_ns = window_ns
        self.max_entities = max_entities
        self.state = state or IncidentState()
        self.evicted = 0

    def stitch(
        self, chain_id: str, events: list[Event], entities: dict[str, tuple[str, ...]]
    ) -> Incident:
        """The incident the chain joins (created or merged as needed)."""
        times = [e.time_ns for e in events]
        return self.join(chain_id, entities, times, pods_in_order(events))

    def join(
        self,
        chain_id: str,
        entities: dict[str, tuple[str, ...]],
        times: list[int],
        pods: list[str],
    ) -> Incident:
        """:meth:`stitch` from what a chain record carries: its entities, its evidence
        times and its pods in order (the downstream stitcher of ``detector worker``)."""
        keys = [*entities.get("pods", ()), *entities.get("service_accounts", ())]
        found = {self.state.by_entity[k] for k in keys if k in self.state.by_entity}
        live = sorted(
            (self.state.incidents[i] for i in found if i in self.state.incidents),
            key=lambda i: (i.first_ns, i.id),
        )
        if live:
            incident = live[0]
            for other in live[1:]:
                self._merge(incident, other)
        else:
            incident = Incident(short_hash("inc-", chain_id), min(times), max(times), [], [])
            self.state.incidents[incident.id] = incident
        incident.first_ns = min(incident.first_ns, *times)
        incident.last_ns = max(incident.last_ns, *times)
        for pod in pods:
            if pod not in incident.path:
                incident.path.append(pod)
        for key in keys:
            if key not in incident.entities:
                incident.entities.append(key)
            self.state.by_entity[key] = incident.id
        self._make_room()
        return incident

    def _merge(self, into: Incident, other: Incident) -> None:
        into.path.extend(p for p in other.path if p not in into.path)
        into.entities.extend(e for e in other.entities if e not in into.entities)
        into.first_ns = min(into.first_ns, other.first_ns)
        into.last_ns = max(into.last_ns, other.last_ns)
        for key in other.entities:
            self.state.by_entity[key] = into.id
        self.state.incidents.pop(other.id, None)

    def expire(self, settled_ns: int) -> None:
        """Forget incidents not extended within ``window_ns`` before ``settled_ns``."""
        stale = [
            i for i in self.state.incidents.values() if i.last_ns + self.window_ns < settled_ns
        ]
        for incident in stale:
            self._drop(incident)

    def _drop(self, incident: Incident) -> None:
        self.state.incidents.pop(incident.id, None)
        for key in incident.entities:
            if self.state.by_entity.get(key) == incident.id:
                del self.state.by_entity[key]

    def _make_room(self) -> None:
        while len(self.state.by_entity) > self.max_entities and self.state.incidents:
            oldest = min(self.state.incidents.values(), key=lambda i: i.last_ns)
            self._drop(oldest)
            self.evicted += 1
