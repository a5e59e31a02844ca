"""Scale-out path on the real broker: relays produce keyed event batches, a worker consumes.

A relay-mode service takes the Falco half of an attack on ``/falco`` and the audit half
on ``/k8s-audit`` and produces them to a topic; the raw messages are keyed by
namespace with the ``events/v1`` schema header and the relay's id, and every partition
gets progress markers up to the newest event. A correlating service with
``sources.kafka_events`` (consumer group, markers skipped) then confirms the chain.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer

from detector import config as cfg
from detector.commands.run import serve
from detector.metrics import Metrics
from detector.relay import wire
from tests.integration.run import scenario
from tests.integration.support import (
    chains,
    free_port,
    post_json,
    serving,
    shipped_engine,
    stop_in_process,
    wait_ready,
)


async def _relay_attack(bootstrap: str, topic: str) -> Metrics:
    port = free_port()
    config = cfg.load(
        environ={},
        overrides={
            "mode": "relay",
            "http.listen": f"127.0.0.1:{port}",
            "relay.kafka": {
                "bootstrap_servers": [bootstrap],
                "topic": topic,
                "timeout_s": 10,
                "relay_id": "node-a",
                "progress_interval_s": 0.1,
            },
            "relay.linger_s": 0.05,
        },
    )
    metrics = Metrics()
    async with serving(config, None, metrics) as url:
        async with aiohttp.ClientSession() as session:
            for alert in scenario.falco_alerts():
                await post_json(session, url + "/falco", alert)
            await post_json(session, url + "/k8s-audit", scenario.event_list())
        async with asyncio.timeout(30):
            while metrics.value("detector_relay_events_sent_total", {"transport": "kafka"}) < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # ten progress intervals: markers for the newest event
    return metrics


def _batches(messages: list[Any]) -> list[Any]:
    return [m for m in messages if dict(m.headers)["schema"] == wire.SCHEMA.encode()]


async def _messages(bootstrap: str, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        found: list[Any] = []
        async with asyncio.timeout(20):
            while sum(len(wire.decode(m.value)) for m in _batches(found)) < 3:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found.extend(records)
        return found
    finally:
        await asyncio.wait_for(consumer.stop(), 10)


def _newest(batches: list[Any]) -> int:
    return max(e.time_ns for m in batches for e in wire.decode(m.value))


async def _wait_progress(bootstrap: str, topic: str, newest_ns: int) -> None:
    """Every partition (3, the broker's default) got a marker for the newest event."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        marked: set[int] = set()
        async with asyncio.timeout(20):
            while len(marked) < 3:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for m in records:
                        if dict(m.headers)["schema"] == wire.PROGRESS_SCHEMA.encode():
                            marker = wire.decode_progress(m.value)
                            assert marker.relay == "node-a"
                            if marker.time_ns == newest_ns:
                                marked.add(m.partition)
    finally:
        await asyncio.wait_for(consumer.stop(), 10)


async def _correlate(bootstrap: str, topic: str, tmp_path: Path) -> Metrics:
    port = free_port()
    config = cfg.load(
        environ={},
        overrides={
            "http.listen": f"127.0.0.1:{port}",
            "sources.kafka_events": {"bootstrap_servers": [bootstrap], "topic": topic},
            "output": str(tmp_path / "chains.jsonl"),
            "engine.idle_advance_s": 0.05,
            "outbox.path": str(tmp_path / "outbox.sqlite3"),
            # no checkpoint: the graceful stop flushes pending chains (the end of the input),
            # and no state is written into the working directory
            "checkpoint.path": "",
        },
    )
    metrics = Metrics()
    service = asyncio.create_task(serve(config, shipped_engine(), metrics))
    try:
        await wait_ready(f"http://127.0.0.1:{port}", limit_s=30)
        async with asyncio.timeout(30):
            while metrics.value("detector_events_in_total", {"source": "kafka_events"}) < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await stop_in_process(service)
    finally:
        service.cancel()
        await asyncio.gather(service, return_exceptions=True)
    return metrics


async def test_relay_to_topic_keyed_by_identity_then_worker_confirms(
    kafka: Any, topic: str, tmp_path: Path
) -> None:
    relay_metrics = await _relay_attack(kafka.bootstrap, topic)
    assert relay_metrics.value("detector_dropped_events_total", {"reason": "relay_rejected"}) == 0
    messages = await _messages(kafka.bootstrap, topic)
    # pod shop/web-0 and its service account shop:web share the key "shop"
    assert {m.key for m in _batches(messages)} == {b"shop"}
    assert all(dict(m.headers)["relay"] == b"node-a" for m in messages)
    await _wait_progress(kafka.bootstrap, topic, _newest(_batches(messages)))
    metrics = await _correlate(kafka.bootstrap, topic, tmp_path)
    found = [c for c in chains(tmp_path / "chains.jsonl") if c["rule"] == scenario.RULE]
    assert len(found) == 1, found
    assert metrics.value("detector_chains_emitted_total", {"rule": scenario.RULE}) == 1
