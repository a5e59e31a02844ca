"""What a relay stopped in the middle of a send counts as lost: the unsent events, unless
the intake log keeps them for the restart.

A real :class:`~detector.relay.worker.Relay` and HTTP forwarder in this loop, posting to a
real aiohttp server on loopback that holds every request open (a correlator that hangs),
cancelled the way the supervisor cancels it at the end of the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from aiohttp import web
from structlog.testing import capture_logs

from correlation.event import Event
from detector.delivery.checkpoint import Checkpointer
from detector.metrics import Metrics
from detector.pipeline import EventQueue
from detector.relay.config import RelayConfig, RelayHttpConfig
from detector.relay.settled import Settlement
from detector.relay.worker import build_relay
from tests.integration.support import receiving

EVENTS = 7


def events() -> list[Event]:
    return [
        Event(time_ns=1_772_359_200_000_000_000 + n, source="falco", id=f"e-{n}")
        for n in range(EVENTS)
    ]


async def stopped_mid_send(tmp_path: Path, logged: bool) -> tuple[Metrics, list[str]]:
    metrics = Metrics()
    queue = EventQueue(100, metrics)
    released = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await released.wait()  # until the test is done with the relay
        return web.Response(status=200)

    async with receiving("/events", hang) as url:
        config = RelayConfig(http=RelayHttpConfig(endpoint=url, timeout_s=60), linger_s=0.01)
        relay = build_relay(config, queue, metrics)
        if logged:
            checkpointer = Checkpointer(tmp_path / "relay.ckpt")
            relay.keep(Settlement(lambda source: source == "falco_http"), checkpointer)
        assert queue.offer("falco_http", events())
        task = asyncio.create_task(relay.run())
        with capture_logs() as logs:
            async with asyncio.timeout(10):
                while len(queue):  # noqa: ASYNC110 - the relay takes the batch
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # its POST is on the wire, held by the server
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        released.set()
    return metrics, [entry["event"] for entry in logs]


async def test_without_the_log_the_unsent_batch_is_counted_lost(tmp_path: Path) -> None:
    metrics, logged = await stopped_mid_send(tmp_path, logged=False)
    assert metrics.value("detector_dropped_events_total", {"reason": "relay_shutdown"}) == EVENTS
    assert "relay_batch_unsent" in logged


async def test_with_the_log_the_unsent_batch_is_kept_not_counted(tmp_path: Path) -> None:
    metrics, logged = await stopped_mid_send(tmp_path, logged=True)
    assert metrics.value("detector_dropped_events_total", {"reason": "relay_shutdown"}) == 0
    assert "relay_kept_for_restart" in logged


async def test_a_stop_that_meets_an_arriving_event_still_stops_the_relay() -> None:
    """The supervisor cancels the relay once; if that cancellation lands in the same loop
    step as an event's arrival, the relay must stop all the same (Python 3.11's
    ``asyncio.wait_for`` returned the event and swallowed the cancellation: the relay went
    on waiting for the next event, and the service's stop waited for it)."""
    metrics = Metrics()
    queue = EventQueue(100, metrics)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(status=200)

    async with receiving("/events", ok) as url:
        config = RelayConfig(http=RelayHttpConfig(endpoint=url), linger_s=30)
        relay = build_relay(config, queue, metrics)
        task = asyncio.create_task(relay.run())
        first, second = events()[:2]
        assert queue.offer("falco_http", [first])
        await asyncio.sleep(0.1)  # the relay took it and lingers for more to fill its batch
        assert relay.running and not len(queue)
        assert queue.offer("falco_http", [second])  # wakes the relay's wait ...
        task.cancel()  # ... and the stop arrives in the same step
        done, _ = await asyncio.wait([task], timeout=5)
        assert task in done, "the relay ignored its cancellation"
        assert task.cancelled()
