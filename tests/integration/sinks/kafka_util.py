"""Consume a test topic back with a real aiokafka consumer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer


async def consume_until(
    bootstrap: str, topic: str, want_ids: set[str], timeout_s: float = 30.0
) -> list[Any]:
    """Every message on ``topic`` until all ``want_ids`` (Kafka keys or chain_id header) seen."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    messages: list[Any] = []
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while not want_ids <= seen and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for message in records:
                    messages.append(message)
                    seen.add(dict(message.headers)["chain_id"].decode())
    finally:
        await asyncio.wait_for(consumer.stop(), 10)
    return messages
