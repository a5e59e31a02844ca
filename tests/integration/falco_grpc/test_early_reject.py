"""``detector run``'s Falco gRPC consumer parses through the rules' early reject.

Real parts: the whole service in-process (gRPC consumer, HTTP audit receiver, queue,
engine) subscribed over a unix socket to a real gRPC server speaking Falco's outputs and
version protos (fake_falco.py), with the intake log on and off, and the built-in rules.
Host alerts (no pod, container id ``host``) no built-in step can keep (they all join on
the actor's pod) reach the engine as time-only ticks: counted as events in and on
``detector_engine_time_only_total``, moving event time, never late. The attack's alerts
have an actor, so they are never ticks: the recon → token read → cross-namespace chain
is still confirmed, and an allowlisted pod's alert is still counted as suppressed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from msgspec.structs import replace

from correlation.allowlist import Allowlist
from correlation.engine import Engine
from correlation.event import FALCO, time_only
from correlation.rules import builtin_rules_paths, load_rules
from detector import config as cfg
from detector.commands.run import build_engine_config, early_reject, serve
from detector.delivery.intake_log import IntakeLog
from detector.metrics import Metrics
from detector.parse import parse_falco
from detector.proto import outputs_pb2
from detector.sources.falco_grpc_wire import response_to_alert
from tests.integration.falco_grpc.conftest import LOOP
from tests.integration.falco_grpc.fake_falco import FakeFalco
from tests.integration.falco_grpc.fake_falco import serve as serve_falco
from tests.integration.run import scenario
from tests.integration.support import chains, free_port, post_json, stop_in_process, wait_ready

pytestmark = LOOP
NOISE = 30  # host alerts nothing can use
LISTED = 1  # an allowlisted pod's alert
GRPC = {"source": "falco_grpc"}


def host_alert(n: int, time: str) -> dict[str, Any]:
    """Log files cleared on the node itself (no pod, container id ``host``)."""
    return {
        "time": time,
        "rule": "Clear Log Activities" if n % 2 else "Read sensitive file untrusted",
        "priority": "Warning",
        "source": "syscall",
        "hostname": f"node-{n % 3}",
        "tags": ["T1070", "host", "filesystem"] if n % 2 else ["T1555", "host"],
        "output_fields": {
            "container.id": "host",
            "proc.name": "rm",
            "evt.type": "unlinkat",
            "proc.cmdline": f"rm -f /var/log/app-{n}.log",
        },  # fmt: skip
    }


def listed_alert(time: str) -> dict[str, Any]:
    """A monitoring pod's alert: it has an actor (never a tick) and the allowlist has it."""
    alert = host_alert(1, time)
    alert["output_fields"] |= {"container.id": "77aa88bb99cc", "k8s.ns.name": "monitoring",
                               "k8s.pod.name": "node-exporter-1"}  # fmt: skip
    return alert


def engine(config: cfg.Config) -> Engine:
    rules = load_rules(builtin_rules_paths())
    allowlist = Allowlist(namespaces=("monitoring",))
    return Engine(rules, replace(build_engine_config(config.engine), allowlist=allowlist))


def service_config(tmp_path: Path, socket_path: Path, logged: bool) -> cfg.Config:
    overrides = {
        "http.listen": f"127.0.0.1:{free_port()}",
        "sources.falco_grpc.endpoint": f"unix://{socket_path}",
        "sources.falco_grpc.keepalive_s": 0.02,
        "output": str(tmp_path / "chains.jsonl"),
        "engine.idle_advance_s": 0.05,
        "outbox.path": str(tmp_path / "outbox.sqlite3"),
        # no checkpoint: the graceful stop flushes pending chains (the end of the input)
        "checkpoint.path": str(tmp_path / "engine.ckpt") if logged else "",
    }
    if logged:
        overrides["intake_log.path"] = str(tmp_path / "intake")
    return cfg.load(environ={}, overrides=overrides)


def responses() -> list[outputs_pb2.response]:
    """Noise around the attack's two alerts, all within the attack's first 0.1 s."""
    recon, token = scenario.falco_alerts()
    noise = [host_alert(n, recon["time"]) for n in range(NOISE)]
    alerts = [*noise[: NOISE // 2], recon, listed_alert(token["time"]), token,
              *noise[NOISE // 2 :]]  # fmt: skip
    return [scenario.grpc_response(_as_grpc(alert)) for alert in alerts]


def _as_grpc(alert: dict[str, Any]) -> dict[str, Any]:
    return alert | {"output_fields": {k: str(v) for k, v in alert["output_fields"].items()}}


@pytest.mark.parametrize("logged", [False, True], ids=["queue", "intake-log"])
async def test_unwanted_grpc_alerts_tick_and_the_chain_is_confirmed(
    tmp_path: Path, socket_path: Path, logged: bool
) -> None:
    queue: deque[outputs_pb2.response] = deque()
    grpc_server, _ = await serve_falco(FakeFalco(queue), f"unix://{socket_path}")
    config = service_config(tmp_path, socket_path, logged)
    metrics, running = Metrics(), engine(config)
    service = asyncio.create_task(serve(config, running, metrics))
    try:
        url = f"http://{config.http.listen}"
        await wait_ready(url)
        queue.extend(responses())
        async with asyncio.timeout(10):  # the alerts first, then the audit event they precede
            while metrics.value("detector_events_in_total", GRPC) < NOISE + 3:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        async with aiohttp.ClientSession() as session:
            await post_json(session, url + "/k8s-audit", scenario.event_list())
        output = tmp_path / "chains.jsonl"
        async with asyncio.timeout(10):
            while not (output.exists() and output.stat().st_size):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        await stop_in_process(service)
    finally:
        service.cancel()
        await grpc_server.stop(None)
    found = [c for c in chains(output) if c["rule"] == scenario.RULE]
    assert [[s["step"] for s in c["steps"]] for c in found] == [
        ["recon", "token-read", "cross-namespace-api"]
    ]
    stats = running.stats()
    assert stats.time_only == NOISE  # exactly the host alerts; nothing of the attack
    assert stats.events == NOISE + LISTED + 3  # every alert and the audit event counted
    assert stats.suppressed == LISTED
    assert metrics.value("detector_engine_suppressed_total") == LISTED
    assert metrics.value("detector_engine_time_only_total") == NOISE
    assert metrics.value("detector_events_in_total", GRPC) == NOISE + 3
    assert metrics.value("detector_engine_late_events_total", {"source": "falco"}) == 0


async def test_ticks_in_the_intake_log_come_back_as_ticks(tmp_path: Path) -> None:
    # what the gRPC consumer offers the logged intake, read back as after kill -9
    early = early_reject(engine(service_config(tmp_path, tmp_path / "sock", logged=False)))
    assert early is not None
    offered = [parse_falco(response_to_alert(r), early) for r in responses()]
    assert offered.count(time_only(offered[0].time_ns, FALCO)) == NOISE  # at the recon's time
    log = IntakeLog(tmp_path / "intake", Metrics())
    assert log.append("falco_grpc", "falco_grpc", 1, offered)
    await log.synced()
    again = [
        e for _, record in IntakeLog(tmp_path / "intake", Metrics()).tail() for e in record.events
    ]
    assert again == offered and sum(1 for e in again if not e.id) == NOISE
