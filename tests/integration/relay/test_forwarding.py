"""The relay worker against a real HTTP server on loopback whose answers are scripted.

The server is a real aiohttp app (not a mock) that plays a correlator in trouble: 503
with ``Retry-After``, 413 for big batches, a permanent 400. The worker must retry, honour
the hint, split, count every drop — and pass backpressure to its own HTTP receivers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from detector import config as cfg
from detector.metrics import Metrics
from detector.pipeline import EventQueue
from detector.relay import wire
from detector.relay.config import RelayConfig, RelayHttpConfig
from detector.relay.forward import HttpForwarder
from detector.relay.worker import Relay
from tests.integration.http.harness import falco_alert
from tests.integration.relay.test_events_endpoint import event
from tests.integration.support import free_port, serving

Answer = Callable[[list[str]], web.Response]


@asynccontextmanager
async def correlator_stub(answer: Answer) -> AsyncIterator[tuple[str, list[list[str]]]]:
    """Serve ``POST /events`` on loopback; ``answer(ids)`` decides each response."""
    received: list[list[str]] = []

    async def events(request: web.Request) -> web.Response:
        ids = [e.id for e in wire.decode(await request.read())]
        response = answer(ids)
        if response.status == 200:
            received.append(ids)
        return response

    app = web.Application()
    app.router.add_post("/events", events)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/events", received
    finally:
        await runner.cleanup()


@asynccontextmanager
async def relay_worker(url: str, count: int, **options: float) -> AsyncIterator[Metrics]:
    """A Relay draining ``count`` queued events to ``url``; stops once all are settled."""
    metrics = Metrics()
    queue = EventQueue(100, metrics)
    config = RelayConfig(
        http=RelayHttpConfig(endpoint=url), linger_s=0.05, backoff_initial_s=0.05, **options
    )
    assert queue.offer("test", [event(n) for n in range(count)])
    task = asyncio.create_task(Relay(queue, HttpForwarder(config), config, metrics).run())
    try:
        async with asyncio.timeout(10):
            await queue.drained()
        yield metrics
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_503_with_retry_after_is_retried_after_the_hint() -> None:
    calls: list[float] = []

    def answer(ids: list[str]) -> web.Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return web.json_response(
                {"error": "shutting_down"}, status=503, headers={"Retry-After": "1"}
            )
        return web.json_response({"accepted": len(ids)})

    async with correlator_stub(answer) as (url, received), relay_worker(url, 3) as metrics:
        assert received == [["falco-0", "falco-1", "falco-2"]]
    assert calls[1] - calls[0] >= 0.9  # waited for Retry-After, not the 0.05 s backoff
    assert metrics.value("detector_relay_retries_total", {"transport": "http"}) == 1
    assert metrics.value("detector_relay_events_sent_total", {"transport": "http"}) == 3


async def test_413_splits_the_batch_and_keeps_order() -> None:
    def answer(ids: list[str]) -> web.Response:
        if len(ids) > 2:
            return web.json_response({"error": "too_many_events"}, status=413)
        return web.json_response({"accepted": len(ids)})

    async with correlator_stub(answer) as (url, received), relay_worker(url, 5) as metrics:
        flat = [i for ids in received for i in ids]
    assert flat == [f"falco-{n}" for n in range(5)]
    assert all(len(ids) <= 2 for ids in received)
    assert metrics.value("detector_relay_events_sent_total", {"transport": "http"}) == 5


async def test_permanent_refusal_drops_and_counts() -> None:
    def answer(ids: list[str]) -> web.Response:
        return web.json_response({"error": "unauthorized"}, status=401)

    async with correlator_stub(answer) as (url, received), relay_worker(url, 2) as metrics:
        assert received == []
    assert metrics.value("detector_dropped_events_total", {"reason": "relay_rejected"}) == 2
    assert metrics.value("detector_relay_retries_total", {"transport": "http"}) == 0


async def test_unreachable_correlator_backpressures_to_falco_with_429() -> None:
    port = free_port()
    config = cfg.load(
        environ={},
        overrides={
            "mode": "relay",
            "http.listen": f"127.0.0.1:{port}",
            "relay.http.endpoint": f"http://127.0.0.1:{free_port()}/events",  # nobody there
            "relay.max_batch_events": 2,
            "relay.backoff_initial_s": 0.1,
            "relay.backoff_max_s": 0.2,
            "buffer.max_events": 3,
        },
    )
    metrics = Metrics()
    statuses: list[int] = []
    async with serving(config, None, metrics) as url, aiohttp.ClientSession() as session:
        for n in range(8):
            async with session.post(url + "/falco", json=falco_alert(n)) as response:
                statuses.append(response.status)
            await asyncio.sleep(0.05)  # let the relay take its first batch
    # bounded: 2 in the batch being retried + 3 queued; the rest refused, never buffered
    assert statuses.count(200) == 5 and statuses.count(429) == 3, statuses
    assert (
        metrics.value("detector_http_refused_total", {"endpoint": "/falco", "reason": "queue_full"})
        == 3
    )
    assert metrics.value("detector_relay_retries_total", {"transport": "http"}) >= 1
