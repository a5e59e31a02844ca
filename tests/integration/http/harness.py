"""A real receiver server on a loopback port, with its queue, for the HTTP tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson

from detector.config import HttpConfig
from detector.delivery.intake import Intake
from detector.delivery.intake_log import IntakeLog
from detector.metrics import Metrics
from detector.pipeline import EventQueue
from detector.sources.falco_http import FalcoHttpReceiver
from detector.sources.http_server import HttpServer
from detector.sources.k8s_audit import K8sAuditReceiver


@dataclass
class Harness:
    server: HttpServer
    queue: EventQueue
    metrics: Metrics
    scheme: str = "http"

    def budget_used(self) -> int:
        """Body bytes the server holds reserved right now."""
        return self.server.budget.used

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.port}"


@asynccontextmanager
async def receivers(
    http: HttpConfig | None = None,
    max_events: int = 1000,
    cap: int = 64 * 1024,
    intake_log: Path | None = None,
) -> AsyncIterator[Harness]:
    """Serve /falco and /k8s-audit on 127.0.0.1, an ephemeral port; stop on exit.
    ``intake_log``: a directory for the intake write-ahead log (default: none)."""
    config = http or HttpConfig()
    config = msgspec.structs.replace(config, listen="127.0.0.1:0")
    metrics = Metrics()
    queue = EventQueue(max_events, metrics)
    found = [FalcoHttpReceiver(cap), K8sAuditReceiver(cap)]
    log = IntakeLog(intake_log, metrics) if intake_log is not None else None
    intake = Intake(queue, log)
    server = HttpServer(config, found, intake, metrics)
    task = asyncio.create_task(server.run(queue.emitter("unused")))
    replay = asyncio.create_task(intake.run(queue.emitter(intake.name)))
    try:
        async with asyncio.timeout(5):
            while not (server.ready() and intake.ready()):  # noqa: ASYNC110 - flipped when bound
                await asyncio.sleep(0.01)
        yield Harness(server, queue, metrics, "https" if config.tls.cert_file else "http")
    finally:
        task.cancel()
        replay.cancel()
        await asyncio.gather(task, replay, return_exceptions=True)
        intake.close()


def falco_alert(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "time": f"2026-03-01T10:00:{n % 60:02d}.000000001Z",
        "rule": "Launch Suspicious Network Tool in Container",
        "priority": "Notice",
        "source": "syscall",
        "hostname": "node-1",
        "tags": ["T1046", "mitre_discovery"],
        "output_fields": {
            "k8s.ns.name": "shop",
            "k8s.pod.name": f"web-{n}",
            "container.id": "0123456789ab",
            "proc.name": "nmap",
        },
        **extra,
    }


def audit_event(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"00000000-0000-0000-0000-{n:012d}",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/payments/secrets",
        "verb": "list",
        "user": {
            "username": "system:serviceaccount:shop:web",
            "groups": ["system:serviceaccounts"],
            "extra": {"authentication.kubernetes.io/pod-name": ["web-0"]},
        },
        "sourceIPs": ["10.0.0.7"],
        "objectRef": {"resource": "secrets", "namespace": "payments", "apiVersion": "v1"},
        "responseStatus": {"code": 403},
        "requestReceivedTimestamp": f"2026-03-01T10:01:{n % 60:02d}.000000Z",
        "stageTimestamp": f"2026-03-01T10:01:{n % 60:02d}.001000Z",
        **extra,
    }


def event_list(*items: dict[str, Any], api_version: str = "audit.k8s.io/v1") -> bytes:
    doc = {"kind": "EventList", "apiVersion": api_version, "metadata": {}, "items": list(items)}
    return orjson.dumps(doc)
