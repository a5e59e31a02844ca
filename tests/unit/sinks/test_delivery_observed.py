"""What an operator sees of delivery: the pending gauge, per-delivery log lines, health.

Real file and webhook sinks, a real SQLite outbox; the webhook points at a closed local
port so its failures are real connection refusals.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from detector.delivery.loops import Delivery
from detector.metrics import Metrics
from detector.sinks.config import decode
from tests.unit.sinks.records import make_record


def _delivery(tmp_path: Path, *sinks: dict[str, Any]) -> tuple[Delivery, CollectorRegistry]:
    metrics = Metrics()
    config = decode({"outbox": {"path": str(tmp_path / "outbox.sqlite3")}, "sinks": list(sinks)})
    return Delivery(config, metrics), metrics.registry


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _until(check: Any, limit_s: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def _pending(registry: CollectorRegistry, sink: str) -> float | None:
    return registry.get_sample_value("detector_outbox_pending", {"sink": sink})


async def test_pending_gauge_drops_to_zero_when_the_last_record_is_delivered(
    tmp_path: Path,
) -> None:
    out = tmp_path / "chains.jsonl"
    delivery, registry = _delivery(tmp_path, {"type": "file", "name": "f", "path": str(out)})
    for i in range(4):
        await delivery.submit(make_record(i))
    with capture_logs() as logs:
        task = asyncio.create_task(delivery.run())
        # well inside the 5 s housekeeping period: the round itself must update the gauge
        await _until(lambda: out.exists() and len(out.read_bytes().splitlines()) == 4)
        await _until(lambda: _pending(registry, "f") == 0.0, limit_s=1.0)
        await delivery.close(grace_s=2)
        await task
    delivered = [e for e in logs if e["event"] == "chain_delivered"]
    assert [e["chain_id"] for e in delivered] == [make_record(i)["id"] for i in range(4)]
    assert all(e["sink"] == "f" and e["attempt"] == 1 for e in delivered)
    assert all(isinstance(e["latency_s"], float) and e["latency_s"] >= 0 for e in delivered)


async def test_health_names_stopped_and_failing_sinks(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    delivery, registry = _delivery(
        tmp_path,
        {"type": "webhook", "name": "soc", "url": url, "timeout_s": 1},
        {"type": "file", "name": "f", "path": str(tmp_path / "out.jsonl")},
    )
    assert delivery.health() == (["soc", "f"], {})  # loops not started yet
    await delivery.submit(make_record(1))
    task = asyncio.create_task(delivery.run())
    await _until(lambda: "soc" in delivery.health()[1])
    stopped, failing = delivery.health()
    assert stopped == [] and list(failing) == ["soc"]
    assert failing["soc"].startswith("1 failed rounds, last: ")
    assert _pending(registry, "soc") == 1.0 and _pending(registry, "f") == 0.0
    await delivery.close(grace_s=0.5)
    await task
