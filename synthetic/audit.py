"""Kubernetes audit events (``audit.k8s.io/v1``) as the API server's backends write them.

The log backend writes one :func:`event` per line; the webhook backend posts
:func:`event_list` batches. Keys are in the API server's own order (Go struct field
order), which is part of what the generators commit. ``requestReceivedTimestamp`` and
``stageTimestamp`` are metav1.MicroTime (6 fractional digits). A request made with a
projected service-account token carries the pod it was issued to in ``user.extra``
(:func:`pod_token_user`); the RBAC authorizer adds its decision as annotations
(:func:`authorization`).
"""

from __future__ import annotations

from typing import Any, Final

from synthetic.times import micros

API_VERSION: Final = "audit.k8s.io/v1"
_EXTRA: Final = "authentication.kubernetes.io/"


def event(
    *,
    time_ns: int,
    stage_ns: int,
    audit_id: str,
    stage: str,
    level: str,
    uri: str,
    verb: str,
    user: dict[str, Any],
    source_ips: list[str],
    user_agent: str,
    object_ref: dict[str, Any],
    status: dict[str, Any],
    annotations: dict[str, str],
) -> dict[str, Any]:
    """One Event: received at ``time_ns``, this ``stage`` reached at ``stage_ns``."""
    return {
        "kind": "Event",
        "apiVersion": API_VERSION,
        "level": level,
        "auditID": audit_id,
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": user,
        "sourceIPs": source_ips,
        "userAgent": user_agent,
        "objectRef": object_ref,
        "responseStatus": status,
        "requestReceivedTimestamp": micros(time_ns),
        "stageTimestamp": micros(stage_ns),
        "annotations": annotations,
    }


def event_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """One webhook POST body: a batch of Events."""
    return {"kind": "EventList", "apiVersion": API_VERSION, "metadata": {}, "items": items}


def object_ref(
    resource: str, namespace: str = "", name: str = "", subresource: str = "", group: str = ""
) -> dict[str, Any]:
    """``objectRef``: empty parts are left out, as the API server's omitempty does."""
    ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
    optional = (("namespace", namespace), ("name", name), ("subresource", subresource),
                ("apiGroup", group))  # fmt: skip
    ref.update({key: value for key, value in optional if value})
    return ref


def request_path(
    resource: str, namespace: str = "", name: str = "", subresource: str = "", group: str = ""
) -> str:
    """The REST path of a request (``/apis/<group>/v1/namespaces/<ns>/<resource>/...``).

    A create names its object in the body, not the path: pass ``name`` only when the
    path has it (every verb but create, and subresources such as ``pods/<name>/exec``).
    """
    path = f"/apis/{group}/v1" if group else "/api/v1"
    if namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{resource}" + (f"/{name}" if name else "")
    return path + (f"/{subresource}" if subresource else "")


def response_status(code: int) -> dict[str, Any]:
    """``responseStatus`` as the log shows it (a refusal carries its reason)."""
    status: dict[str, Any] = {"metadata": {}, "code": code}
    if code == 403:
        status.update(status="Failure", reason="Forbidden")
    return status


def authorization(allowed: bool, binding: str) -> dict[str, str]:
    """The RBAC authorizer's annotations: the decision, and the binding that allowed it."""
    reason = f'RBAC: allowed by RoleBinding "{binding}"' if allowed else ""
    return {
        "authorization.k8s.io/decision": "allow" if allowed else "forbid",
        "authorization.k8s.io/reason": reason,
    }


def user(username: str, groups: list[str]) -> dict[str, Any]:
    """A user authenticated without a pod-bound token (a person, a node, a controller)."""
    return {"username": username, "groups": groups}


def pod_token_user(
    *,
    namespace: str,
    account: str,
    uid: str,
    credential_id: str,
    node: str,
    node_uid: str,
    pod: str,
    pod_uid: str,
) -> dict[str, Any]:
    """A projected service-account token's user, with the claims of the pod it was issued to."""
    return {
        "username": f"system:serviceaccount:{namespace}:{account}",
        "uid": uid,
        "groups": [
            "system:serviceaccounts",
            f"system:serviceaccounts:{namespace}",
            "system:authenticated",
        ],
        "extra": {
            _EXTRA + "credential-id": [f"JTI={credential_id}"],
            _EXTRA + "node-name": [node],
            _EXTRA + "node-uid": [node_uid],
            _EXTRA + "pod-name": [pod],
            _EXTRA + "pod-uid": [pod_uid],
        },
    }
