"""The benchmark's Falco and audit documents, written through :mod:`synthetic`.

The shapes (key order, time formats, user info, objectRef, RBAC annotations) come from
the shared ``synthetic`` library, which the bundled attack scenario uses too; this
module maps the simulated cluster's :class:`~bench.cluster.Pod` onto it and adds the
fields the benchmark's rules print (``proc.exepath``, ``user.uid``, ``fd.cport``,
``container.ip``).
"""

from __future__ import annotations

import zlib
from typing import Any

from bench.cluster import Pod
from synthetic import audit, falco
from synthetic.falco import TOKEN_PATH

__all__ = ["TOKEN_PATH", "audit_event", "bound_token_user", "connect_fields", "pod_fields",
           "process_fields"]  # fmt: skip


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


def process_fields(
    proc: str, cmdline: str, parent: str = "sh", user: str = "root"
) -> dict[str, Any]:
    return {
        **falco.process_fields(proc, cmdline, parent, user),
        "proc.exepath": f"/usr/bin/{proc}",
        "user.uid": 0 if user == "root" else 1000,
    }


def connect_fields(pod: Pod, server_ip: str, server_port: int) -> dict[str, Any]:
    client_port = 30000 + (zlib.crc32(f"{server_ip}:{server_port}".encode()) & 0x7FFF)
    return {**falco.connect_fields(pod.ip, client_port, server_ip, server_port),
            "fd.cport": client_port}  # fmt: skip


def bound_token_user(pod: Pod, credential: str) -> dict[str, Any]:
    """UserInfo of a request made with ``pod``'s projected service-account token."""
    return audit.pod_token_user(
        namespace=pod.namespace,
        account=pod.service_account,
        uid=credential[:36],
        credential_id=credential[36:],
        node=pod.node,
        node_uid=credential[:8] + "-node",
        pod=pod.name,
        pod_uid=pod.uid,
    )


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
    uri = request_uri or audit.request_path(resource, namespace, name, subresource, api_group)
    event = audit.event(
        time_ns=time_ns,
        stage_ns=time_ns + 1_500_000,
        audit_id=audit_id,
        stage=stage,
        level="Metadata",
        uri=uri,
        verb=verb,
        user=user,
        source_ips=[source_ip],
        user_agent=user_agent,
        object_ref=audit.object_ref(resource, namespace, name, subresource, api_group),
        status=audit.response_status(code),
        annotations=audit.authorization(code < 400 or code == 404, f"{resource}-reader"),
    )
    if extra:
        event.update(extra)
    return event
