"""Alerts received over Falco's gRPC outputs API survive ``kill -9`` through the intake log.

Falco forgets an alert once it has written it to the stream, so the detector holds the
only copy from then on. Real parts: ``detector run`` as a child process subscribed over
a unix socket to a real gRPC server speaking Falco's outputs and version protos (the
fake keeps Falco's queue semantics, see fake_falco.py), the HTTP audit receiver, the
engine with the built-in rules, the intake log and the checkpoint on disk.

The recon alert comes over gRPC, the pivot over HTTP; both are in before the kill and
no checkpoint is ever written (interval one hour), so only the intake log can bring the
alert back. Without the log the chain is lost (the alert was only in memory).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from correlation.chain import rfc3339
from correlation.engine import Engine, EngineConfig
from correlation.rules import builtin_rules_paths, load_rules
from detector.parse import parse_document, parse_falco
from detector.proto import outputs_pb2
from detector.sources.falco_grpc_wire import response_to_alert
from tests.integration.falco_grpc.conftest import LOOP, eventually
from tests.integration.falco_grpc.fake_falco import FakeFalco, serve
from tests.integration.restart.test_kill9_loop import pivot
from tests.integration.support import JSON, DetectorProcess, chains

pytestmark = LOOP
RULE = "recon-token-pivot"
N = 777  # the audit pivot of the kill -9 loop test, for pod scanner-777
POD = f"scanner-{N}"


def recon(now_ns: int) -> outputs_pb2.response:
    response = outputs_pb2.response(
        priority="Warning",
        rule="LMD Network Scanner Launched in Pod",
        output="nmap in pod",
        hostname="node-1",
        tags=["network", "mitre_discovery", "T1046"],
        source="syscall",
        output_fields={
            "container.id": "0123456789ab",
            "k8s.ns.name": "shop",
            "k8s.pod.name": POD,
            "proc.name": "nmap",
        },
    )
    response.time.seconds, response.time.nanos = divmod(now_ns, 10**9)
    return response


def uninterrupted(alert: outputs_pb2.response, audit: dict[str, Any]) -> list[str]:
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig())
    found = engine.process(parse_falco(response_to_alert(alert)))
    for event in parse_document(orjson.dumps(audit)):
        found += engine.process(event)
    return [c.id for c in found + engine.flush() if c.rule == RULE]


@pytest.fixture
def service(tmp_path: Path, socket_path: Path) -> Iterator[DetectorProcess]:
    env = {
        "DETECTOR_CHECKPOINT__PATH": str(tmp_path / "engine.ckpt"),
        "DETECTOR_CHECKPOINT__INTERVAL_S": "3600",
        "DETECTOR_OUTBOX__PATH": str(tmp_path / "outbox.sqlite3"),
        "DETECTOR_ENGINE__LATENESS_BY_SOURCE": "{falco: 30, k8s_audit: 30}",
        "DETECTOR_SOURCES__FALCO_GRPC__KEEPALIVE_S": "0.02",
        "DETECTOR_SOURCES__FALCO_GRPC__BACKOFF_INITIAL_S": "0.05",
        "DETECTOR_SOURCES__FALCO_GRPC__BACKOFF_MAX_S": "0.2",
    }
    args = ["--falco-grpc", f"unix://{socket_path}", "--output", str(tmp_path / "chains.jsonl")]
    running = DetectorProcess(tmp_path, args, env)
    yield running
    running.kill()


def chain_ids(output: Path) -> list[str]:
    return [r["id"] for r in chains(output) if r["rule"] == RULE] if output.exists() else []


async def test_an_alert_received_over_grpc_is_replayed_after_kill9(
    service: DetectorProcess, socket_path: Path, tmp_path: Path
) -> None:
    output = tmp_path / "chains.jsonl"
    now = time.time_ns()
    alert, audit = recon(now), pivot(N, rfc3339((now + 10**9) // 1000 * 1000))
    falco = FakeFalco(deque([alert]))
    server, _ = await serve(falco, f"unix://{socket_path}")
    try:
        await service.started()
        # Falco wrote the alert and has since been asked again: the detector's
        # acknowledgement, which it sends only once the alert is fsync'd.
        await eventually(lambda: falco.sent == 1)
        sent_at = falco.requests
        await eventually(lambda: falco.requests > sent_at)
        async with aiohttp.ClientSession() as session:
            body = orjson.dumps(audit)
            async with session.post(service.url + "/k8s-audit", data=body, headers=JSON) as r:
                assert r.status == 200, await r.text()
        assert await service.stop(signal.SIGKILL) == -signal.SIGKILL
        assert chain_ids(output) == []  # still inside the 30 s lateness when killed
        assert falco.sent == 1 and not falco.queue  # Falco has nothing left to send again

        service.env["DETECTOR_ENGINE__LATENESS_BY_SOURCE"] = "{falco: 0.5, k8s_audit: 0.5}"
        await service.started()
        async with asyncio.timeout(20):
            while not chain_ids(output):  # noqa: ASYNC110 - the file sink writes it
                await asyncio.sleep(0.05)
        assert await service.stop(signal.SIGTERM) == 0
    finally:
        await server.stop(None)
    assert chain_ids(output) == uninterrupted(alert, audit)
    assert '"intake_log_replayed"' in service.log.read_text()
