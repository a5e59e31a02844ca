"""An exec whose ResponseStarted was correlated before a restart still has its
ResponseComplete folded into it after the restart (the open long-running requests are in
the checkpoint beside the engine state).

Real ``detector run`` (HTTP audit receiver, engine, checkpoint file), restarted with
SIGTERM; the fold is read off its own ``/metrics``. Without the requests in the
checkpoint the restarted service passes the ResponseComplete on as a second event with
the same id, minutes behind its own event time on a real cluster.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from correlation.chain import rfc3339
from correlation.engine import Engine, EngineConfig
from correlation.rules import builtin_rules_paths, load_rules
from detector.delivery.checkpoint import Checkpointer
from detector.parse import parse_audit
from detector.parse.long_running import LongRunningStages
from tests.integration.support import DetectorProcess, post_json
from tests.unit.parse.test_long_running import _exec

RULES = load_rules(builtin_rules_paths())


def stage(name: str, code: int, received: str, done: str) -> dict[str, Any]:
    doc = _exec(name, code, done_at=done)
    doc["requestReceivedTimestamp"] = received
    return doc


def event_list(doc: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [doc]}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DetectorProcess]:
    env = {
        "DETECTOR_CHECKPOINT__PATH": str(tmp_path / "engine.ckpt"),
        "DETECTOR_CHECKPOINT__INTERVAL_S": "3600",
        "DETECTOR_OUTBOX__PATH": str(tmp_path / "outbox.sqlite3"),
    }
    running = DetectorProcess(tmp_path, ["--output", str(tmp_path / "chains.jsonl")], env)
    yield running
    running.kill()


async def folded(url: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("detector_audit_stages_folded_total "):
            return float(line.split()[1])
    return 0.0


async def test_a_complete_stage_after_a_restart_folds_into_its_started_one(
    service: DetectorProcess,
) -> None:
    received = rfc3339(time.time_ns() // 1000 * 1000)
    await service.started()
    async with aiohttp.ClientSession() as session:
        started = stage("ResponseStarted", 101, received, received)
        await post_json(session, service.url + "/k8s-audit", event_list(started))
    assert await service.stop(signal.SIGTERM) == 0  # the checkpoint is saved on the way out

    await service.started()
    async with aiohttp.ClientSession() as session:
        done = rfc3339(time.time_ns() // 1000 * 1000)
        complete = stage("ResponseComplete", 200, received, done)
        await post_json(session, service.url + "/k8s-audit", event_list(complete))
    async with asyncio.timeout(10):
        while await folded(service.url) < 1:  # noqa: ASYNC110 - polls the service
            await asyncio.sleep(0.1)
    assert await service.stop(signal.SIGTERM) == 0


def test_the_open_requests_are_saved_and_given_back(tmp_path: Path) -> None:
    """The checkpoint part on its own: saved with the engine, handed back by attach()."""
    received = "2026-11-27T01:05:00.100000Z"
    started = parse_audit(stage("ResponseStarted", 101, received, received))
    complete = parse_audit(stage("ResponseComplete", 200, received, "2026-11-27T01:12:00Z"))
    before = LongRunningStages()
    assert before.admit(started)
    saver = Checkpointer(tmp_path / "engine.ckpt")
    saver.attach("long_running", before)
    saver.save(Engine(RULES, EngineConfig()))

    loader = Checkpointer(tmp_path / "engine.ckpt")
    loader.restore(RULES, EngineConfig())
    after = LongRunningStages()
    loader.attach("long_running", after)
    assert len(after) == 1
    assert not after.admit(complete)  # folded: the same request


def test_a_part_that_refuses_its_data_starts_empty(tmp_path: Path) -> None:
    saver = Checkpointer(tmp_path / "engine.ckpt")
    saver.attach("long_running", LongRunningStages())
    saver.save(Engine(RULES, EngineConfig()))
    loader = Checkpointer(tmp_path / "engine.ckpt")
    loader.restore(RULES, EngineConfig())

    class Refusing(LongRunningStages):
        def restore(self, data: bytes) -> None:
            raise ValueError("not mine")

    part = Refusing()
    loader.attach("long_running", part)  # logged, not raised
    assert len(part) == 0
