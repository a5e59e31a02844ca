"""The whole service in-process and as a subprocess: real sources, real engine, real rules.

* half of an attack over Falco gRPC (a real gRPC server speaking Falco's outputs API on a
  unix socket), half over the audit webhook, delivered out of order → the expected chain;
* ``detector run`` as a subprocess fed over HTTP, then SIGTERM → exit 0, chain flushed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections import deque
from pathlib import Path

import aiohttp
import orjson

from correlation.engine import Engine, EngineConfig
from correlation.rules import builtin_rules_paths, load_rules
from detector import config as cfg
from detector.commands.run import serve
from detector.metrics import Metrics
from tests.integration.falco_grpc.fake_falco import FakeFalco
from tests.integration.falco_grpc.fake_falco import serve as serve_falco
from tests.integration.run import scenario

JSON = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def chains(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def wait_ready(url: str, limit_s: float = 20.0) -> None:
    async with asyncio.timeout(limit_s), aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)


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
            "outbox.path": str(tmp_path / "outbox.sqlite3"),
        },
    )
    metrics = Metrics()
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig(lateness_ns=60 * 10**9))
    service = asyncio.create_task(serve(config, engine, metrics))
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url)
        # the last step first: the audit event, over the webhook
        async with aiohttp.ClientSession() as session:
            body = orjson.dumps(scenario.event_list())
            async with session.post(url + "/k8s-audit", data=body, headers=JSON) as response:
                assert response.status == 200
        # then the Falco half over gRPC, token read before the recon that preceded it
        for alert in reversed(scenario.falco_alerts()):
            alerts.append(scenario.grpc_response(alert))
        async with asyncio.timeout(10):
            while metrics.value("detector_events_in_total", {"source": "falco_grpc"}) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)  # the service's own handler: graceful stop
        async with asyncio.timeout(15):
            await service
    finally:
        service.cancel()
        await grpc_server.stop(None)
    found = [c for c in chains(output) if c["rule"] == scenario.RULE]
    assert len(found) == 1, chains(output)
    steps = found[0]["steps"]
    assert [s["step"] for s in steps] == ["recon", "token-read", "cross-namespace-api"]  # type: ignore[index]
    assert [s["source"] for s in steps] == ["falco", "falco", "k8s_audit"]  # type: ignore[index]
    assert metrics.value("detector_chains_emitted_total", {"rule": scenario.RULE}) == 1
    assert metrics.value("detector_events_in_total", {"source": "k8s_audit"}) == 1


async def test_subprocess_sigterm_exits_zero_and_flushes_chains(tmp_path: Path) -> None:
    port, output = free_port(), tmp_path / "chains.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "detector.cli", "run",
        "--listen", f"127.0.0.1:{port}", "--output", str(output),
        env={
            **env,
            "DETECTOR_SHUTDOWN_GRACE_S": "5",
            "DETECTOR_OUTBOX__PATH": str(tmp_path / "outbox.sqlite3"),
            "DETECTOR_CHECKPOINT__PATH": str(tmp_path / "engine.ckpt"),
        },
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url)
        async with aiohttp.ClientSession() as session:
            body = orjson.dumps(scenario.event_list())
            async with session.post(url + "/k8s-audit", data=body, headers=JSON) as response:
                assert response.status == 200
            for alert in scenario.falco_alerts():
                async with session.post(url + "/falco", json=alert) as response:
                    assert response.status == 200
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert [c["rule"] for c in chains(output)].count(scenario.RULE) == 1
    logs = [orjson.loads(line) for line in stderr.splitlines() if line.startswith(b"{")]
    assert any(entry["event"] == "shutdown_complete" for entry in logs), stderr.decode()[-3000:]
