"""One recon → token read → cross-namespace API abuse attack, as the wire would carry it.

Pod ``shop/web-0`` runs nmap, reads its service-account token, and its token then lists
secrets in ``payments`` (denied). The two Falco alerts and the audit event are returned
in their real wire shapes: Falco JSON (http_output), Falco gRPC responses, an EventList.
"""

from __future__ import annotations

from typing import Any, Final

from detector.proto import outputs_pb2

T0: Final = 1_772_359_200  # 2026-03-01T10:00:00Z
RULE: Final = "recon-token-pivot"


def _iso(offset_s: int) -> str:
    from correlation.chain import rfc3339

    return rfc3339((T0 + offset_s) * 1_000_000_000).replace(".000000Z", ".000000001Z")


def falco_alerts() -> list[dict[str, Any]]:
    """Recon at T0, token read at T0+10 s."""
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
            "time": _iso(10),
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
    """The stolen identity lists secrets in another namespace at T0+40 s."""
    stamp = _iso(40)
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
