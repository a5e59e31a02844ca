"""A quiet stream still emits its finished chains: pushed inputs on the receiving clock,
pulled inputs once idle at their end.

The first tests drive a real :class:`Correlator` and real engine with a stepped
receiving clock (injected into the queue, so no test sleeps through a bound); the last
runs the whole service over HTTP and waits for the chain with no SIGTERM to flush it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from correlation.engine import Engine, EngineConfig
from correlation.event import Event
from correlation.rules import builtin_rules_paths, load_rules
from correlation.watermarks import WatermarkConfig
from detector import config as cfg
from detector.commands.run import serve
from detector.metrics import Metrics
from detector.pipeline import Correlator, EventQueue
from tests.integration.run import scenario
from tests.integration.support import chains, free_port, post_json, stop_in_process, wait_ready

S = 1_000_000_000
MARKS = WatermarkConfig(bound_floor_ns=S // 4, idle_timeout_ns=5 * S)


class Steps:
    """A settable clock (ns)."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Collected:
    """An Output keeping the records (the real Delivery is tested elsewhere)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def submit(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    async def run(self) -> None:
        return None

    async def close(self, grace_s: float) -> None:
        return None


class QuietFile:
    """A pulled source that has read everything (what a file tailer at EOF reports)."""

    name, pulled = "audit_file", True

    def at_end(self) -> bool:
        return True


def attack() -> tuple[list[Event], list[Event]]:
    """(the two Falco alerts; the audit event)."""
    from detector.parse import parse_audit, parse_falco

    falco = [parse_falco(alert) for alert in scenario.falco_alerts()]
    return falco, [parse_audit(item) for item in scenario.audit_items()]


def correlator(clock: Steps) -> tuple[Correlator, EventQueue, Collected]:
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig(watermarks=MARKS))
    metrics, output = Metrics(), Collected()
    queue = EventQueue(100, metrics, clock=clock)
    return Correlator(engine, queue, output, metrics), queue, output


async def drained(worker: Correlator, queue: EventQueue) -> None:
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(queue.drained(), 5)
    task.cancel()


async def test_prompt_senders_chain_leaves_once_the_clock_passes_its_last_step() -> None:
    falco, audit = attack()
    clock = Steps(0)
    worker, queue, output = correlator(clock)
    for alert in falco:  # each event arrives at its own time
        clock.now = alert.time_ns
        assert queue.offer("falco_http", [alert], "falco_http@10.0.0.1")
    clock.now = scenario.at(2)
    assert queue.offer("k8s_audit", [audit[-1]], "k8s_audit@10.0.0.2")
    await drained(worker, queue)
    clock.now += S // 10  # within the 250 ms delivery bound: an earlier event may come
    await worker.advance()
    assert output.records == []
    clock.now += S // 2
    await worker.advance()
    assert [r["rule"] for r in output.records] == [scenario.RULE]


async def test_old_file_data_is_decided_once_its_input_is_idle_at_its_end() -> None:
    # a day-old backlog: the wall clock is far ahead, but only the file's own progress
    # (and then its being quiet at its end) may move event time
    falco, audit = attack()
    clock = Steps(scenario.at(2) + 86_400 * S)
    worker, queue, output = correlator(clock)
    worker.watch([QuietFile()])  # type: ignore[list-item]
    emit = queue.emitter("audit_file", pushed=False)
    for event in [*falco, *audit]:
        await emit(event)
    await drained(worker, queue)
    clock.now += 2 * S  # at its end, quiet for 2 s only
    await worker.advance()
    assert output.records == []
    clock.now += 4 * S
    await worker.advance()
    assert [r["rule"] for r in output.records] == [scenario.RULE]
    assert worker._engine.inputs()[0].idle  # type: ignore[attr-defined]


async def test_tick_claims_only_the_last_arrival_while_events_wait() -> None:
    falco, _ = attack()
    clock = Steps(scenario.at(0) + S)
    worker, queue, _ = correlator(clock)
    assert queue.offer("falco_http", falco[:1], "node")
    worker._last_arrival = scenario.at(0) + S  # as if an event had just been taken
    clock.now += 3600 * S  # the wall clock moves on, the queued alert is still unseen
    await worker.advance()
    assert worker._engine.watermark <= scenario.at(0) + S  # type: ignore[attr-defined]


async def test_chain_arrives_over_http_without_shutdown(tmp_path: Path) -> None:
    port, output = free_port(), tmp_path / "chains.jsonl"
    config = cfg.load(
        environ={},
        overrides={
            "http.listen": f"127.0.0.1:{port}",
            "output": str(output),
            "engine.idle_advance_s": 0.1,
            "outbox.path": str(tmp_path / "outbox.sqlite3"),
            "checkpoint.path": "",
        },
    )
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig(watermarks=MARKS))
    service = asyncio.create_task(serve(config, engine, Metrics()))
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url)
        async with aiohttp.ClientSession() as session:
            for alert in scenario.falco_alerts():
                await post_json(session, url + "/falco", alert)
            await post_json(session, url + "/k8s-audit", scenario.event_list())
        async with asyncio.timeout(5):
            while not (output.exists() and output.stat().st_size):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert [c["rule"] for c in chains(output)] == [scenario.RULE]
        await stop_in_process(service)
    finally:
        service.cancel()
