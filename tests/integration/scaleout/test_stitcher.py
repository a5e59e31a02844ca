"""The stitcher on the real broker: incidents joined across partitions, failover, once.

Two chains decided on different partitions (each with its partition's own incident id)
share a service account; the stitcher gives both one incident and delivers them
through the real outbox to a file sink. A second stitcher then takes over the group:
it rebuilds the incidents by replay, delivers nothing twice, and stitches a third
chain into the same incident.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from correlation.chain import SCHEMA_V1
from detector.delivery.loops import Delivery
from detector.sinks.config import DeliveryConfig, FileSinkConfig, OutboxConfig
from detector.worker.config import WorkerConfig
from detector.worker.stitcher import Stitcher

HOUR_NS = 3600 * 1_000_000_000


def _record(chain: str, incident: str, pods: list[str], sa: str, minute: int) -> dict[str, Any]:
    time = f"2026-03-02T10:{minute:02d}:00Z"
    return {
        "schema": SCHEMA_V1, "id": chain, "incident": incident, "rule": "exec-pivot",
        "title": "t", "severity": "high", "techniques": [], "first_seen": time,
        "last_seen": time, "path": pods,
        "entities": {"pods": sorted(pods), "service_accounts": [sa], "namespaces": [],
                     "nodes": [], "ips": []},
        "steps": [{"step": "exec", "source": "k8s_audit", "time": time, "event_id": chain,
                   "summary": ""}],
    }  # fmt: skip


async def _publish(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(topic, orjson.dumps(record), key=record["id"].encode())
    finally:
        await producer.stop()


def _delivered(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def _stitch_until(config: WorkerConfig, tmp: Path, count: int) -> list[dict[str, Any]]:
    out = tmp / "chains.jsonl"
    delivery = Delivery(DeliveryConfig(
        outbox=OutboxConfig(path=str(tmp / "outbox.sqlite3")),
        sinks=[FileSinkConfig(name="file", path=str(out))],
    ))  # fmt: skip
    stitcher = Stitcher(config, delivery, HOUR_NS, 1000)
    tasks = [asyncio.create_task(delivery.run()), asyncio.create_task(stitcher.run())]
    try:
        async with asyncio.timeout(30):
            while len(_delivered(out)) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # anything extra (a duplicate) would show now
    finally:
        tasks[1].cancel()
        await asyncio.gather(tasks[1], return_exceptions=True)
        await delivery.close(2.0)
        await asyncio.gather(tasks[0], return_exceptions=True)
    return _delivered(out)


async def test_stitcher_joins_partitions_and_fails_over_without_repeats(
    kafka: Any, tmp_path: Path
) -> None:
    topic = f"chains-raw-{uuid.uuid4().hex[:8]}"
    config = WorkerConfig(bootstrap_servers=[kafka.bootstrap], chains_topic=topic,
                          group_id=f"g-{uuid.uuid4().hex[:8]}", session_timeout_s=6)  # fmt: skip
    first = _record("lmc-a", "inc-from-p1", ["shop/web-0"], "shop:web", 1)
    second = _record("lmc-b", "inc-from-p4", ["shop/web-0", "pay/db-0"], "shop:web", 2)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    await admin.close()
    await _publish(kafka.bootstrap, topic, [first, second])
    delivered = await _stitch_until(config, tmp_path, 2)
    assert [r["id"] for r in delivered] == ["lmc-a", "lmc-b"]
    incident = delivered[0]["incident"]
    assert delivered[1]["incident"] == incident != "inc-from-p4"
    assert delivered[1]["path"] == ["shop/web-0", "pay/db-0"]

    third = _record("lmc-c", "inc-from-p2", ["pay/db-0", "ops/tool-0"], "pay:db", 3)
    await _publish(kafka.bootstrap, topic, [third])
    delivered = await _stitch_until(config, tmp_path, 3)
    assert [r["id"] for r in delivered] == ["lmc-a", "lmc-b", "lmc-c"]  # nothing twice
    assert delivered[2]["incident"] == incident  # state rebuilt by replay on takeover
    assert delivered[2]["path"] == ["shop/web-0", "pay/db-0", "ops/tool-0"]
