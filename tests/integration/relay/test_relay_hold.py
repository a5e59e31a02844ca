"""The relay worker's container resolution and progress, with a recording forwarder.

The forwarder is a test double of our own two-method protocol (the Kafka one is
exercised on the real broker in tests/integration/sinks/test_relay_kafka.py); what is
under test here is the worker's loop: a container-only alert waits for its pod, goes
on unresolved once its hold passed in clock time, and holds progress back meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from correlation.event import FALCO, Event, Identity
from detector.metrics import Metrics
from detector.pipeline import EventQueue
from detector.relay.config import RelayConfig
from detector.relay.route import ContainerResolver
from detector.relay.worker import Relay

SECOND = 1_000_000_000


class Recording:
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[Event] = []
        self.marks: list[int] = []

    async def send(self, events: Sequence[Event]) -> None:
        self.sent.extend(events)

    async def mark(self, time_ns: int) -> None:
        self.marks.append(time_ns)

    async def close(self) -> None:
        return None


def _alert(t: int, pod: str = "", cid: str = "c1") -> Event:
    actor = Identity(namespace="shop" if pod else "", pod=pod, container_id=cid, node="n1")
    return Event(time_ns=t * SECOND, source=FALCO, id=f"f{t}", rule="shell", actor=actor)


async def _run(events: list[Event], hold_s: float, until: int) -> tuple[Recording, Relay]:
    metrics = Metrics()
    queue = EventQueue(100, metrics)
    forwarder = Recording()
    relay = Relay(
        queue, forwarder, RelayConfig(linger_s=0.01), metrics, ContainerResolver(hold_s, 10, 10)
    )
    task = asyncio.create_task(relay.run())
    try:
        assert queue.offer("test", events)
        async with asyncio.timeout(10):
            while len(forwarder.sent) < until:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return forwarder, relay


async def test_held_alert_is_sent_resolved_once_its_pod_is_known() -> None:
    forwarder, relay = await _run([_alert(10), _alert(11, pod="web-0")], hold_s=30.0, until=2)
    teacher, held = forwarder.sent
    assert teacher.id == "f11" and held.id == "f10" and held.actor.pod == "web-0"
    assert relay.progress_ns() == 11 * SECOND


async def test_held_alert_goes_on_unresolved_after_its_hold_in_clock_time() -> None:
    forwarder, relay = await _run([_alert(10, pod="web-0", cid="c0"), _alert(10)], 0.2, until=1)
    assert [e.id for e in forwarder.sent] == ["f10"] and forwarder.sent[0].actor.pod == "web-0"
    assert relay.progress_ns() == 10 * SECOND - 1  # the held alert holds progress back
    forwarder, relay = await _run([_alert(10)], hold_s=0.2, until=1)
    assert forwarder.sent[0].actor.pod == "" and relay.progress_ns() == 10 * SECOND
