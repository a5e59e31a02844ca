"""What an analyst sees of an incident: its summary, its attack-path graph, its timeline.

One pure function of the stored rows (:class:`~detector.incidents.store.IncidentRows`)
feeds the page (``/api/incidents/{id}``), the replay report and ``detector show``, so
the browser and the terminal show the same path and the same evidence.

The graph's vertices are exactly the incident's entities (the union of its chain
records' ``pods``, ``service_accounts``, ``namespaces`` and ``nodes``). Edges::

    step        one per (chain, step): actor → target, labelled technique + time
                  actor:  audit: the service account, else the requesting pod
                          Falco: the pod the process ran in, else its node
                  target: a pod acted on (exec, create) or, for audit, the namespace
                          requested; Falco: the node it ran on; else the actor itself
    member      pod → namespace, service account → namespace, pod → node,
                pod → service account (an audit request made with the pod's bound token)

Timeline rows are the distinct evidence events (by event id), in event-time order, each
with the chain steps it satisfied and the normalized event itself (the raw view).
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from correlation.chain import rfc3339, severity_rank
from correlation.event import K8S_AUDIT, Event, describe
from correlation.incidents import entities_of
from detector.incidents.store import IncidentRows, StoredEvidence

_TECHNIQUE: Final = re.compile(r"^T\d{4}(\.\d{3})?$")
# entity kind in a chain record -> vertex kind on the graph
VERTEX_KINDS: Final = {
    "pods": "pod",
    "service_accounts": "service_account",
    "namespaces": "namespace",
    "nodes": "node",
}


def vertex_id(kind: str, value: str) -> str:
    return f"{kind}:{value}"


def summary(rows: IncidentRows, url: str = "") -> dict[str, Any]:
    """The list view of one incident (a JSON-ready dict)."""
    records = rows.records
    worst = max(records, key=lambda r: (severity_rank(r["severity"]), -records.index(r)))
    entities = {
        kind: sorted({v for r in records for v in r["entities"].get(kind, [])})
        for kind in VERTEX_KINDS
    }
    longest = max(records, key=lambda r: (len(r.get("path", [])), r["last_seen"]))
    found = {
        "id": rows.id,
        "cluster": next((r["cluster"] for r in records if r.get("cluster")), ""),
        "severity": worst["severity"],
        "title": worst["title"],
        "rules": list(dict.fromkeys(r["rule"] for r in records)),
        "chains": len(records),
        "first_seen": min(r["first_seen"] for r in records),
        "last_seen": max(r["last_seen"] for r in records),
        "path": list(longest.get("path", [])),
        "denied": sum(1 for e in _distinct(rows.evidence) if denied(e.event)),
        **entities,
    }
    if url:
        found["url"] = url
    return found


def detail(rows: IncidentRows, url: str = "") -> dict[str, Any]:
    """Summary, graph, timeline and the chain records of one incident."""
    return {
        **summary(rows, url),
        "graph": graph(rows),
        "timeline": timeline(rows),
        "records": rows.records,
    }


def denied(event: Event) -> bool:
    """An API request the server refused (authorization or any other 4xx/5xx)."""
    return event.source == K8S_AUDIT and (event.decision == "forbid" or event.response_code >= 400)


def graph(rows: IncidentRows) -> dict[str, list[dict[str, Any]]]:
    """Vertices (the incident's entities) and edges (chain steps, memberships)."""
    records = {r["id"]: r for r in rows.records}
    vertices = {
        vertex_id(kind, value): _vertex(kind, value)
        for record in rows.records
        for key, kind in VERTEX_KINDS.items()
        for value in record["entities"].get(key, [])
    }
    edges: dict[str, dict[str, Any]] = {}
    for n, evidence in enumerate(rows.evidence):
        ends = _step_ends(evidence.event, vertices)
        if ends is not None:
            edge = _step_edge(n, evidence, records[evidence.chain], *ends)
            edges[edge["id"]] = edge
        for source, target, label in _memberships(evidence.event):
            if source in vertices and target in vertices and source != target:
                key = f"member:{source}>{target}"
                edges.setdefault(
                    key,
                    {
                        "id": key,
                        "source": source,
                        "target": target,
                        "kind": "member",
                        "label": label,
                    },
                )
    return {
        "vertices": sorted(vertices.values(), key=lambda v: v["id"]),
        "edges": list(edges.values()),
    }


def _vertex(kind: str, value: str) -> dict[str, Any]:
    separator = {"pod": "/", "service_account": ":"}.get(kind, "")
    namespace, _, name = value.rpartition(separator) if separator else ("", "", value)
    return {
        "id": vertex_id(kind, value),
        "kind": kind,
        "value": value,
        "label": name,
        "namespace": namespace,
    }


def _step_ends(event: Event, vertices: dict[str, Any]) -> tuple[str, str] | None:
    """(actor vertex, target vertex) of a step, each one of ``vertices``; None if neither is."""
    actor, target = event.actor, event.target
    if event.source == K8S_AUDIT:
        actors = [
            vertex_id("service_account", actor.service_account),
            vertex_id("pod", actor.pod_ref),
        ]
        targets = [
            vertex_id("pod", target.pod_ref) if event.resource == "pods" else "",
            vertex_id("namespace", target.namespace),
        ]
    else:
        actors = [vertex_id("pod", actor.pod_ref), vertex_id("node", actor.node)]
        targets = [vertex_id("pod", target.pod_ref), vertex_id("node", actor.node)]
    source = next((v for v in actors if v in vertices), None)
    sink = next((v for v in targets if v in vertices), None)
    if source is None and sink is None:
        return None
    return source or sink or "", sink or source or ""


def _step_edge(
    n: int, evidence: StoredEvidence, record: dict[str, Any], source: str, target: str
) -> dict[str, Any]:
    event = evidence.event
    techniques = techniques_of(event, record["techniques"])
    technique = ", ".join(techniques)
    clock = rfc3339(event.time_ns)[11:19]
    # the drawn label is short (edges are close together); the full list is in technique
    first = f"{techniques[0]} +{len(techniques) - 1}" if len(techniques) > 1 else technique
    return {
        "id": f"step:{n}",
        "source": source,
        "target": target,
        "kind": "step",
        "label": f"{first} · {clock}Z" if first else f"{clock}Z",
        "technique": technique,
        "time": rfc3339(event.time_ns),
        "step": evidence.step,
        "rule": record["rule"],
        "chain": evidence.chain,
        "event_id": event.id,
        "denied": denied(event),
    }


def techniques_of(event: Event, chain_techniques: list[str]) -> list[str]:
    """The ATT&CK ids a step stands for: its own Falco tags among the chain's, else the
    chain's (an audit event carries no tags)."""
    own = [tag for tag in event.tags if _TECHNIQUE.match(tag)]
    return [t for t in own if t in chain_techniques] or own or list(chain_techniques)


def _memberships(event: Event) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for who in (event.actor, event.target):
        if who.pod_ref:
            pod = vertex_id("pod", who.pod_ref)
            found.append((pod, vertex_id("namespace", who.namespace), "in"))
            if who.node:
                found.append((pod, vertex_id("node", who.node), "on"))
            if who.service_account:
                found.append((pod, vertex_id("service_account", who.service_account), "runs as"))
        if who.service_account:
            home = who.service_account.partition(":")[0]
            found.append(
                (
                    vertex_id("service_account", who.service_account),
                    vertex_id("namespace", home),
                    "in",
                )
            )
    return found


def timeline(rows: IncidentRows) -> list[dict[str, Any]]:
    """One row per distinct evidence event, in event-time order."""
    uses: dict[str, list[dict[str, str]]] = {}
    records = {r["id"]: r for r in rows.records}
    for evidence in rows.evidence:
        uses.setdefault(evidence.event_id, []).append(
            {
                "chain": evidence.chain,
                "rule": records[evidence.chain]["rule"],
                "step": evidence.step,
            }
        )
    return [
        {
            "event_id": e.event_id,
            "time": rfc3339(e.time_ns),
            "source": e.event.source,
            "summary": describe(e.event),
            "denied": denied(e.event),
            "steps": uses[e.event_id],
            "entities": {k: list(v) for k, v in entities_of([e.event]).items() if v},
            "raw": msgspec.to_builtins(e.event),
        }
        for e in _distinct(rows.evidence)
    ]


def _distinct(evidence: list[StoredEvidence]) -> list[StoredEvidence]:
    seen: dict[str, StoredEvidence] = {}
    for row in evidence:
        seen.setdefault(row.event_id, row)
    return sorted(seen.values(), key=lambda e: (e.time_ns, e.event_id))
