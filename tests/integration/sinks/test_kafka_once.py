"""A chain is in the Kafka topic once, even when the outbox re-sends it.

The re-send a kill causes: the broker acknowledged a record, the process died before the
outbox committed that acknowledgement, and the next run's outbox still owes it. Here the
first run is a sink that sent the record while the outbox row stayed pending (exactly
what the kill leaves on disk); the second run is a fresh Delivery over that outbox. Real
broker (the suite starts it), real producer and consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.delivery.loops import Delivery
from detector.metrics import Metrics
from detector.sinks.config import KafkaSinkConfig, decode
from detector.sinks.formats import formatter
from detector.sinks.kafka import KafkaSink
from tests.integration.sinks.kafka_util import consume_until
from tests.unit.sinks.records import make_record

pytestmark = pytest.mark.integration


def config(tmp_path: Path, bootstrap: str, topic: str, **sink: Any) -> Any:
    kafka = {"type": "kafka", "bootstrap_servers": [bootstrap], "topic": topic, "timeout_s": 10}
    return decode(
        {
            "outbox": {"path": str(tmp_path / "outbox.sqlite3")},
            "sinks": [{**kafka, **sink}],
        }
    )


async def send_before_the_kill(delivery_config: Any, record: dict[str, Any]) -> None:
    """What the killed run did: the broker has the record, the outbox still owes it."""
    sink_config = delivery_config.effective_sinks[0]
    assert isinstance(sink_config, KafkaSinkConfig)
    sink = KafkaSink(sink_config, formatter(sink_config.format))
    try:
        await sink.deliver(record)
    finally:
        await sink.close()


async def restart_and_deliver(delivery: Delivery, records: list[dict[str, Any]]) -> None:
    task = asyncio.create_task(delivery.run())
    try:
        for record in records:
            await delivery.submit(record)
        async with asyncio.timeout(60):
            while any((await delivery.outbox.pending_counts()).values()):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    finally:
        await delivery.close(grace_s=15)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def owed_then_sent(tmp_path: Path, bootstrap: str, topic: str, **sink: Any) -> Counter[str]:
    """Chain ids in the topic after: the first record owed and already sent, a restart,
    then two new records."""
    settings = config(tmp_path, bootstrap, topic, **sink)
    sent, later = make_record(1), [make_record(2), make_record(3)]
    first = Delivery(settings)
    await first.outbox.open()
    await first.submit(sent)  # committed to the outbox, not yet delivered
    await first.outbox.close()
    await send_before_the_kill(settings, sent)

    metrics = Metrics()
    await restart_and_deliver(Delivery(settings, metrics), [sent, *later])
    want = {r["id"] for r in [sent, *later]}
    messages = await consume_until(bootstrap, topic, want)
    await asyncio.sleep(1.0)  # a late duplicate would be in the topic by now
    messages = await consume_until(bootstrap, topic, want, timeout_s=2)
    return Counter(orjson.loads(m.value)["id"] for m in messages)


async def test_a_chain_owed_again_after_a_kill_is_in_the_topic_once(
    kafka: Any, topic: str, tmp_path: Path
) -> None:
    counts = await owed_then_sent(tmp_path, kafka.bootstrap, topic)
    assert sorted(counts.values()) == [1, 1, 1], counts


async def test_without_the_tail_check_the_re_send_is_a_duplicate(
    kafka: Any, topic: str, tmp_path: Path
) -> None:
    """The control: ``dedupe_tail: 0`` is at-least-once at that instant."""
    counts = await owed_then_sent(tmp_path, kafka.bootstrap, topic, dedupe_tail=0)
    assert sorted(counts.values()) == [1, 1, 2], counts
