"""The OCSF mapping: every attribute OCSF 1.3.0 requires for Detection Finding, right types.

The required set is taken from the OCSF 1.3.0 schema (base_event classification and
occurrence includes, ``finding``, ``detection_finding``, and the ``metadata``,
``product`` and ``finding_info`` objects); it is written out here because the schema
itself is not a dependency of the project.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from correlation.chain import Chain, ChainStep, to_record
from correlation.event import FALCO, K8S_AUDIT, Event, Identity
from detector.ocsf import OcsfMappingError, to_ocsf

SCHEMA = Path(__file__).resolve().parents[3] / "docs" / "schema" / "chain-v1.schema.json"
T0 = 1_795_000_000_000_000_000  # 2026-11-18, ns

# attribute path → the JSON type OCSF gives it (integer_t/long_t/timestamp_t → int).
REQUIRED: dict[str, type] = {
    "activity_id": int,
    "category_uid": int,
    "class_uid": int,
    "type_uid": int,
    "severity_id": int,
    "time": int,
    "metadata": dict,
    "metadata.version": str,
    "metadata.product": dict,
    "metadata.product.vendor_name": str,
    "finding_info": dict,
    "finding_info.uid": str,
    "finding_info.title": str,
}


def _recon_token_pivot() -> dict[str, Any]:
    """A recon-token-pivot chain as the engine would emit it, through the real to_record."""
    pod = Identity(namespace="shop", pod="web-7d9f", service_account="shop:web", ips=("10.1.2.3",))
    scan = Event(T0, FALCO, "falco-1a2b", "nmap in shop/web-7d9f", rule="Network tool", actor=pod)
    token = Event(T0 + 20 * 10**9, FALCO, "falco-3c4d", "token read", actor=pod)
    listing = Event(
        T0 + 95 * 10**9,
        K8S_AUDIT,
        "5f1e/ResponseComplete",
        "shop:web list secrets in kube-system (403)",
        verb="list",
        resource="secrets",
        actor=pod,
        target=Identity(namespace="kube-system"),
    )
    chain = Chain(
        id="lmc-0123456789abcdef0123",
        incident="inc-0123456789abcdef0123",
        rule="recon-token-pivot",
        title="Recon then token abuse across namespaces",
        severity="high",
        techniques=("T1046", "T1528", "T1552.005"),
        steps=(ChainStep("recon", scan), ChainStep("token", token), ChainStep("abuse", listing)),
        entities={
            "pods": ("shop/web-7d9f",),
            "service_accounts": ("shop:web",),
            "namespaces": ("shop", "kube-system"),
            "nodes": ("node-a",),
            "ips": ("10.1.2.3",),
        },
        path=("shop/web-7d9f",),
    )
    record = to_record(chain)
    jsonschema.validate(record, json.loads(SCHEMA.read_text()))
    return record


def _get(doc: dict[str, Any], dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        assert isinstance(value, dict) and part in value, f"missing {dotted}"
        value = value[part]
    return value


@pytest.mark.parametrize("path", sorted(REQUIRED))
def test_required_attribute_present_with_type(path: str) -> None:
    value = _get(to_ocsf(_recon_token_pivot()), path)
    expected = REQUIRED[path]
    assert isinstance(value, expected) and not isinstance(value, bool)
    if expected is str:
        assert value


def test_product_has_name_or_uid() -> None:
    product = to_ocsf(_recon_token_pivot())["metadata"]["product"]
    assert product.get("name") or product.get("uid")


def test_classification_is_detection_finding_create() -> None:
    finding = to_ocsf(_recon_token_pivot())
    assert (finding["class_uid"], finding["category_uid"], finding["activity_id"]) == (2004, 2, 1)
    assert finding["type_uid"] == finding["class_uid"] * 100 + finding["activity_id"]
    assert finding["metadata"]["version"] == "1.3.0"


def test_times_are_event_times_in_ms() -> None:
    finding = to_ocsf(_recon_token_pivot())
    assert finding["start_time"] == T0 // 10**6
    assert finding["time"] == finding["end_time"] == (T0 + 95 * 10**9) // 10**6
    assert finding["finding_info"]["first_seen_time"] == finding["start_time"]


def test_evidence_entities_and_attacks_carried_over() -> None:
    record = _recon_token_pivot()
    finding = to_ocsf(record)
    info = finding["finding_info"]
    assert info["uid"] == record["id"]
    assert finding["metadata"]["correlation_uid"] == record["incident"]
    assert [e["data"]["event_id"] for e in finding["evidences"]] == [
        s["event_id"] for s in record["steps"]
    ]
    assert [r["uid"] for r in info["related_events"]] == [s["event_id"] for s in record["steps"]]
    assert info["data_sources"] == ["falco", "k8s_audit"]
    assert {"technique": {"uid": "T1552"}, "sub_technique": {"uid": "T1552.005"}} in info["attacks"]
    pod = next(r for r in finding["resources"] if r["type"] == "Kubernetes Pod")
    assert (pod["namespace"], pod["name"]) == ("shop", "web-7d9f")
    account = next(r for r in finding["resources"] if r["type"] == "Kubernetes ServiceAccount")
    assert (account["namespace"], account["name"]) == ("shop", "web")
    assert finding["unmapped"]["ips"] == ["10.1.2.3"]


@pytest.mark.parametrize(
    ("severity", "severity_id"),
    [("info", 1), ("low", 2), ("medium", 3), ("high", 4), ("critical", 5)],
)
def test_severity_mapping(severity: str, severity_id: int) -> None:
    record = _recon_token_pivot() | {"severity": severity}
    assert to_ocsf(record)["severity_id"] == severity_id


def test_mapping_is_deterministic_and_json_ready() -> None:
    record = _recon_token_pivot()
    first, second = to_ocsf(record), to_ocsf(json.loads(json.dumps(record)))
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": "lateral-movement-chain/v2"}, "unsupported schema"),
        ({"severity": "urgent"}, "unknown severity"),
        ({"steps": []}, "steps must be a non-empty list"),
        ({"last_seen": "yesterday"}, "last_seen is not an RFC 3339 time"),
        ({"first_seen": "2026-11-18T00:00:00"}, "first_seen has no UTC offset"),
    ],
)
def test_bad_records_get_a_clear_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(OcsfMappingError, match=message):
        to_ocsf(_recon_token_pivot() | change)


def test_missing_fields_are_named() -> None:
    record = _recon_token_pivot()
    del record["incident"], record["steps"]
    with pytest.raises(OcsfMappingError, match="missing incident, steps"):
        to_ocsf(record)


def test_not_a_dict() -> None:
    with pytest.raises(OcsfMappingError, match="got list"):
        to_ocsf([])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def scenario() -> dict[str, dict[str, Any]]:
    from detector.incidents.service import annotate
    from tests.unit.incidents.scenario import chains

    url = "https://lmd.example/incidents/"
    return {c.rule: annotate(to_record(c), "prod-eu", url + c.incident) for c in chains()}


@pytest.mark.parametrize(
    ("rule", "level", "caption"),
    [
        ("recon-token-pivot", 3, "High"),  # Falco and the audit log
        ("exec-pivot", 3, "High"),
        ("imds-credential-theft", 1, "Low"),  # Falco on one node only
        ("internal-fanout", 1, "Low"),
    ],
)
def test_confidence_follows_independent_sources(
    scenario: dict[str, dict[str, Any]], rule: str, level: int, caption: str
) -> None:
    finding = to_ocsf(scenario[rule])
    assert (finding["confidence_id"], finding["confidence"]) == (level, caption)
    assert 0 <= finding["confidence_score"] <= 100


def test_falco_on_two_nodes_is_medium_and_one_audit_source_is_low() -> None:
    record = _recon_token_pivot()
    falco_only = {**record, "steps": [s for s in record["steps"] if s["source"] == "falco"]}
    assert to_ocsf(falco_only)["confidence"] == "Low"
    two_nodes = {**falco_only, "entities": {**record["entities"], "nodes": ["node-a", "node-b"]}}
    assert to_ocsf(two_nodes)["confidence"] == "Medium"
    audit_only = {**record, "steps": [s for s in record["steps"] if s["source"] == "k8s_audit"]}
    assert to_ocsf(audit_only)["confidence"] == "Low"


def test_observables_name_every_pod_account_node_and_ip(
    scenario: dict[str, dict[str, Any]],
) -> None:
    record = scenario["recon-token-pivot"]
    observables = to_ocsf(record)["observables"]
    by_type = {
        caption: sorted(o["value"] for o in observables if o["type"] == caption)
        for caption in ("Resource UID", "User Name", "Hostname", "IP Address")
    }
    entities = record["entities"]
    assert by_type == {
        "Resource UID": entities["pods"],
        "User Name": entities["service_accounts"],
        "Hostname": entities["nodes"],
        "IP Address": entities["ips"],
    }
    assert all(set(o) == {"name", "type_id", "type", "value"} for o in observables)


def test_cluster_and_page_link_are_carried(scenario: dict[str, dict[str, Any]]) -> None:
    record = scenario["workload-pivot"]
    finding = to_ocsf(record)
    assert finding["unmapped"]["cluster"] == "prod-eu"
    assert finding["message"].endswith(" in cluster prod-eu")
    assert finding["finding_info"]["src_url"] == record["url"]
    assert "cluster" not in to_ocsf(_recon_token_pivot())["unmapped"]
