"""Audit Events as the API server's backends write them, one per stage of a request.

:class:`Request` is what a call to :meth:`AuditLog.request` describes; the module's
functions pick the scenario's values, and :mod:`synthetic.audit` (shared with the
benchmark) gives the Event its shape and key order, which are part of the committed files.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from synthetic import audit
from synthetic.times import from_datetime

from .pods import API_SERVER, NODES, T0, Pod, seeded_uuid

KUBECTL = "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46"
IN_POD_CLIENT = "Go-http-client/2.0"
MILLISECOND = 1_000_000


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
    received = from_datetime(moment)
    event = audit.event(
        time_ns=received,
        stage_ns=received + (3 if done else 1) * MILLISECOND,
        audit_id=audit_id,
        stage=stage,
        level="Request" if req.verb == "create" and req.resource != "secrets" else "Metadata",
        uri=_path(req) + (f"?{req.query}" if req.query else ""),
        verb=req.verb,
        user=_plain_user(req.user) if req.pod is None else _pod_user(req.pod),
        source_ips=req.ips or [API_SERVER if req.pod is None else req.pod.ip],
        user_agent=req.agent or (KUBECTL if req.pod is None else IN_POD_CLIENT),
        object_ref=audit.object_ref(req.resource, req.namespace, req.name, req.sub, req.group),
        status=audit.response_status(req.code),
        annotations=audit.authorization(req.code != 403, f"{req.resource}-access"),
    )
    if req.verb == "create" and req.response_name and done:
        event.update(_created_objects(req))
    return event


def _path(req: Request) -> str:
    # a create names its object in the body, except a subresource (pods/x/exec)
    named = req.name and req.verb != "create" or req.sub
    name = req.name if named else ""
    return audit.request_path(req.resource, req.namespace, name, req.sub, req.group)


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
    return audit.user(username, ["system:authenticated"])


def _pod_user(pod: Pod) -> dict[str, Any]:
    """A bound service account token's user, with the pod it was issued to."""
    return audit.pod_token_user(
        namespace=pod.namespace,
        account=pod.sa,
        uid=seeded_uuid(pod.seed + 3),
        credential_id=seeded_uuid(pod.seed + 2),
        node=pod.node,
        node_uid=str(uuid.UUID(int=NODES.index(pod.node) + 1, version=4)),
        pod=pod.name,
        pod_uid=pod.uid,
    )
