"""Delivery into a real Apache Kafka broker, consumed back with a real consumer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from detector.delivery.loops import Delivery
from detector.sinks.config import decode
from tests.integration.sinks.kafka_util import consume_until
from tests.unit.sinks.records import make_record

pytestmark = pytest.mark.integration
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "docs/schema/chain-v1.schema.json").read_text()
)
FAST_RETRY = {"initial_s": 0.2, "max_s": 1.0, "multiplier": 2.0, "jitter": 0.1}


def delivery_for(tmp_path: Path, bootstrap: str, topic: str, **sink: Any) -> Delivery:
    config = decode(
        {
            "outbox": {"path": str(tmp_path / "outbox.sqlite3"), "retry": FAST_RETRY},
            "sinks": [
                {
                    "type": "kafka",
                    "bootstrap_servers": [bootstrap],
                    "topic": topic,
                    "timeout_s": 3,
                    **sink,
                }
            ],
        }
    )
    return Delivery(config)


@contextlib.asynccontextmanager
async def running(delivery: Delivery) -> Any:
    task = asyncio.create_task(delivery.run())
    try:
        yield delivery
    finally:
        await delivery.close(grace_s=15)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_records_arrive_with_key_headers_and_valid_schema(
    kafka: Any, topic: str, tmp_path: Path
) -> None:
    records = [make_record(i) for i in range(6)]
    async with running(delivery_for(tmp_path, kafka.bootstrap, topic, key="incident")) as d:
        for record in records:
            await d.submit(record)
        messages = await consume_until(kafka.bootstrap, topic, {r["id"] for r in records})
    by_id = {orjson.loads(m.value)["id"]: m for m in messages}
    assert set(by_id) == {r["id"] for r in records}
    for record in records:
        message = by_id[record["id"]]
        body = orjson.loads(message.value)
        jsonschema.validate(body, SCHEMA)
        assert body == record
        assert message.key == record["incident"].encode()
        headers = dict(message.headers)
        assert headers["schema"] == b"lateral-movement-chain/v1"
        assert headers["rule"] == b"recon-token-pivot"
        assert headers["severity"] == b"high"
    # key=incident: both chains of one incident share a partition, in submit order
    pair = [by_id[records[0]["id"]], by_id[records[1]["id"]]]
    assert pair[0].partition == pair[1].partition
    assert pair[0].offset < pair[1].offset


async def test_ocsf_format_on_kafka(kafka: Any, topic: str, tmp_path: Path) -> None:
    record = make_record(1)
    async with running(delivery_for(tmp_path, kafka.bootstrap, topic, format="ocsf")) as d:
        await d.submit(record)
        messages = await consume_until(kafka.bootstrap, topic, {record["id"]})
    body = orjson.loads(messages[0].value)
    assert body["class_uid"] == 2004
    assert messages[0].key == record["id"].encode()


async def test_broker_outage_stalls_but_loses_nothing(
    kafka: Any, topic: str, tmp_path: Path
) -> None:
    delivery = delivery_for(tmp_path, kafka.bootstrap, topic)
    ids = set()
    async with running(delivery) as d:
        for i in range(10):
            await d.submit(make_record(i))
            ids.add(make_record(i)["id"])
        kafka.stop(kill=True)  # outage: chains keep being confirmed meanwhile
        for i in range(10, 30):
            await d.submit(make_record(i))
            ids.add(make_record(i)["id"])
        await asyncio.sleep(2)
        assert (await d.outbox.pending_counts()).get("kafka", 0) > 0
        await asyncio.to_thread(kafka.start)
        messages = await consume_until(kafka.bootstrap, topic, ids, timeout_s=60)
    got = {orjson.loads(m.value)["id"] for m in messages}
    assert ids <= got


REPO = Path(__file__).resolve().parents[3]


async def _driver(*args: str) -> asyncio.subprocess.Process:
    """The driver as a separate process (python -m, from the repo root)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.sinks.outbox_driver",
        *args,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )


async def test_sigkill_and_restart_loses_nothing(kafka: Any, topic: str, tmp_path: Path) -> None:
    outbox = str(tmp_path / "outbox.sqlite3")
    kafka.stop()  # broker down: nothing can be delivered before the kill
    first = await _driver(outbox, kafka.bootstrap, topic, "0", "40", "run")
    assert first.stdout is not None
    durable = set()
    while len(durable) < 25:
        line = (await asyncio.wait_for(first.stdout.readline(), 30)).decode().split()
        assert line, "driver ended early"
        if line[0] == "submitted":
            durable.add(line[1])
    first.kill()  # SIGKILL mid-stream
    await first.wait()
    await asyncio.to_thread(kafka.start)
    second = await _driver(outbox, kafka.bootstrap, topic, "40", "60", "drain")
    out, _ = await asyncio.wait_for(second.communicate(), 90)
    assert second.returncode == 0, out
    expected = durable | {make_record(i)["id"] for i in range(40, 60)}
    messages = await consume_until(kafka.bootstrap, topic, expected, timeout_s=30)
    assert expected <= {orjson.loads(m.value)["id"] for m in messages}
    assert b"left 0" in out
