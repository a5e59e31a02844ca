"""Audit events: identities, bound-token extras, workloads, exec, and secret hygiene."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest

from correlation.event import K8S_AUDIT
from detector.parse import ParseError, parse_audit, parse_document

# A bound-token request from pod shop/frontend-7d9f, shape as the log backend writes it.
EVENT: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "6d1a3f0e-2b1c-4f7e-9a55-0c1d2e3f4a5b",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/payments/secrets?limit=500",
    "verb": "list",
    "user": {
        "username": "system:serviceaccount:shop:frontend",
        "uid": "a1b2",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:shop", "system:authenticated"],
        "extra": {
            "authentication.kubernetes.io/credential-id": [
                "JTI=4b9e7c1a-0d2f-4e3a-9b8c-7d6e5f4a3b2c"
            ],
            "authentication.kubernetes.io/node-name": ["node-a"],
            "authentication.kubernetes.io/node-uid": ["9f8e"],
            "authentication.kubernetes.io/pod-name": ["frontend-7d9f"],
            "authentication.kubernetes.io/pod-uid": ["3f1c"],
        },
    },
    "sourceIPs": ["203.0.113.9", "10.0.1.7"],
    "userAgent": "curl/8.5.0",
    "objectRef": {"resource": "secrets", "namespace": "payments", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403},
    "requestReceivedTimestamp": "2026-11-27T01:05:00.123456Z",
    "stageTimestamp": "2026-11-27T01:05:00.125000Z",
    "annotations": {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""},
}


def test_bound_token_identity() -> None:
    event = parse_audit(EVENT)
    assert event.source == K8S_AUDIT
    assert event.id == "6d1a3f0e-2b1c-4f7e-9a55-0c1d2e3f4a5b/ResponseComplete"
    assert event.time_ns == 1795741500123456000
    assert (event.verb, event.resource, event.response_code, event.decision) == (
        "list",
        "secrets",
        403,
        "forbid",
    )
    actor = event.actor
    assert actor.service_account == "shop:frontend" and actor.namespace == "shop"
    assert (actor.pod, actor.pod_uid, actor.node) == ("frontend-7d9f", "3f1c", "node-a")
    assert actor.ips == ("10.0.1.7", "203.0.113.9")  # the API server's own view first
    assert event.fields["credential_id"] == "JTI=4b9e7c1a-0d2f-4e3a-9b8c-7d6e5f4a3b2c"
    assert event.fields["request_uri"] == "/api/v1/namespaces/payments/secrets"
    assert event.target.namespace == "payments" and event.target.pod == ""


def test_non_service_account_users() -> None:
    doc = copy.deepcopy(EVENT)
    doc["user"] = {"username": "system:serviceaccounts:default:default"}  # a group, not an SA
    event = parse_audit(doc)
    assert event.actor.service_account == "" and event.actor.user.startswith("system:")


def test_job_creation_exposes_the_workload() -> None:
    doc = copy.deepcopy(EVENT)
    doc.update(
        verb="create",
        level="Request",
        requestURI="/apis/batch/v1/namespaces/payments/jobs",
        objectRef={"resource": "jobs", "namespace": "payments", "apiGroup": "batch"},
        requestObject={"metadata": {"generateName": "sync-"}, "spec": {"template": {}}},
        responseObject={"metadata": {"name": "sync-x7k2p", "namespace": "payments"}},
        responseStatus={"code": 201},
    )
    event = parse_audit(doc)
    assert event.target.pod_ref == "payments/sync-x7k2p"
    assert event.fields["workload.kind"] == "jobs"
    assert event.fields["workload.name"] == "sync-x7k2p"
    assert event.fields["workload.generate_name"] == "sync-"


def test_patch_document_body_is_tolerated() -> None:
    doc = copy.deepcopy(EVENT)
    doc.update(verb="create", objectRef={"resource": "pods", "namespace": "a", "name": "p"})
    doc["requestObject"] = [{"op": "add", "path": "/x", "value": 1}]
    assert parse_audit(doc).target.pod_ref == "a/p"


def test_exec_command_from_query_and_no_query_kept() -> None:
    doc = copy.deepcopy(EVENT)
    doc.update(
        verb="create",
        stage="ResponseStarted",
        requestURI="/api/v1/namespaces/payments/pods/db-0/exec?command=sh&command=-c&"
        "command=cat%20%2Fetc%2Fpasswd&container=db&stdin=true&token=abc",
        objectRef={
            "resource": "pods",
            "namespace": "payments",
            "name": "db-0",
            "subresource": "exec",
        },
        responseStatus={"code": 101},
    )
    event = parse_audit(doc)
    assert event.target.pod_ref == "payments/db-0"
    assert event.fields["exec.command"] == "sh -c cat /etc/passwd"
    assert event.fields["exec.container"] == "db"
    assert "abc" not in repr(event)


@pytest.mark.parametrize("resource", ["secrets", "configmaps", "tokenreviews", "serviceaccounts"])
def test_sensitive_bodies_never_travel(resource: str) -> None:
    doc = copy.deepcopy(EVENT)
    sub = "token" if resource == "serviceaccounts" else ""
    doc.update(
        verb="create",
        level="RequestResponse",
        objectRef={"resource": resource, "namespace": "shop", "name": "x", "subresource": sub},
        requestObject={"spec": {"token": "eyJhbGciOiJSUzI1NiJ9.SECRET"}, "data": {"k": "SECRET"}},
        responseObject={"status": {"token": "eyJhbGciOiJSUzI1NiJ9.SECRET"}},
    )
    event = parse_audit(doc)
    assert "SECRET" not in repr(event)
    assert "SECRET" not in msgspec.json.encode(event).decode()


def test_webhook_event_list() -> None:
    second = dict(copy.deepcopy(EVENT), auditID="second", stage="ResponseComplete")
    body = {
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "metadata": {},
        "items": [EVENT, second],
    }
    events = parse_document(msgspec.json.encode(body))
    assert [e.id.split("/")[0] for e in events] == [EVENT["auditID"], "second"]


def test_event_list_bad_item_is_reported_not_fatal() -> None:
    body = {"kind": "EventList", "items": [EVENT, {"auditID": 5}, {"auditID": "x"}]}
    errors: list[ParseError] = []
    events = parse_document(msgspec.json.encode(body), errors=errors)
    assert len(events) == 1
    assert [e.reason for e in errors] == ["bad_type", "missing_field"]
    with pytest.raises(ParseError):
        parse_document(msgspec.json.encode(body))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"apiVersion": "audit.k8s.io/v2"}, "unknown_api_version"),
        ({"auditID": ""}, "missing_field"),
        ({"requestReceivedTimestamp": "", "stageTimestamp": ""}, "missing_field"),
        ({"requestReceivedTimestamp": "2026-13-45T99:00:00Z"}, "bad_time"),
        ({"sourceIPs": "10.0.0.1"}, "bad_type"),
        ({"responseStatus": {"code": "403"}}, "bad_type"),
        ({"sourceIPs": ["10.0.0.1"] * 100}, "too_large"),
    ],
)
def test_bad_events_have_reasons(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_audit(dict(EVENT, **change))
    assert info.value.reason == reason
