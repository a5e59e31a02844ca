"""The Slack sink with a bot token against a fake Slack Web API on loopback.

The fake speaks the two methods the sink uses (``chat.postMessage``, ``chat.update``) the
way Slack does: HTTP 200 with ``{"ok": true, "channel", "ts"}``, or ``{"ok": false,
"error"}``; it checks the bearer token. A mock only because Slack itself cannot be
reached here. Records go through the real Delivery and outbox, so retries are the
production ones. Every payload is checked with slack_sdk's Block Kit models.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from slack_sdk.models.blocks import Block
from structlog.testing import capture_logs

from correlation.chain import to_record
from detector.delivery.loops import Delivery
from detector.incidents.service import annotate
from detector.metrics import Metrics
from detector.sinks.config import decode
from tests.integration.sinks.test_webhook import FAST_RETRY, drain
from tests.unit.incidents.scenario import chains

pytestmark = pytest.mark.integration
TOKEN = "xoxb-test-token"


class FakeSlack:
    """Records every call; ``fail`` maps a method to errors it answers first, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, list[str]] = {}
        self._ts = 0

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        payload = await request.json()
        errors = self.fail.get(method, [])
        if errors:
            return web.json_response({"ok": False, "error": errors.pop(0)})
        self.calls.append((method, payload))
        for raw in payload["blocks"]:
            block = Block.parse(raw)
            assert block is not None
            block.validate_json()
        if method == "chat.update":
            return web.json_response(
                {"ok": True, "channel": payload["channel"], "ts": payload["ts"]}
            )
        self._ts += 1
        return web.json_response(
            {"ok": True, "channel": "C0123", "ts": f"1700000000.{self._ts:06d}"}
        )


@contextlib.asynccontextmanager
async def serve(fake: FakeSlack) -> AsyncIterator[str]:
    """The fake on a loopback port; the whole test within 60 s (a hang fails, with a trace)."""
    app = web.Application()
    app.router.add_post("/api/{method}", fake.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with asyncio.timeout(60):
            yield f"http://127.0.0.1:{runner.addresses[0][1]}/api"
    finally:
        await runner.cleanup()


def delivery(
    tmp_path: Path, api_url: str, metrics: Metrics | None = None, **options: Any
) -> Delivery:
    sink = {
        "type": "slack", "bot_token": TOKEN, "channel": "#incidents", "api_url": api_url,
        "min_interval_s": 0, **options,
    }  # fmt: skip
    outbox = {"path": str(tmp_path / "outbox.sqlite3"), "retry": FAST_RETRY}
    return Delivery(decode({"outbox": outbox, "sinks": [sink]}), metrics)


async def post(
    tmp_path: Path, fake: FakeSlack, *chain_records: dict[str, Any], **options: Any
) -> Metrics:
    """One life of the service: a Delivery on ``tmp_path`` delivers the records, closes;
    its metrics."""
    metrics = Metrics()
    async with serve(fake) as api:
        sink = delivery(tmp_path, api, metrics, **options)
        calls = len(fake.calls)
        for record in chain_records:
            await sink.submit(record)
        await drain(sink, lambda: len(fake.calls) > calls, acked=True)
        await sink.close(grace_s=0.5)
    return metrics


def thread_errors(metrics: Metrics, reason: str) -> float | None:
    labels = {"sink": "slack", "reason": reason}
    return metrics.registry.get_sample_value("detector_slack_thread_errors_total", labels)


def roots(fake: FakeSlack) -> list[str]:
    """The ``ts`` of every thread root posted (a postMessage outside a thread)."""
    return [
        f"1700000000.{n:06d}"
        for n, (m, p) in enumerate((c for c in fake.calls if c[0] == "chat.postMessage"), 1)
        if "thread_ts" not in p
    ]


def records(*rules: str) -> list[dict[str, Any]]:
    by_rule = {c.rule: c for c in chains()}
    url = "https://lmd.example/incidents/"
    return [annotate(to_record(by_rule[r]), "prod-eu", url + by_rule[r].incident) for r in rules]


async def test_one_thread_per_incident_and_its_root_updated(tmp_path: Path) -> None:
    fake = FakeSlack()
    pqr = records("recon-token-pivot", "exec-pivot", "workload-pivot")
    other = records("imds-credential-theft")
    async with serve(fake) as api:
        sink = delivery(tmp_path, api)
        for record in [pqr[0], other[0], pqr[1], pqr[2]]:
            await sink.submit(record)
        await drain(sink, lambda: len(fake.calls) == 8, acked=True)
        await sink.close(grace_s=0.5)
    methods = [(m, p.get("thread_ts", ""), p.get("ts", "")) for m, p in fake.calls]
    root, other_root = "1700000000.000001", "1700000000.000003"
    assert methods == [
        ("chat.postMessage", "", ""),  # P-Q-R's root
        ("chat.postMessage", root, ""),  # its first chain, in the thread
        ("chat.postMessage", "", ""),  # the other incident's root
        ("chat.postMessage", other_root, ""),
        ("chat.postMessage", root, ""),  # exec-pivot in P-Q-R's thread
        ("chat.update", "", root),  # root rewritten: 2 chains
        ("chat.postMessage", root, ""),
        ("chat.update", "", root),  # 3 chains
    ]
    last_update = fake.calls[-1][1]
    assert last_update["blocks"][0]["text"]["text"].endswith("· incident (3 chains)")
    assert last_update["channel"] == "C0123"  # the channel id Slack answered with
    assert fake.calls[0][1]["channel"] == "#incidents"
    reply = fake.calls[1][1]
    assert reply["text"].startswith("🔴 HIGH · prod-eu: shop/frontend-6f7c9d8b5-x2x9z: token used")


async def test_a_failed_update_is_retried_without_posting_twice(tmp_path: Path) -> None:
    fake = FakeSlack()
    fake.fail["chat.update"] = ["ratelimited", "internal_error"]
    async with serve(fake) as api:
        sink = delivery(tmp_path, api)
        for record in records("recon-token-pivot", "exec-pivot"):
            await sink.submit(record)
        await drain(sink, lambda: any(m == "chat.update" for m, _ in fake.calls), acked=True)
        await sink.close(grace_s=0.5)
    assert [m for m, _ in fake.calls] == [
        "chat.postMessage", "chat.postMessage", "chat.postMessage", "chat.update",
    ]  # fmt: skip


async def test_a_permanent_error_is_dead_lettered(tmp_path: Path) -> None:
    fake = FakeSlack()
    fake.fail["chat.postMessage"] = ["channel_not_found"]
    async with serve(fake) as api:
        sink = delivery(tmp_path, api)
        await sink.submit(records("imds-credential-theft")[0])
        await drain(sink, lambda: not fake.fail["chat.postMessage"], acked=True)
        dead = await sink.outbox.dead_letters()
        await sink.close(grace_s=0.5)
    assert [d.reason for d in dead] == ["slack chat.postMessage: channel_not_found"]
    assert fake.calls == []


async def test_a_restart_replies_in_the_incidents_thread(tmp_path: Path) -> None:
    """The second life (on the files the first left, as a ``kill -9`` leaves them: the
    state file is copied while the first sink still has it open) replies in the thread."""
    fake = FakeSlack()
    first, second = records("recon-token-pivot", "exec-pivot")
    async with serve(fake) as api:
        sink = delivery(tmp_path / "a", api)
        await sink.submit(first)
        await drain(sink, lambda: len(fake.calls) == 2, acked=True)
        shutil.copytree(tmp_path / "a", tmp_path / "b")  # committed state, nothing closed
        await sink.close(grace_s=0.5)
    assert (tmp_path / "a" / "slack-slack.threads").stat().st_mode & 0o777 == 0o600
    await post(tmp_path / "b", fake, second)
    root = "1700000000.000001"
    assert [(m, p.get("thread_ts", ""), p.get("ts", "")) for m, p in fake.calls] == [
        ("chat.postMessage", "", ""),  # the incident's root, first life
        ("chat.postMessage", root, ""),
        ("chat.postMessage", root, ""),  # second life: exec-pivot in the same thread
        ("chat.update", "", root),  # and the root rewritten: 2 chains
    ]
    assert fake.calls[-1][1]["channel"] == "C0123"
    assert fake.calls[-1][1]["blocks"][0]["text"]["text"].endswith("· incident (2 chains)")


async def test_the_thread_file_keeps_the_last_max_threads_incidents(tmp_path: Path) -> None:
    fake = FakeSlack()
    pqr_first, pqr_second = records("recon-token-pivot", "exec-pivot")
    (other,) = records("imds-credential-theft")
    await post(tmp_path, fake, pqr_first, max_threads=1)
    await post(tmp_path, fake, other, max_threads=1)  # P-Q-R's thread is dropped
    with contextlib.closing(sqlite3.connect(tmp_path / "slack-slack.threads")) as db:
        kept = db.execute("SELECT incident FROM threads").fetchall()
    assert kept == [(other["incident"],)]
    await post(tmp_path, fake, pqr_second, max_threads=1)
    assert roots(fake) == ["1700000000.000001", "1700000000.000003", "1700000000.000005"]


async def test_a_corrupt_thread_file_is_set_aside_and_a_new_one_kept(tmp_path: Path) -> None:
    fake = FakeSlack()
    first, second = records("recon-token-pivot", "exec-pivot")
    state = tmp_path / "slack-slack.threads"
    state.write_bytes(b"not a database " * 100)
    with capture_logs() as logs:
        metrics = await post(tmp_path, fake, first)
    assert [e["path"] for e in logs if e["event"] == "slack_threads_unreadable"] == [str(state)]
    assert thread_errors(metrics, "unreadable") == 1
    assert state.with_name("slack-slack.threads.corrupt").read_bytes() == b"not a database " * 100
    await post(tmp_path, fake, second)  # the new file works across the next restart
    assert roots(fake) == ["1700000000.000001"]
    assert [m for m, _ in fake.calls] == [
        "chat.postMessage", "chat.postMessage", "chat.postMessage", "chat.update",
    ]  # fmt: skip


async def test_memory_keeps_no_file_and_a_restart_opens_a_new_thread(tmp_path: Path) -> None:
    fake = FakeSlack()
    first, second = records("recon-token-pivot", "exec-pivot")
    await post(tmp_path, fake, first, threads_path="memory")
    await post(tmp_path, fake, second, threads_path="memory")
    assert roots(fake) == ["1700000000.000001", "1700000000.000003"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith("slack-")]


async def test_a_state_file_that_cannot_be_opened_leaves_slack_working(tmp_path: Path) -> None:
    fake = FakeSlack()
    first, second = records("recon-token-pivot", "exec-pivot")
    with capture_logs() as logs:
        metrics = await post(tmp_path, fake, first, second, threads_path=str(tmp_path))  # a dir
    assert [e["path"] for e in logs if e["event"] == "slack_threads_unavailable"] == [str(tmp_path)]
    assert thread_errors(metrics, "unavailable") == 1
    assert roots(fake) == ["1700000000.000001"]  # one thread, kept in memory
    assert [m for m, _ in fake.calls][-1] == "chat.update"
