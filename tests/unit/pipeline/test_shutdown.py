"""The shutdown ends even when a task swallows the first cancellation, as Python 3.11's
``asyncio.wait_for`` does when its inner wait ends in the same instant.

The source, worker and output here are stand-ins: the behaviour under test is the
Supervisor's, and no real source swallows a cancellation on demand.
"""

from __future__ import annotations

import asyncio
from typing import Any

from structlog.testing import capture_logs

from detector.event_queue import EventQueue
from detector.metrics import Metrics
from detector.pipeline import CANCEL_WAIT_S, Supervisor
from detector.sources.base import Emit


class _Source:
    """Swallows ``swallow`` cancellations, then ends at the next one."""

    pulled = False

    def __init__(self, swallow: int) -> None:
        self.name = f"swallows-{swallow}"
        self.swallow = swallow

    def ready(self) -> bool:
        return True

    async def run(self, emit: Emit) -> None:
        for _ in range(self.swallow):
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                pass
        await asyncio.Event().wait()


class _Worker:
    running = True

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def tick(self, period_s: float) -> None:
        await asyncio.Event().wait()

    async def flush(self) -> None:
        return None


class _Output:
    closed = False

    async def submit(self, record: dict[str, Any]) -> None:
        return None

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def close(self, grace_s: float) -> None:
        self.closed = True


async def _stop(source: _Source) -> tuple[asyncio.Task[None], _Output, list[dict[str, Any]]]:
    """Serve, then stop; the serving task once the shutdown sequence has run (or timed out)."""
    metrics = Metrics()
    output = _Output()
    supervisor = Supervisor(
        [source], EventQueue(10, metrics), _Worker(), output, metrics, 1.0, grace_s=0.5
    )
    serving = asyncio.create_task(supervisor.serve())
    await asyncio.sleep(0.05)
    with capture_logs() as logs:
        supervisor.stop.set()
        await asyncio.wait([serving], timeout=CANCEL_WAIT_S + 5)
    return serving, output, logs


async def test_a_source_that_swallows_one_cancellation_still_stops() -> None:
    serving, output, logs = await _stop(_Source(swallow=1))
    assert serving.done(), "the shutdown waited on a task that swallowed a cancellation"
    serving.result()
    assert output.closed
    assert "shutdown_complete" in [entry["event"] for entry in logs]
    assert "shutdown_tasks_ignored_cancel" not in [entry["event"] for entry in logs]


async def test_a_source_that_swallows_every_cancellation_is_named_and_the_rest_closes() -> None:
    # cancelled every 0.5 s for 5 s: 11 swallowed outlast the shutdown's rounds
    serving, output, logs = await _stop(_Source(swallow=11))
    stuck = [entry for entry in logs if entry["event"] == "shutdown_tasks_ignored_cancel"]
    assert stuck and stuck[0]["tasks"] == ["swallows-11"]
    assert output.closed and "shutdown_complete" in [entry["event"] for entry in logs]
    assert not serving.done()  # its TaskGroup still waits for the task, which no code can end
    serving.cancel()  # the next cancellation is the one it does not swallow
    done, _ = await asyncio.wait([serving], timeout=5)
    assert serving in done
