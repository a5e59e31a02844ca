"""The whole service in-process and as a subprocess: real sources, real engine, real rules.

* half of an attack over Falco gRPC (a real gRPC server speaking Falco's outputs API on a
  unix socket), half over the audit webhook, delivered out of order → the expected chain;
* ``detector run`` as a subprocess fed over HTTP, then SIGTERM → exit 0, chain flushed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path

import aiohttp
import orjson

from correlation.engine import Engine
from correlation.rules import builtin_rules_paths, load_rules
from detector import config as cfg
from detector.commands.run import build_engine_config, serve
from detector.metrics import Metrics
from tests.integration.falco_grpc.fake_falco import FakeFalco
from tests.integration.falco_grpc.fake_falco import serve as serve_falco
from tests.integration.run import scenario
from tests.integration.support import (
    chains,
    free_port,
    post_json,
    spawn_run,
    stop_in_process,
    stop_process,
    wait_ready,
)


async def test_attack_half_over_grpc_half_over_webhook_out_of_order(tmp_path: Path) -> None:
    alerts = deque[object]()
    falco = FakeFalco(alerts)  # type: ignore[arg-type]
    socket_path = tmp_path / "falco.sock"
    grpc_server, _ = await serve_falco(falco, f"unix://{socket_path}")
    port, output = free_port(), tmp_path / "chains.jsonl"
    config = cfg.load(
        environ={},
        overrides={
            "http.listen": f"127.0.0.1:{port}",
            "sources.falco_grpc.endpoint": f"unix://{socket_path}",
            "output": str(output),
            "engine.idle_advance_s": 0.05,
            # both senders may run 10 s behind the clock, so arriving out of order across
            # them within 10 s changes nothing (outside it, the older step would be late)
            "engine.delivery_bound_floor_s": 10,
            "outbox.path": str(tmp_path / "outbox.sqlite3"),
            # no checkpoint: the graceful stop flushes pending chains (the end of the input),
            # and no state is written into the working directory
            "checkpoint.path": "",
        },
    )
    metrics = Metrics()
    engine = Engine(load_rules(builtin_rules_paths()), build_engine_config(config.engine))
    service = asyncio.create_task(serve(config, engine, metrics))
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url)
        # the last step first: the audit event, over the webhook
        async with aiohttp.ClientSession() as session:
            await post_json(session, url + "/k8s-audit", scenario.event_list())
        # then the Falco half over gRPC, token read before the recon that preceded it
        for alert in reversed(scenario.falco_alerts()):
            alerts.append(scenario.grpc_response(alert))
        async with asyncio.timeout(10):
            while metrics.value("detector_events_in_total", {"source": "falco_grpc"}) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        await stop_in_process(service)
    finally:
        service.cancel()
        await grpc_server.stop(None)
    found = [c for c in chains(output) if c["rule"] == scenario.RULE]
    assert len(found) == 1, chains(output)
    steps = found[0]["steps"]
    assert [s["step"] for s in steps] == ["recon", "token-read", "cross-namespace-api"]
    assert [s["source"] for s in steps] == ["falco", "falco", "k8s_audit"]
    assert metrics.value("detector_chains_emitted_total", {"rule": scenario.RULE}) == 1
    assert metrics.value("detector_events_in_total", {"source": "k8s_audit"}) == 1


async def test_subprocess_sigterm_exits_zero_and_flushes_chains(tmp_path: Path) -> None:
    """Without a checkpoint, SIGTERM is the end of the input: pending chains are flushed.
    (With one they stay in it for the restart: tests/integration/restart.)"""
    port, output = free_port(), tmp_path / "chains.jsonl"
    process = await spawn_run(
        "--listen", f"127.0.0.1:{port}", "--output", str(output),
        env={
            "DETECTOR_SHUTDOWN_GRACE_S": "5",
            "DETECTOR_OUTBOX__PATH": str(tmp_path / "outbox.sqlite3"),
            "DETECTOR_CHECKPOINT__PATH": "",
        },
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url)
        async with aiohttp.ClientSession() as session:
            for alert in scenario.falco_alerts():
                await post_json(session, url + "/falco", alert)
            await post_json(session, url + "/k8s-audit", scenario.event_list())
    finally:
        stderr = await stop_process(process)  # SIGTERM: the graceful stop under test
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert [c["rule"] for c in chains(output)].count(scenario.RULE) == 1
    logs = [orjson.loads(line) for line in stderr.splitlines() if line.startswith(b"{")]
    assert any(entry["event"] == "shutdown_complete" for entry in logs), stderr.decode()[-3000:]
