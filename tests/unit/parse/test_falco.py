"""Falco alerts: http_output JSON, Falcosidekick payloads and the gRPC consumer's dicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from correlation.event import FALCO
from detector.parse import ParseError, SkippedInput, parse_document, parse_falco

# Shape of Falco's documented http_output example, with append_output k8s fields added.
ALERT: dict[str, Any] = {
    "hostname": "node-a",
    "output": "13:44:05.478445995: Notice LMD Network Scanner Launched in Pod ...",
    "priority": "Notice",
    "rule": "LMD Network Scanner Launched in Pod",
    "source": "syscall",
    "tags": ["network", "mitre_discovery", "T1046"],
    "time": "2026-11-27T01:02:03.478445995Z",
    "output_fields": {
        "container.id": "ee97d9c4186f",
        "container.image.repository": "docker.io/library/alpine",
        "evt.time": 1795741323478445995,
        "k8s.ns.name": "shop",
        "k8s.pod.name": "frontend-7d9f",
        "k8s.pod.uid": "3f1c",
        "k8s.pod.ip": "10.0.1.7",
        "proc.name": "nmap",
        "proc.cmdline": "nmap -sT 10.0.0.0/24",
        "proc.tty": 34816,
        "user.loginuid": -1,
        "user.name": "root",
        "fd.sip": "10.0.2.9",
        "fd.sport": 443,
        "fd.sip.name": None,
        "container.privileged": False,
    },
}


def _grpc_shape(alert: dict[str, Any]) -> dict[str, Any]:
    """What the gRPC consumer hands us: every output field a string, nulls as <NA>."""
    doc = copy.deepcopy(alert)
    fields = doc["output_fields"]
    for key, value in fields.items():
        if value is None:
            fields[key] = "<NA>"
        elif isinstance(value, bool):
            fields[key] = "true" if value else "false"
        else:
            fields[key] = str(value)
    doc["priority"] = "NOTICE"
    doc["time"] = alert["time"]
    del doc["output"]
    return doc


def test_alert_fields_are_normalized() -> None:
    event = parse_falco(ALERT)
    assert event.source == FALCO
    assert event.time_ns == 1795741323478445995
    assert (event.rule, event.priority) == ("LMD Network Scanner Launched in Pod", "notice")
    assert event.tags == ("T1046", "mitre_discovery", "network")
    assert event.actor.pod_ref == "shop/frontend-7d9f"
    assert event.actor.container_id == "ee97d9c4186f"
    assert event.actor.image == "docker.io/library/alpine"
    assert event.actor.ips == ("10.0.1.7",)
    assert (event.actor.user, event.actor.node, event.actor.pod_uid) == ("root", "node-a", "3f1c")
    assert event.target.ips == ("10.0.2.9",) and event.target.port == 443
    assert event.fields["proc.tty"] == "34816"
    assert event.fields["container.privileged"] == "false"
    assert "fd.sip.name" not in event.fields  # null means missing
    assert event.id.startswith("falco-")


def test_id_is_stable_across_key_order_and_grpc_delivery() -> None:
    reordered = dict(reversed(list(ALERT.items())))
    reordered["output_fields"] = dict(reversed(list(ALERT["output_fields"].items())))
    first, second = parse_falco(ALERT), parse_falco(reordered)
    third = parse_falco(_grpc_shape(ALERT))
    assert first.id == second.id == third.id
    assert first.fields == third.fields


def test_id_changes_with_content() -> None:
    other = copy.deepcopy(ALERT)
    other["output_fields"]["proc.cmdline"] = "nmap -sT 10.0.9.0/24"
    assert parse_falco(other).id != parse_falco(ALERT).id


def test_sidekick_uuid_is_the_id() -> None:
    doc = dict(ALERT, uuid="0b8c4a0e-9a4c-4a55-9f3a-2f7a1d1c2e11")
    assert parse_falco(doc).id == "0b8c4a0e-9a4c-4a55-9f3a-2f7a1d1c2e11"


def test_upstream_alert_with_only_container_fields() -> None:
    doc = copy.deepcopy(ALERT)
    doc["rule"] = "Launch Suspicious Network Tool in Container"
    doc["output_fields"] = {
        "container.id": "abc123def456",
        "container.name": "web",
        "proc.name": "nc",
    }
    event = parse_falco(doc)
    assert event.actor.container_id == "abc123def456"
    assert event.actor.pod_ref == ""
    assert event.summary.startswith("Launch Suspicious Network Tool in Container in container")


def test_priority_any_case_and_info_alias() -> None:
    assert parse_falco(dict(ALERT, priority="WARNING")).priority == "warning"
    assert parse_falco(dict(ALERT, priority="info")).priority == "informational"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"priority": "Loud"}, "bad_priority"),
        ({"time": "yesterday"}, "bad_time"),
        ({"time": 17}, "bad_type"),
        ({"rule": ""}, "missing_field"),
        ({"output_fields": {"x": {"nested": 1}}}, "bad_type"),
        ({"output_fields": {f"f{i}": "v" for i in range(300)}}, "too_large"),
    ],
)
def test_bad_alerts_have_reasons(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_falco(dict(ALERT, **change))
    assert info.value.reason == reason


def test_missing_rule_is_missing_field() -> None:
    doc = {k: v for k, v in ALERT.items() if k != "rule"}
    with pytest.raises(ParseError) as info:
        parse_falco(doc)
    assert info.value.reason == "missing_field"


def test_internal_alerts_are_skipped_not_errors() -> None:
    doc = {
        "hostname": "node-a",
        "output": "Falco internal: syscall event drop. 12 system calls dropped in last second.",
        "output_fields": {"n_drops": 12},
        "priority": "Debug",
        "rule": "Falco internal: syscall event drop",
        "source": "internal",
        "time": "2026-11-27T01:02:03.000000000Z",
    }
    with pytest.raises(SkippedInput) as info:
        parse_falco(doc)
    assert info.value.reason == "falco_internal"
    with pytest.raises(SkippedInput):
        parse_document(
            b'{"rule":"Falco internal: metrics snapshot","priority":"Informational",'
            b'"time":"2026-11-27T01:02:03Z","source":"internal","output_fields":{}}'
        )


def test_long_values_are_cut() -> None:
    doc = copy.deepcopy(ALERT)
    doc["output_fields"]["proc.cmdline"] = "x" * 100_000
    event = parse_falco(doc)
    assert len(event.fields["proc.cmdline"]) == 1024
    assert event.fields["proc.cmdline"].endswith("…")
