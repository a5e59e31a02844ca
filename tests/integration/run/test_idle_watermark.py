"""A quiet stream still emits its finished chains: the idle watermark rule.

The first tests drive a real :class:`Correlator` and real engine with stepped clocks
(wall and monotonic are injected, so no test sleeps through a lateness); the last runs
the whole service over HTTP and waits for the chain with no SIGTERM to flush it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from correlation.engine import Engine, EngineConfig
from correlation.event import Event
from correlation.rules import builtin_rules_paths, load_rules
from detector import config as cfg
from detector.commands.run import serve
from detector.metrics import Metrics
from detector.parse import parse_audit, parse_falco
from detector.pipeline import Correlator, EventQueue, IdleClock
from tests.integration.run import scenario
from tests.integration.support import chains, free_port, post_json, stop_in_process, wait_ready

S = 1_000_000_000
LATENESS = 60 * S


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


def attack() -> list[Event]:
    """Recon at T0, token read at T0+10 s, secrets listed at T0+40 s."""
    events = [parse_falco(alert) for alert in scenario.falco_alerts()]
    return [*events, *(parse_audit(item) for item in scenario.audit_items())]


async def correlate(wall: Steps, mono: Steps) -> tuple[Correlator, Collected]:
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig(lateness_ns=LATENESS))
    metrics, output = Metrics(), Collected()
    queue = EventQueue(100, metrics)
    correlator = Correlator(engine, queue, output, metrics, IdleClock(LATENESS, wall, mono))
    task = asyncio.create_task(correlator.run())
    assert queue.offer("test", attack())
    await asyncio.wait_for(queue.drained(), 5)
    task.cancel()
    return correlator, output


async def test_quiet_stream_emits_once_idle_time_passes_the_lateness() -> None:
    last = (scenario.T0 + 40) * S
    wall, mono = Steps(last + 2 * S), Steps(0)
    correlator, output = await correlate(wall, mono)
    await correlator.advance()
    assert output.records == []  # lateness not over: an earlier event may still arrive
    wall.now += 61 * S
    mono.now += 61 * S
    await correlator.advance()
    assert [r["rule"] for r in output.records] == [scenario.RULE]


async def test_old_data_is_not_flushed_by_a_wall_clock_jump() -> None:
    # replayed events a day old: "now" is far ahead, but only idle time may move event time
    wall, mono = Steps((scenario.T0 + 86_400) * S), Steps(0)
    correlator, output = await correlate(wall, mono)
    mono.now += 15 * S  # watermark T0+40+15-60: still before the recon anchor at T0
    await correlator.advance()
    assert output.records == []
    mono.now += 10 * S  # past the anchor: decided
    await correlator.advance()
    assert len(output.records) == 1


def test_idle_watermark_never_passes_now() -> None:
    wall, mono = Steps(1_000 * S), Steps(0)
    clock = IdleClock(5 * S, wall, mono)
    assert clock.watermark() is None  # no event yet: nothing to advance
    clock.saw(998 * S)
    mono.now = 100 * S  # idle 100 s, but the present is only 2 s past the event
    assert clock.watermark() == 995 * S
    clock.saw(990 * S)  # an older event restarts idle time, keeps the max
    assert clock.watermark() == 993 * S


async def test_chain_arrives_over_http_without_shutdown(tmp_path: Path) -> None:
    port, output = free_port(), tmp_path / "chains.jsonl"
    config = cfg.load(
        environ={},
        overrides={
            "http.listen": f"127.0.0.1:{port}",
            "output": str(output),
            "engine.idle_advance_s": 0.1,
            "engine.allowed_lateness_s": 1,
            "outbox.path": str(tmp_path / "outbox.sqlite3"),
            "checkpoint.path": "",
        },
    )
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig(lateness_ns=S))
    service = asyncio.create_task(serve(config, engine, Metrics()))
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url)
        async with aiohttp.ClientSession() as session:
            for alert in scenario.falco_alerts():  # in event-time order: lateness is 1 s
                await post_json(session, url + "/falco", alert)
            await post_json(session, url + "/k8s-audit", scenario.event_list())
        async with asyncio.timeout(5):
            while not (output.exists() and output.stat().st_size):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert [c["rule"] for c in chains(output)] == [scenario.RULE]
        await stop_in_process(service)
    finally:
        service.cancel()
