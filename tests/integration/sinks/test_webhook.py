"""Webhook and Slack sinks against a real aiohttp receiver on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from detector.delivery.loops import Delivery
from detector.sinks import signing
from detector.sinks.config import DeliveryConfig, decode
from detector.sinks.registry import build_sink
from tests.unit.sinks.records import make_record

pytestmark = pytest.mark.integration
SECRET = "s3cret-for-tests"
FAST_RETRY = {"initial_s": 0.05, "max_s": 0.5, "multiplier": 2.0, "jitter": 0.1}


class Receiver:
    """Answers each POST from a script of behaviours, then 200; checks the signature."""

    def __init__(self, script: list[Callable[[], Any]]) -> None:
        self.script = list(script)
        self.calls: list[tuple[int, dict[str, Any]]] = []  # (status, body) per request
        self.accepted: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.stored: dict[str, dict[str, Any]] = {}  # a receiver deduplicating on the key
        self.keys: list[str] = []  # Idempotency-Key of each accepted POST

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not signing.verify(SECRET.encode(), body, request.headers.get(signing.HEADER, "")):
            self.bad_signatures += 1
            return web.Response(status=401)
        response = await self.script.pop(0)() if self.script else web.Response(status=200)
        if "X-Late" in response.headers:  # the sender gave up waiting; it will retry
            return response
        self.calls.append((response.status, orjson.loads(body)))
        if response.status == 200:
            self.accepted.append(orjson.loads(body))
            key = request.headers.get("Idempotency-Key", "")
            self.keys.append(key)
            self.stored.setdefault(key, orjson.loads(body))
        return response


def status(code: int, **headers: str) -> Callable[[], Any]:
    async def answer() -> web.Response:
        return web.Response(status=code, text=f"answer {code}", headers=headers)

    return answer


def hang(seconds: float) -> Callable[[], Any]:
    async def answer() -> web.Response:
        await asyncio.sleep(seconds)
        return web.Response(status=200, headers={"X-Late": "1"})

    return answer


@contextlib.asynccontextmanager
async def serve(receiver: Receiver) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


def webhook_delivery(tmp_path: Path, url: str, timeout_s: float = 10) -> Delivery:
    return Delivery(webhook_config(tmp_path, url, timeout_s))


def webhook_config(tmp_path: Path, url: str, timeout_s: float = 10) -> DeliveryConfig:
    # A short timeout only where a test makes the receiver hang: on a loaded machine a
    # 200 can take longer than half a second, and the retry that follows is a second call.
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text(SECRET + "\n")
    sink = {"type": "webhook", "url": url, "secret_file": str(secret_file), "timeout_s": timeout_s}
    outbox = {"path": str(tmp_path / "outbox.sqlite3"), "retry": FAST_RETRY}
    return decode({"outbox": outbox, "sinks": [sink]})


async def drain(
    delivery: Delivery,
    until: Callable[[], bool],
    timeout_s: float = 30,
    acked: bool = False,
    dead: int = 0,
) -> None:
    """Run delivery until ``until()``; with ``acked``, also until the outbox recorded the ack,
    with ``dead``, until that many dead letters are recorded (the receiver sees a record
    before the sink's answer reaches the outbox)."""
    task = asyncio.create_task(delivery.run())
    try:
        async with asyncio.timeout(timeout_s):
            while not until():  # noqa: ASYNC110 - polls test state, nothing to await
                await asyncio.sleep(0.02)
            while acked and await delivery.outbox.pending_counts():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            while len(await delivery.outbox.dead_letters()) < dead:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    finally:
        await cancelled(task)


async def cancelled(task: asyncio.Task[None], within_s: float = 10) -> None:
    """Cancel ``task`` and wait for its end; one still running after ``within_s`` fails the
    test. ``asyncio.wait``, not ``wait_for``: on Python 3.11 ``wait_for`` waits for as long
    as the task ignores the cancellation, so a stuck delivery hung the test instead."""
    task.cancel()
    await asyncio.wait([task], timeout=within_s)
    assert task.done(), f"{task!r} still running {within_s} s after its cancellation"
    with contextlib.suppress(asyncio.CancelledError):
        task.result()  # its own failure, if it had one


async def test_recovers_from_500_timeout_and_429(tmp_path: Path) -> None:
    receiver = Receiver([status(500), status(503), hang(4.0), status(429, **{"Retry-After": "1"})])
    record = make_record(7)
    async with serve(receiver) as url:
        delivery = webhook_delivery(tmp_path, url, timeout_s=1.5)
        await delivery.submit(record)
        started = asyncio.get_running_loop().time()
        await drain(delivery, lambda: bool(receiver.accepted), acked=True)
        elapsed = asyncio.get_running_loop().time() - started
        assert await delivery.outbox.pending_counts() == {}
        await delivery.close(grace_s=1)
    assert receiver.accepted == [record]  # delivered exactly once, after recovering
    assert [c[0] for c in receiver.calls] == [500, 503, 429, 200]  # the hang never answered
    assert elapsed >= 1.0  # Retry-After was honoured
    assert receiver.bad_signatures == 0


async def test_400_goes_to_dead_letters_with_reason(tmp_path: Path) -> None:
    receiver = Receiver([status(400)])
    bad, good = make_record(1), make_record(2)
    async with serve(receiver) as url:
        delivery = webhook_delivery(tmp_path, url)
        await delivery.submit(bad)
        await delivery.submit(good)
        await drain(delivery, lambda: len(receiver.calls) >= 2, acked=True, dead=1)
        dead = await delivery.outbox.dead_letters()
        await delivery.close(grace_s=1)
    assert [c[0] for c in receiver.calls] == [400, 200]  # never retried
    assert [(d.sink, d.id) for d in dead] == [("webhook", bad["id"])]
    assert "HTTP 400" in dead[0].reason and "answer 400" in dead[0].reason
    assert orjson.loads(dead[0].body) == bad


async def test_receiver_rejects_a_wrong_secret(tmp_path: Path) -> None:
    receiver = Receiver([])
    async with serve(receiver) as url:
        sink = {"type": "webhook", "url": url, "secret": "not-the-secret"}
        outbox = {"path": str(tmp_path / "o.sqlite3"), "retry": FAST_RETRY}
        delivery = Delivery(decode({"outbox": outbox, "sinks": [sink]}))
        await delivery.submit(make_record(1))
        await drain(delivery, lambda: receiver.bad_signatures > 0, dead=1)
        dead = await delivery.outbox.dead_letters()
        await delivery.close(grace_s=0.1)
    assert receiver.accepted == []
    assert "HTTP 401" in dead[0].reason


async def test_slack_sink_posts_block_kit(tmp_path: Path) -> None:
    posts: list[dict[str, Any]] = []

    async def slack(request: web.Request) -> web.Response:
        posts.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/services/T0/B0/XYZ", slack)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/services/T0/B0/XYZ"
    try:
        sink = {"type": "slack", "webhook_url": url, "min_interval_s": 0, "min_severity": "high"}
        outbox = {"path": str(tmp_path / "o.sqlite3")}
        delivery = Delivery(decode({"outbox": outbox, "sinks": [sink]}))
        await delivery.submit(make_record(1, severity="low"))  # routed away
        await delivery.submit(make_record(2, severity="critical"))
        await drain(delivery, lambda: bool(posts))
        await delivery.close(grace_s=0.5)
    finally:
        await runner.cleanup()
    assert len(posts) == 1
    assert posts[0]["text"].startswith("🟣 CRITICAL")
    assert posts[0]["blocks"][0]["type"] == "header"


async def test_a_re_send_after_a_lost_ack_carries_the_same_idempotency_key(
    tmp_path: Path,
) -> None:
    """A kill between the receiver's 200 and the outbox's commit of it: the next run
    sends the chain again (an HTTP receiver cannot be asked what it has), with the same
    ``Idempotency-Key`` (the chain id), so a receiver that keys on it stores it once."""
    record = make_record(7)
    receiver = Receiver([])
    async with serve(receiver) as url:
        killed = webhook_delivery(tmp_path, url)
        await killed.outbox.open()
        await killed.submit(record)  # committed, owed to the webhook
        sink = build_sink(webhook_config(tmp_path, url).effective_sinks[0])
        await sink.deliver(record)  # the 200 whose ack the killed run never committed
        await sink.close()
        await killed.outbox.close()

        restarted = webhook_delivery(tmp_path, url)
        await drain(restarted, lambda: len(receiver.accepted) == 2, acked=True)
        await restarted.close(grace_s=5)
    assert receiver.keys == [record["id"], record["id"]]
    assert list(receiver.stored) == [record["id"]]


async def test_each_delivery_is_acknowledged_before_the_next_is_sent(tmp_path: Path) -> None:
    """A kill while a round is under way re-sends only the record in flight: the first
    record's 200 is in the outbox while the receiver still holds the second one."""
    receiver = Receiver([status(200), hang(8)])
    async with serve(receiver) as url:
        delivery = webhook_delivery(tmp_path, url, timeout_s=20)
        await delivery.outbox.open()
        for n in range(3):  # all owed before the loop starts: one round takes them all
            await delivery.submit(make_record(n))
        task = asyncio.create_task(delivery.run())
        try:
            async with asyncio.timeout(6):  # inside the 8 s the second request is held
                while (await delivery.outbox.pending_counts()).get("webhook") != 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            assert len(receiver.accepted) == 1
        finally:
            await cancelled(task)
            await delivery.close(grace_s=1)
