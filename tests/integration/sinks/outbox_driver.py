"""Subprocess driver for the SIGKILL test: submit records to a Kafka-backed Delivery.

Usage: python -m tests.integration.sinks.outbox_driver OUTBOX BOOTSTRAP TOPIC FIRST LAST run|drain

Prints ``submitted <id>`` once each record is durable. ``run`` keeps delivering until
killed; ``drain`` closes with a grace period after submitting and prints ``left <n>``.
"""

from __future__ import annotations

import asyncio
import sys

from detector.delivery.loops import Delivery
from detector.sinks.config import decode
from tests.unit.sinks.records import make_record


async def main(outbox: str, bootstrap: str, topic: str, first: int, last: int, mode: str) -> None:
    retry = {"initial_s": 0.2, "max_s": 1.0}
    sink = {"type": "kafka", "bootstrap_servers": [bootstrap], "topic": topic, "timeout_s": 3}
    delivery = Delivery(decode({"outbox": {"path": outbox, "retry": retry}, "sinks": [sink]}))
    runner = asyncio.create_task(delivery.run())
    for i in range(first, last):
        record = make_record(i)
        await delivery.submit(record)
        print("submitted", record["id"], flush=True)
    if mode == "run":
        await runner
    await delivery.close(grace_s=45)
    left = sum((await _pending(outbox)).values())
    print("left", left, flush=True)
    runner.cancel()


async def _pending(path: str) -> dict[str, int]:
    from detector.delivery.outbox import Outbox
    from detector.sinks.config import OutboxConfig

    outbox = Outbox(OutboxConfig(path=path))
    await outbox.open()
    try:
        return await outbox.pending_counts()
    finally:
        await outbox.close()


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(a[0], a[1], a[2], int(a[3]), int(a[4]), a[5]))
