"""``POST /events`` on a real HttpServer: accepted batches round-trip, bad input gets a 4xx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import orjson
import pytest

from correlation.event import Event, Identity
from detector.config import HttpConfig
from detector.delivery.intake import Intake
from detector.metrics import Metrics
from detector.pipeline import EventQueue
from detector.relay import wire
from detector.sources.events import EventsReceiver
from detector.sources.http_server import HttpServer
from tests.integration.http.harness import Harness

TOKEN = "events-token"  # noqa: S105 - a test credential on loopback
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def event(n: int) -> Event:
    pod = Identity(namespace="shop", pod=f"web-{n}", container_id="0a1b2c3d4e5f", ips=("10.0.0.7",))
    return Event(
        time_ns=1_772_359_200_000_000_000 + n,
        source="falco",
        id=f"falco-{n}",
        rule="Launch Suspicious Network Tool in Container",
        tags=("T1046",),
        actor=pod,
        fields={"proc.name": "nmap"},
    )


@asynccontextmanager
async def events_server(max_events: int = 4) -> AsyncIterator[Harness]:
    metrics = Metrics()
    queue = EventQueue(max_events, metrics)
    config = HttpConfig(listen="127.0.0.1:0", bearer_token=TOKEN)
    server = HttpServer(config, [EventsReceiver(64 * 1024)], Intake(queue), metrics)
    task = asyncio.create_task(server.run(queue.emitter("unused")))
    try:
        async with asyncio.timeout(5):
            while not server.ready():  # noqa: ASYNC110 - the server flips it when bound
                await asyncio.sleep(0.01)
        yield Harness(server, queue, metrics)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def post(url: str, body: bytes, headers: dict[str, str] = HEADERS) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/events", data=body, headers=headers) as response:
            return response.status, orjson.loads(await response.read())


async def test_batch_round_trips_into_the_queue() -> None:
    sent = [event(1), event(2)]
    async with events_server() as harness:
        status, answer = await post(harness.url, wire.encode(sent))
        assert (status, answer) == (200, {"accepted": 2})
        assert [harness.queue.get_nowait() for _ in sent] == sent
        assert harness.metrics.value("detector_events_in_total", {"source": "events"}) == 2


def batch(*events: dict[str, object], schema: str = wire.SCHEMA, **extra: object) -> bytes:
    return orjson.dumps({"schema": schema, "events": list(events), **extra})


BAD = [
    (b"{not json", 400, "malformed_json"),
    (b"[]", 400, "bad_event_batch"),
    (batch({"source": "falco"}), 400, "bad_event_batch"),
    (batch(schema="lateral-chain-detector/events/v9"), 400, "unknown_schema"),
    (batch(extra=1), 400, "bad_event_batch"),
    (batch({"time_ns": 1, "source": "syslog", "id": "x"}), 400, "bad_event"),
    (batch({"time_ns": 0, "source": "falco", "id": "x"}), 400, "bad_event"),
    (batch({"time_ns": 1, "source": "falco", "id": ""}), 400, "bad_event"),
    (wire.encode([event(n) for n in range(5)]), 413, "too_many_events"),
]


@pytest.mark.parametrize(("body", "status", "reason"), BAD)
async def test_bad_batches_get_a_4xx_with_reason(body: bytes, status: int, reason: str) -> None:
    async with events_server() as harness:
        got, answer = await post(harness.url, body)
        assert (got, answer["error"]) == (status, reason), answer
        assert len(harness.queue) == 0
        labels = {"endpoint": "/events", "status": str(status)}
        assert harness.metrics.value("detector_http_rejects_total", labels) == 1


async def test_token_content_type_and_queue_full() -> None:
    async with events_server(max_events=4) as harness:
        body = wire.encode([event(1), event(2), event(3)])
        assert (await post(harness.url, body, {"Content-Type": "application/json"}))[0] == 401
        assert (await post(harness.url, body, {**HEADERS, "Content-Type": "text/plain"}))[0] == 415
        assert (await post(harness.url, body))[0] == 200
        status, answer = await post(harness.url, body)  # 3 more do not fit in 4
        assert (status, answer["error"]) == (429, "queue_full")
        refused = {"endpoint": "/events", "reason": "queue_full"}
        assert harness.metrics.value("detector_http_refused_total", refused) == 1
