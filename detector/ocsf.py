"""Chain record v1 → OCSF 1.3.0 Detection Finding (class_uid 2004, category Findings).

:func:`to_ocsf` is a pure function of the record: the same chain always maps to the same
finding, so consumers that deduplicate on ``finding_info.uid`` (the chain id) keep working
across replays and retries. A sink that is configured for OCSF calls it just before
delivery; the chain record itself stays the canonical, versioned contract.

Attribute choices (see ``docs/ocsf.md`` for the full table):

* required by the class: ``activity_id`` 1 (Create), ``category_uid`` 2, ``class_uid``
  2004, ``type_uid`` 200401, ``severity_id``, ``time``, ``metadata`` (``version``,
  ``product.vendor_name``, ``product.name``) and ``finding_info`` (``uid``, ``title``);
* ``time`` is the chain's ``last_seen`` (event time of the completing step, in ms), not
  the wall clock, which keeps the mapping deterministic;
* evidence steps become ``evidences[].data`` and ``finding_info.related_events``; pods,
  service accounts and nodes become ``resources``; ATT&CK ids become
  ``finding_info.attacks``; what OCSF has no slot for (incident path, IPs, cluster)
  goes to ``unmapped``;
* ``observables`` name every pod, service account, node and IP of the chain, so a SIEM
  can pivot on them;
* ``confidence`` follows the independent sources that saw the chain
  (:func:`confidence`): the API server's audit log and Falco are independent of each
  other, and Falco sensors on different nodes are independent of each other.

Exceptions::

    OcsfMappingError (ValueError)   the record is not a chain record v1
"""

from __future__ import annotations

from datetime import datetime
from importlib import metadata as _pkg_metadata
from typing import Any, Final

from correlation.chain import SCHEMA_V1

OCSF_VERSION: Final = "1.3.0"
CLASS_UID: Final = 2004
CATEGORY_UID: Final = 2
ACTIVITY_CREATE: Final = 1
TYPE_UID: Final = CLASS_UID * 100 + ACTIVITY_CREATE
PRODUCT_NAME: Final = "lateral-chain-detector"

# OCSF severity_id: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical.
_SEVERITY: Final = {
    "info": (1, "Informational"),
    "low": (2, "Low"),
    "medium": (3, "Medium"),
    "high": (4, "High"),
    "critical": (5, "Critical"),
}
_RESOURCE_KINDS: Final = (
    ("pods", "Kubernetes Pod"),
    ("service_accounts", "Kubernetes ServiceAccount"),
    ("nodes", "Kubernetes Node"),
)
_CONFIDENCE: Final = {1: ("Low", 30), 2: ("Medium", 60), 3: ("High", 90)}
# entity kind -> observable (name = where the value sits in the finding, OCSF type id)
_OBSERVABLES: Final = (
    ("pods", "resources.uid", 10, "Resource UID"),
    ("service_accounts", "resources.uid", 4, "User Name"),
    ("nodes", "resources.name", 1, "Hostname"),
    ("ips", "unmapped.ips", 2, "IP Address"),
)
_REQUIRED: Final = (
    *("schema", "id", "incident", "rule", "title", "severity", "techniques"),
    *("first_seen", "last_seen", "entities", "path", "steps"),
)


class OcsfMappingError(ValueError):
    """The input is not a chain record v1; the message names the offending field."""


def to_ocsf(record: dict[str, Any]) -> dict[str, Any]:
    """Map one chain record v1 to an OCSF Detection Finding (a JSON-ready dict)."""
    _check(record)
    severity_id, severity = _SEVERITY[record["severity"]]
    first_ms, last_ms = _millis(record, "first_seen"), _millis(record, "last_seen")
    return {
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": TYPE_UID,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id,
        "severity": severity,
        "time": last_ms,
        "start_time": first_ms,
        "end_time": last_ms,
        "status_id": 1,
        "status": "New",
        **confidence(record),
        "message": _message(record),
        "metadata": _metadata(record),
        "finding_info": _finding_info(record, first_ms, last_ms),
        "resources": _resources(record["entities"]),
        "observables": _observables(record["entities"]),
        "evidences": [{"data": dict(step)} for step in record["steps"]],
        "unmapped": _unmapped(record),
    }


def _unmapped(record: dict[str, Any]) -> dict[str, Any]:
    unmapped = {
        "schema": record["schema"],
        "incident": record["incident"],
        "path": list(record["path"]),
        "ips": list(record["entities"].get("ips", [])),
        "namespaces": list(record["entities"].get("namespaces", [])),
    }
    if record.get("cluster"):
        unmapped["cluster"] = record["cluster"]
    return unmapped


def confidence(record: dict[str, Any]) -> dict[str, Any]:
    """``confidence_id``/``confidence``/``confidence_score`` from the independent sources.

    ======================================================  ==========  =====
    evidence                                                confidence  score
    ======================================================  ==========  =====
    audit log and Falco (two kinds of source)               3 High      90
    Falco only, seen on two or more nodes (two sensors)     2 Medium    60
    one source: Falco on one node, or only the audit log    1 Low       30
    ======================================================  ==========  =====
    """
    kinds = {str(step.get("source", "")) for step in record["steps"]}
    sensors = len(record["entities"].get("nodes", [])) if kinds == {"falco"} else 1
    level = 3 if len(kinds) > 1 else 2 if sensors > 1 else 1
    return {
        "confidence_id": level,
        "confidence": _CONFIDENCE[level][0],
        "confidence_score": _CONFIDENCE[level][1],
    }


def _observables(entities: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": name, "type_id": type_id, "type": caption, "value": str(value)}
        for key, name, type_id, caption in _OBSERVABLES
        for value in entities.get(key, [])
    ]


def _check(record: object) -> None:
    if not isinstance(record, dict):
        raise OcsfMappingError(f"expected a chain record dict, got {type(record).__name__}")
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise OcsfMappingError(f"chain record is missing {', '.join(missing)}")
    if record["schema"] != SCHEMA_V1:
        raise OcsfMappingError(f"unsupported schema {record['schema']!r}, need {SCHEMA_V1!r}")
    if record["severity"] not in _SEVERITY:
        raise OcsfMappingError(f"unknown severity {record['severity']!r}")
    if not isinstance(record["entities"], dict):
        raise OcsfMappingError("entities must be an object")
    if not isinstance(record["steps"], list) or not record["steps"]:
        raise OcsfMappingError("steps must be a non-empty list")
    if not all(isinstance(step, dict) for step in record["steps"]):
        raise OcsfMappingError("every step must be an object")


def _millis(record: dict[str, Any], key: str) -> int:
    """RFC 3339 (``...Z``) → ms since the epoch, OCSF's ``timestamp_t``."""
    value = record[key]
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise OcsfMappingError(f"{key} is not an RFC 3339 time: {value!r}") from exc
    if moment.tzinfo is None:
        raise OcsfMappingError(f"{key} has no UTC offset: {value!r}")
    return int(moment.timestamp() * 1000)


def _message(record: dict[str, Any]) -> str:
    path = " → ".join(record["path"])
    where = f" in cluster {record['cluster']}" if record.get("cluster") else ""
    return f"{record['title']} ({path}){where}" if path else f"{record['title']}{where}"


def _metadata(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": OCSF_VERSION,
        "product": {
            "name": PRODUCT_NAME,
            "vendor_name": PRODUCT_NAME,
            "version": _product_version(),
        },
        "uid": record["id"],
        # Chains stitched into one incident share it; SIEMs group on correlation_uid.
        "correlation_uid": record["incident"],
        "log_name": record["schema"],
    }


def _product_version() -> str:
    try:
        return _pkg_metadata.version(PRODUCT_NAME)
    except _pkg_metadata.PackageNotFoundError:
        return "0.0.0"


def _finding_info(record: dict[str, Any], first_ms: int, last_ms: int) -> dict[str, Any]:
    steps = record["steps"]
    return {
        "uid": record["id"],
        "title": record["title"],
        "desc": "; ".join(str(step.get("summary", "")) for step in steps),
        "types": ["Lateral Movement", record["rule"]],
        "analytic": {"name": record["rule"], "uid": record["rule"], "type_id": 1, "type": "Rule"},
        "attacks": [_attack(t) for t in record["techniques"]],
        "first_seen_time": first_ms,
        "last_seen_time": last_ms,
        **({"src_url": record["url"]} if record.get("url") else {}),
        "data_sources": sorted({str(step.get("source", "")) for step in steps}),
        "related_events": [_related(step) for step in steps],
    }


def _attack(technique: str) -> dict[str, Any]:
    """``T1552.005`` → technique T1552 + sub-technique T1552.005 (OCSF ≥ 1.2 shape)."""
    parent, _, _sub = technique.partition(".")
    attack: dict[str, Any] = {"technique": {"uid": parent}}
    if _sub:
        attack["sub_technique"] = {"uid": technique}
    return attack


def _related(step: dict[str, Any]) -> dict[str, Any]:
    return {
        "uid": str(step.get("event_id", "")),
        "product_uid": str(step.get("source", "")),
        "type_name": str(step.get("step", "")),
    }


def _resources(entities: dict[str, Any]) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    for key, kind in _RESOURCE_KINDS:
        for ref in entities.get(key, []):
            resources.append(_resource(kind, str(ref)))
    return resources


def _resource(kind: str, ref: str) -> dict[str, Any]:
    # Pods are "ns/name", service accounts "ns:name", nodes a bare name.
    for separator in ("/", ":"):
        namespace, found, name = ref.partition(separator)
        if found and kind != "Kubernetes Node":
            return {"type": kind, "uid": ref, "name": name, "namespace": namespace}
    return {"type": kind, "uid": ref, "name": ref}
