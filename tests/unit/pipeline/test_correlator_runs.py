"""The correlator takes the queue in runs and lets other tasks (the HTTP server) run
between them, however large the batch."""

from __future__ import annotations

import asyncio

from correlation.engine import Engine
from correlation.event import K8S_AUDIT, time_only
from correlation.testing import SECOND
from detector.metrics import Metrics
from detector.pipeline import YIELD_EVERY, Correlator, EventQueue
from tests.integration.run.test_idle_watermark import Collected
from tests.unit.parse.test_early_claims import T, _builtin
from tests.unit.pipeline.test_event_queue import run_until_drained


async def test_other_tasks_run_between_runs_of_at_most_yield_every_events() -> None:
    metrics = Metrics()
    total = 4 * YIELD_EVERY + 7
    queue = EventQueue(total, metrics, clock=lambda: T + 3600 * SECOND)
    correlator = Correlator(Engine(_builtin()), queue, Collected(), metrics)
    ticks = [time_only(T + n, K8S_AUDIT) for n in range(total)]
    assert queue.offer(K8S_AUDIT, ticks, "api")  # one batch, larger than a run
    seen: list[int] = []

    async def probe() -> None:  # stands for the HTTP server: when does it get to run?
        while queue.processed(K8S_AUDIT) < total:
            seen.append(queue.processed(K8S_AUDIT))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(probe())
    await run_until_drained(correlator, queue)
    await watcher
    steps = [b - a for a, b in zip(seen, [*seen[1:], total], strict=True)]
    assert max(steps) == YIELD_EVERY and len(set(seen)) >= 4  # one run at a time
