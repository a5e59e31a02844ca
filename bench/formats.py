"""Falco alerts and Kubernetes audit events in their real wire shapes.

* Falco: the document ``http_output`` POSTs (and ``json_output`` writes): keys sorted (Falco
  serialises with nlohmann's sorted map), ``time`` in UTC with 9 fractional digits,
  ``output_fields`` with ``evt.time`` as integer nanoseconds, ``tags`` with MITRE ids.
* Audit: one ``audit.k8s.io/v1`` ``Event`` as the log backend writes it, with bound-token
  extras in ``user.extra`` for service-account tokens mounted into pods, and the RBAC
  decision annotations.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any, Final

from bench.cluster import Pod

TOKEN_PATH: Final = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 (a path)
SA_GROUPS: Final = ("system:serviceaccounts", "system:authenticated")

_second_cache: dict[int, str] = {}


def _second(seconds: int) -> str:
    text = _second_cache.get(seconds)
    if text is None:
        # A stream covers hours at most: the cache stays small.
        text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second_cache[seconds] = text
    return text


def falco_time(time_ns: int) -> str:
    """``2026-03-02T10:00:00.123456789Z``."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return f"{_second(seconds)}.{nanos:09d}Z"


def audit_time(time_ns: int) -> str:
    """metav1.MicroTime: ``2026-03-02T10:00:00.123456Z``."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return f"{_second(seconds)}.{nanos // 1000:06d}Z"


def pod_fields(pod: Pod, with_k8s: bool = True) -> dict[str, Any]:
    """The container/pod part of ``output_fields`` (``append_output`` adds the k8s fields)."""
    fields: dict[str, Any] = {
        "container.id": pod.container_id,
        "container.name": pod.container_name,
        "container.image.repository": pod.image,
    }
    if with_k8s:
        fields.update(
            {"k8s.ns.name": pod.namespace, "k8s.pod.name": pod.name, "container.ip": pod.ip}
        )
    else:
        # Upstream rules since Falco 0.41 carry no k8s fields unless the user appends them.
        fields.update({"k8s.ns.name": None, "k8s.pod.name": None})
    return fields


def falco_alert(
    time_ns: int,
    rule: str,
    priority: str,
    tags: tuple[str, ...],
    message: str,
    hostname: str,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """One Falco alert as ``http_output`` sends it."""
    output_fields = dict(sorted({"evt.time": time_ns, **fields}.items()))
    clock = falco_time(time_ns)[11:-1]
    return {
        "hostname": hostname,
        "output": f"{clock}: {priority} {message}",
        "output_fields": output_fields,
        "priority": priority,
        "rule": rule,
        "source": "syscall",
        "tags": list(tags),
        "time": falco_time(time_ns),
    }


def process_fields(
    proc: str, cmdline: str, parent: str = "sh", user: str = "root"
) -> dict[str, Any]:
    return {
        "proc.name": proc,
        "proc.cmdline": cmdline,
        "proc.pname": parent,
        "proc.exepath": f"/usr/bin/{proc}",
        "user.name": user,
        "user.uid": 0 if user == "root" else 1000,
        "user.loginuid": -1,
        "proc.tty": 0,
        "evt.type": "execve",
    }


def connect_fields(pod: Pod, server_ip: str, server_port: int) -> dict[str, Any]:
    client_port = 30000 + (zlib.crc32(f"{server_ip}:{server_port}".encode()) & 0x7FFF)
    return {
        "evt.type": "connect",
        "fd.sip": server_ip,
        "fd.sport": server_port,
        "fd.cip": pod.ip,
        "fd.cport": client_port,
        "fd.name": f"{pod.ip}:{client_port}->{server_ip}:{server_port}",
        "fd.l4proto": "tcp",
    }


def bound_token_user(pod: Pod, credential: str) -> dict[str, Any]:
    """UserInfo of a request made with ``pod``'s projected service-account token."""
    return {
        "username": pod.username,
        "uid": credential[:36],
        "groups": [SA_GROUPS[0], f"system:serviceaccounts:{pod.namespace}", SA_GROUPS[1]],
        "extra": {
            "authentication.kubernetes.io/credential-id": [f"JTI={credential[36:]}"],
            "authentication.kubernetes.io/node-name": [pod.node],
            "authentication.kubernetes.io/node-uid": [credential[:8] + "-node"],
            "authentication.kubernetes.io/pod-name": [pod.name],
            "authentication.kubernetes.io/pod-uid": [pod.uid],
        },
    }


def audit_event(
    *,
    time_ns: int,
    audit_id: str,
    verb: str,
    user: dict[str, Any],
    source_ip: str,
    user_agent: str,
    resource: str,
    namespace: str = "",
    name: str = "",
    subresource: str = "",
    api_group: str = "",
    code: int = 200,
    stage: str = "ResponseComplete",
    request_uri: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit Event (Metadata level unless ``extra`` adds request/response objects)."""
    object_ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
    if namespace:
        object_ref["namespace"] = namespace
    if name:
        object_ref["name"] = name
    if subresource:
        object_ref["subresource"] = subresource
    if api_group:
        object_ref["apiGroup"] = api_group
    allowed = code < 400 or code == 404
    reason = "" if not allowed else f'RBAC: allowed by RoleBinding "{resource}-reader"'
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id,
        "stage": stage,
        "requestURI": request_uri or _uri(resource, namespace, name, subresource, api_group),
        "verb": verb,
        "user": user,
        "sourceIPs": [source_ip],
        "userAgent": user_agent,
        "objectRef": object_ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": audit_time(time_ns),
        "stageTimestamp": audit_time(time_ns + 1_500_000),
        "annotations": {
            "authorization.k8s.io/decision": "allow" if allowed else "forbid",
            "authorization.k8s.io/reason": reason,
        },
    }
    if extra:
        event.update(extra)
    return event


def _uri(resource: str, namespace: str, name: str, subresource: str, group: str) -> str:
    base = f"/apis/{group}/v1" if group else "/api/v1"
    path = f"{base}/namespaces/{namespace}/{resource}" if namespace else f"{base}/{resource}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path
