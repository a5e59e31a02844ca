"""Auto-detection, provider envelopes and hostile input: only ParseError ever escapes."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from correlation.event import FALCO, K8S_AUDIT
from detector.parse import ParseError, parse_document, parse_line
from tests.unit.parse.test_audit import EVENT
from tests.unit.parse.test_falco import ALERT


def _line(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_auto_detection_per_line() -> None:
    assert [e.source for e in parse_line(_line(ALERT))] == [FALCO]
    assert [e.source for e in parse_line(_line(EVENT))] == [K8S_AUDIT]
    assert parse_line(b"   \n") == []


def test_aks_diagnostic_record_is_unwrapped_object_or_string() -> None:
    record = {
        "category": "kube-audit",
        "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
        "properties": {"log": EVENT, "pod": "kube-apiserver-0", "stream": "stdout"},
        "time": "2026-11-27T01:05:00.2Z",
    }
    (event,) = parse_line(_line(record))
    assert event.id.startswith(EVENT["auditID"])
    record["properties"]["log"] = json.dumps(EVENT)  # Azure often stores it as a string
    (again,) = parse_line(_line(record))
    assert again == event


def test_gke_cloud_audit_record_is_refused_with_reason() -> None:
    # GKE's Cloud Audit Log is another schema: methodName "io.k8s.core.v1.pods.list",
    # a gRPC status code, no auditID/stage and no bound-token extras to join on.
    record = {
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": "system:serviceaccount:shop:frontend"},
            "methodName": "io.k8s.core.v1.pods.list",
            "resourceName": "core/v1/namespaces/payments/pods",
            "status": {"code": 7},
        },
        "timestamp": "2026-11-27T01:05:00.1Z",
        "labels": {"authorization.k8s.io/decision": "forbid"},
    }
    with pytest.raises(ParseError) as info:
        parse_line(_line(record))
    assert info.value.reason == "unsupported_envelope"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"rule": "x", "priority": "Notice", "time": "2026-11-27T01:02:03Z"', "malformed_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"just a string"', "not_an_object"),
        (b"{}", "unknown_format"),
        (b'{"kind": "Status"}', "unknown_format"),
        (b'{"rule": "r", "time": "2026-11-27T01:02:03Z"}', "missing_field"),
        (b'{"auditID": "a", "stage": 3}', "bad_type"),
        (b'{"rule": "\xff\xfe", "priority": "Notice"}', "bad_encoding"),
        (b'{"x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "too_deep"),
        (
            b'{"kind": "EventList", "apiVersion": "audit.k8s.io/v9", "items": []}',
            "unknown_api_version",
        ),
    ],
)
def test_hostile_documents(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_line(data)
    assert info.value.reason == reason


def test_size_cap() -> None:
    with pytest.raises(ParseError) as info:
        parse_document(_line(ALERT), max_bytes=100)
    assert info.value.reason == "too_large"


def test_event_list_item_cap() -> None:
    body = msgspec.json.encode({"kind": "EventList", "items": [{}] * 5001})
    with pytest.raises(ParseError) as info:
        parse_document(body)
    assert info.value.reason == "too_large"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    [
        "time",
        "rule",
        "priority",
        "output_fields",
        "tags",
        "source",
        "uuid",
        "kind",
        "items",
        "auditID",
        "stage",
        "user",
        "sourceIPs",
        "objectRef",
        "responseStatus",
        "verb",
        "requestReceivedTimestamp",
        "requestObject",
        "properties",
        "protoPayload",
        "apiVersion",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _json_values, max_size=8))
def test_structured_garbage_only_raises_parse_error(doc: dict[str, object]) -> None:
    try:
        parse_line(json.dumps(doc).encode())
    except ParseError as exc:
        assert exc.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_parse_error(data: bytes) -> None:
    try:
        parse_line(data)
    except ParseError as exc:
        assert exc.reason


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=len(_line(ALERT)) - 1))
def test_truncated_alerts_are_malformed(cut_at: int) -> None:
    with pytest.raises(ParseError):
        parse_line(_line(ALERT)[:cut_at])
