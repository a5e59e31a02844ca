"""One recon → token read → cross-namespace API abuse attack, as the wire would carry it.

Pod ``shop/web-0`` runs nmap, reads its service-account token, and its token then lists
secrets in ``payments`` (denied). The two Falco alerts and the audit event are returned
in their real wire shapes: Falco JSON (http_output), Falco gRPC responses, an EventList.

Event times are near the present (:func:`rebase`, run before every integration test):
HTTP and gRPC senders are *pushed* inputs whose progress follows the receiving clock
(``correlation.watermarks``), so months-old stamps posted live would rightly be late.
The steps are :data:`STEPS_S` apart — the whole attack fits in the half second before
the test starts, so a test posting it at once is a prompt sender, as a live one is.
"""

from __future__ import annotations

import time
from typing import Any, Final

from detector.proto import outputs_pb2

RULE: Final = "recon-token-pivot"
STEPS_S: Final = (0.0, 0.1, 0.4)  # recon, token read, secrets listed: seconds after T0
T0_NS = time.time_ns() - 500_000_000  # see rebase()


def rebase(before_s: float = 0.5) -> int:
    """Put the attack's start ``before_s`` before now (ns)."""
    global T0_NS
    T0_NS = time.time_ns() // 1000 * 1000 - int(before_s * 1e9)  # whole µs: exact on the wire
    return T0_NS


def at(step: int) -> int:
    """Event time (ns) of step ``step`` (0, 1, 2)."""
    return T0_NS + int(STEPS_S[step] * 1e9)


def _iso(step: int) -> str:
    from correlation.chain import rfc3339

    return rfc3339(at(step))


def falco_alerts() -> list[dict[str, Any]]:
    """Recon at T0, token read 0.1 s later."""
    pod = {"k8s.ns.name": "shop", "k8s.pod.name": "web-0", "container.id": "0a1b2c3d4e5f"}
    return [
        {
            "time": _iso(0),
            "rule": "Launch Suspicious Network Tool in Container",
            "priority": "Notice",
            "source": "syscall",
            "hostname": "node-1",
            "tags": ["T1046", "mitre_discovery", "container", "network"],
            "output_fields": {**pod, "proc.name": "nmap", "proc.cmdline": "nmap -sT 10.0.0.0/24"},
        },
        {
            "time": _iso(1),
            "rule": "LMD Service Account Token Read",
            "priority": "Warning",
            "source": "syscall",
            "hostname": "node-1",
            "tags": ["T1528", "mitre_credential_access"],
            "output_fields": {
                **pod,
                "proc.name": "cat",
                "fd.name": "/var/run/secrets/kubernetes.io/serviceaccount/token",
            },
        },
    ]


def audit_items() -> list[dict[str, Any]]:
    """The stolen identity lists secrets in another namespace 0.4 s after T0."""
    stamp = _iso(2)
    return [
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": "6c1f8d3e-2b4a-4f5e-9d7c-1a2b3c4d5e6f",
            "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/payments/secrets",
            "verb": "list",
            "user": {
                "username": "system:serviceaccount:shop:web",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:shop"],
                "extra": {
                    "authentication.kubernetes.io/pod-name": ["web-0"],
                    "authentication.kubernetes.io/pod-uid": [
                        "9d3c7a52-0b0e-4d7e-8f1a-3c2b1a0f9e8d"
                    ],
                },
            },
            "sourceIPs": ["10.0.0.7"],
            "userAgent": "curl/8.5.0",
            "objectRef": {"resource": "secrets", "namespace": "payments", "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "status": "Failure", "code": 403},
            "requestReceivedTimestamp": stamp,
            "stageTimestamp": stamp,
        }
    ]


def event_list() -> dict[str, Any]:
    return {
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "metadata": {},
        "items": audit_items(),
    }


def grpc_response(alert: dict[str, Any]) -> outputs_pb2.response:
    """The same alert as Falco's gRPC outputs API sends it."""
    response = outputs_pb2.response(
        priority=alert["priority"],
        rule=alert["rule"],
        output=alert["rule"],
        hostname=alert["hostname"],
        tags=alert["tags"],
        source=alert["source"],
        output_fields=alert["output_fields"],
    )
    response.time.FromJsonString(alert["time"])
    return response
