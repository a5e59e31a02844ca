"""Audit Events as the API server's backends write them, one per stage of a request.

:class:`Request` is what a call to :meth:`AuditLog.request` describes; the module's
functions turn it into the Event's parts. Key order follows the API server's own
output, and it is part of the committed files.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .pods import API_SERVER, NODES, T0, Pod, rfc3339, seeded_uuid

KUBECTL = "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46"
IN_POD_CLIENT = "Go-http-client/2.0"


@dataclass(frozen=True)
class Request:
    """One API request: who (``pod``'s token, or ``user``), what, and how it was answered."""

    verb: str
    resource: str
    namespace: str = ""
    name: str = ""
    pod: Pod | None = None
    user: str = ""
    ips: list[str] | None = None
    code: int = 200
    sub: str = ""
    group: str = ""
    query: str = ""
    agent: str = ""
    response_name: str = ""
    stages: tuple[str, ...] = ("ResponseComplete",)


class AuditLog:
    """Audit Events with their times for sorting; ``rng`` is the scenario's."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.events: list[tuple[datetime, dict[str, Any]]] = []

    def request(
        self, at: float, verb: str, resource: str, namespace: str = "", name: str = "", **more: Any
    ) -> None:
        """Log ``Request(verb, resource, namespace, name, **more)`` ``at`` seconds after T0."""
        req = Request(verb, resource, namespace, name, **more)
        moment = T0 + timedelta(seconds=at, microseconds=self.rng.randrange(1_000_000))
        audit_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        for stage in req.stages:
            self.events.append((moment, _event(req, stage, moment, audit_id)))


def _event(req: Request, stage: str, moment: datetime, audit_id: str) -> dict[str, Any]:
    done = stage == "ResponseComplete"
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Request" if req.verb == "create" and req.resource != "secrets" else "Metadata",
        "auditID": audit_id,
        "stage": stage,
        "requestURI": _path(req) + (f"?{req.query}" if req.query else ""),
        "verb": req.verb,
        "user": _plain_user(req.user) if req.pod is None else _pod_user(req.pod),
        "sourceIPs": req.ips or [API_SERVER if req.pod is None else req.pod.ip],
        "userAgent": req.agent or (KUBECTL if req.pod is None else IN_POD_CLIENT),
        "objectRef": _object_ref(req),
        "responseStatus": _status(req.code, done),
        "requestReceivedTimestamp": rfc3339(moment, 6),
        "stageTimestamp": rfc3339(moment + timedelta(milliseconds=3 if done else 1), 6),
        "annotations": _authorization(req),
    }
    if req.verb == "create" and req.response_name and done:
        event.update(_created_objects(req))
    return event


def _path(req: Request) -> str:
    path = "/api/v1" if not req.group else f"/apis/{req.group}/v1"
    if req.namespace:
        path += f"/namespaces/{req.namespace}"
    # a create names its object in the body, except a subresource (pods/x/exec)
    named = req.name and req.verb != "create" or req.sub
    path += f"/{req.resource}" + (f"/{req.name}" if named else "")
    return path + (f"/{req.sub}" if req.sub else "")


def _object_ref(req: Request) -> dict[str, Any]:
    ref: dict[str, Any] = {"resource": req.resource, "apiVersion": "v1"}
    optional = (
        ("namespace", req.namespace),
        ("name", req.name),
        ("subresource", req.sub),
        ("apiGroup", req.group),
    )
    ref.update({key: value for key, value in optional if value})
    return ref


def _status(code: int, done: bool) -> dict[str, Any]:
    status: dict[str, Any] = {"metadata": {}, "code": code if done or code != 101 else 101}
    if code == 403:
        status.update(status="Failure", reason="Forbidden")
    return status


def _authorization(req: Request) -> dict[str, str]:
    forbidden = req.code == 403
    return {
        "authorization.k8s.io/decision": "forbid" if forbidden else "allow",
        "authorization.k8s.io/reason": ""
        if forbidden
        else f'RBAC: allowed by RoleBinding "{req.resource}-access"',
    }


def _created_objects(req: Request) -> dict[str, Any]:
    """A create answered with the object the server named (``generateName`` + suffix)."""
    return {
        "responseObject": {
            "kind": "Object",
            "metadata": {"name": req.response_name, "namespace": req.namespace},
        },
        "requestObject": {"metadata": {"generateName": req.response_name.rsplit("-", 1)[0] + "-"}},
    }


def _plain_user(username: str) -> dict[str, Any]:
    return {"username": username, "groups": ["system:authenticated"]}


def _pod_user(pod: Pod) -> dict[str, Any]:
    """A bound service account token's user, with the pod it was issued to."""
    prefix = "authentication.kubernetes.io/"
    return {
        "username": f"system:serviceaccount:{pod.namespace}:{pod.sa}",
        "uid": seeded_uuid(pod.seed + 3),
        "groups": [
            "system:serviceaccounts",
            f"system:serviceaccounts:{pod.namespace}",
            "system:authenticated",
        ],
        "extra": {
            prefix + "credential-id": [f"JTI={seeded_uuid(pod.seed + 2)}"],
            prefix + "node-name": [pod.node],
            prefix + "node-uid": [str(uuid.UUID(int=NODES.index(pod.node) + 1, version=4))],
            prefix + "pod-name": [pod.name],
            prefix + "pod-uid": [pod.uid],
        },
    }
