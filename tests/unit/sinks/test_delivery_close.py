"""Delivery.close is bounded even when a sink swallows cancellations.

The sink here is a stand-in for a library that loses a cancellation (Python 3.11's
``asyncio.wait_for`` does when its inner call ends in the same instant as the cancel;
aiokafka runs on it): a real outbox and real delivery loops around it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from detector.cancelling import CANCEL_ROUND_S
from detector.delivery import loops
from detector.delivery.loops import Delivery
from detector.sinks import registry
from detector.sinks.config import decode
from tests.unit.sinks.records import make_record


class Stubborn:
    """A sink whose send never ends by itself and swallows its first ``swallow`` cancels."""

    swallow = 0

    def __init__(self, config: Any, formatter: Any, metrics: Any) -> None:
        self.name = config.name
        self.swallowed = 0
        self.task: asyncio.Task[Any] | None = None
        SENT.append(self)

    async def deliver(self, record: dict[str, Any]) -> None:
        self.task = asyncio.current_task()
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.swallowed >= self.swallow:
                    raise
                self.swallowed += 1

    async def close(self) -> None:
        pass


SENT: list[Stubborn] = []


@pytest.fixture
def stubborn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Delivery:
    SENT.clear()
    monkeypatch.setitem(registry.SINKS, "file", Stubborn)
    sink = {"type": "file", "path": str(tmp_path / "never-written")}
    return Delivery(decode({"outbox": {"path": str(tmp_path / "o.sqlite3")}, "sinks": [sink]}))


async def delivering(delivery: Delivery) -> None:
    """Submit one record and wait until the sink holds it."""
    await delivery.submit(make_record(1))
    async with asyncio.timeout(10):
        while not SENT or SENT[0].task is None:  # noqa: ASYNC110 - the loop calls the sink
            await asyncio.sleep(0.01)


async def test_one_swallowed_cancel_is_sent_again(stubborn: Delivery) -> None:
    Stubborn.swallow = 1
    runner = asyncio.create_task(stubborn.run())
    await delivering(stubborn)
    started = asyncio.get_running_loop().time()
    with capture_logs() as logs:
        await stubborn.close(grace_s=0.2)
    took = asyncio.get_running_loop().time() - started
    assert SENT[0].swallowed == 1 and runner.done()
    assert took < 0.2 + 2 * CANCEL_ROUND_S + 1  # one round more; 1 s for a slow machine
    assert "delivery_loops_ignored_cancel" not in [e["event"] for e in logs]
    assert [e["pending"] for e in logs if e["event"] == "delivery_incomplete_at_close"] == [
        {"file": 1}  # kept in the outbox for the next run
    ]


async def test_a_loop_that_ignores_every_cancel_is_abandoned(
    stubborn: Delivery, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loops, "CANCEL_WAIT_S", 1.0)
    Stubborn.swallow = 10**6
    await stubborn.submit(make_record(1))  # close() runs the loops itself: none was running
    started = asyncio.get_running_loop().time()
    closing = asyncio.create_task(stubborn.close(grace_s=0.2))
    async with asyncio.timeout(10):
        while not SENT or SENT[0].task is None:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    with capture_logs() as logs:
        await asyncio.wait_for(closing, 10)
    took = asyncio.get_running_loop().time() - started
    assert took < 0.2 + 1.0 + 1  # grace, then CANCEL_WAIT_S; 1 s for a slow machine
    stuck = [e for e in logs if e["event"] == "delivery_loops_ignored_cancel"]
    assert stuck and stuck[0]["tasks"] == ["sink:file"], logs
    assert SENT[0].swallowed >= 2  # every round cancelled it again
    Stubborn.swallow = 0  # let the test's loop end it
    assert SENT[0].task is not None
    SENT[0].task.cancel()
    await asyncio.gather(SENT[0].task, return_exceptions=True)


async def test_a_cancel_that_meets_the_wake_up_is_not_lost() -> None:
    """The moment that hung tests/integration/sinks/test_webhook.py: a sink loop's idle wait
    cancelled in the instant its wake-up event is set. ``asyncio.wait_for`` on Python 3.11
    returns the event's result there and the loop idled on, deaf to its TaskGroup."""
    event = asyncio.Event()
    waiting = asyncio.create_task(loops._woken(event, 5.0))
    await asyncio.sleep(0)  # it is waiting for the event now
    event.set()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
