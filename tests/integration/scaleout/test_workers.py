"""Three workers, six partitions, a paced load: the failure matrix, one test per fault.

Each case ends with the oracle's chain ids exactly once in the read_committed chains
topic, the group's committed offsets at the end offsets and no late event (the oracle
counts none). Loads are smaller than the ≥ 100k-event run documented in
docs/scale-out.md (same harness, ``SCALEOUT_EVENTS``), to keep the suite short.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from correlation.event import Event
from tests.integration.scaleout import harness
from tests.integration.support import free_port

EVENTS = int(os.environ.get("SCALEOUT_EVENTS", "12000"))
RATE = float(os.environ.get("SCALEOUT_RATE", "4000"))
CHAINS = 24


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Event], list[str], int]:
    events = harness.stream(tmp_path_factory.mktemp("stream"), EVENTS, CHAINS)
    ids, late = harness.oracle(events)
    assert len(ids) == len(set(ids)) == CHAINS and late == 0
    return events, ids, late


Fault = Callable[[harness.Cluster, float], Awaitable[None]]


@dataclass
class Outcome:
    """How a case ended: every worker's exit code, and the ``/metrics`` of each worker
    serving them (by index), read once the group was stable and caught up."""

    codes: list[int]
    metrics: dict[int, dict[str, float]]


async def _run(
    kafka: Any, tmp_path: Path, planted: Any, fault: Fault | None, workers: int = 3
) -> Outcome:
    events, want, _ = planted
    cluster = harness.Cluster(kafka.bootstrap, tmp_path)
    await cluster.create_topics()
    for n in range(workers):
        cluster.start_worker(f"127.0.0.1:{free_port()}" if n == 1 else "")

    async def progress(fraction: float) -> None:
        if fault is not None:
            await fault(cluster, fraction)

    try:
        await harness.load(kafka.bootstrap, cluster.topics.events, events, RATE, progress)
        found = await harness.committed_chains(
            kafka.bootstrap, cluster.topics.chains, set(want), 60
        )
        # The reads below describe a settled group, not one mid-rebalance (a member that
        # joined late, a killed one whose session has not expired yet).
        live = cluster.live()
        group = await harness.wait_stable(kafka.bootstrap, cluster.topics.group, live, 60)
        behind = await harness.wait_caught_up(kafka.bootstrap, cluster.topics, 30)
        metrics = {
            n: await harness.scrape_settled(url, 15)
            for n, url in cluster.listening.items()
            if cluster.workers[n].poll() is None
        }
        codes = cluster.stop_all()
        assert sorted(found) == sorted(want), cluster.logs()
        assert group == f"Stable/{live}", cluster.logs()
        assert behind == dict.fromkeys(range(harness.PARTITIONS), 0), cluster.logs()
        assert await harness.late_in_snapshots(kafka.bootstrap, cluster.topics) == 0
    finally:
        cluster.stop_all()
    return Outcome(codes, metrics)


def _at(fraction: float, action: Callable[[harness.Cluster], Awaitable[None]]) -> Fault:
    """Run ``action`` once, when the load passes ``fraction``."""
    done: list[bool] = []

    async def fault(cluster: harness.Cluster, progress: float) -> None:
        if progress >= fraction and not done:
            done.append(True)
            await action(cluster)

    return fault


async def _kill(cluster: harness.Cluster) -> None:
    cluster.workers[0].send_signal(signal.SIGKILL)


@pytest.mark.parametrize("fraction", [0.3, 0.75])
async def test_worker_kill_survivors_restore_and_replay(
    kafka: Any, tmp_path: Path, planted: Any, fraction: float
) -> None:
    outcome = await _run(kafka, tmp_path, planted, _at(fraction, _kill))
    assert outcome.codes[0] == -signal.SIGKILL and outcome.codes[1:] == [0, 0]


async def _pause(cluster: harness.Cluster) -> None:
    """SIGSTOP the first worker past its session timeout (6 s), then SIGCONT it."""
    victim = cluster.workers[0]
    victim.send_signal(signal.SIGSTOP)
    await asyncio.sleep(9)
    victim.send_signal(signal.SIGCONT)


async def test_zombie_worker_is_fenced_after_session_timeout(
    kafka: Any, tmp_path: Path, planted: Any
) -> None:
    outcome = await _run(kafka, tmp_path, planted, _at(0.4, _pause))
    assert outcome.codes == [0, 0, 0]
    # (that its producer is refused once a newer owner started: test_fencing.py)


async def _join(cluster: harness.Cluster) -> None:
    """Start a fourth worker (serving /metrics) and hold the load until it is a member.

    The load awaits each fault between its rounds, so this wait puts the rebalance in the
    middle of the stream however long the process takes to start and join (seconds on a
    loaded machine). Without it a start slower than the rest of the load left the join
    to the end of the test, where the final reads met the rebalance itself (an old member
    holding no partition for a moment) or SIGTERM met a process that had not installed
    its handlers yet (exit -15).
    """
    cluster.start_worker(f"127.0.0.1:{free_port()}")
    group = await harness.wait_stable(cluster.bootstrap, cluster.topics.group, 4, 90)
    assert group == "Stable/4", cluster.logs()


async def test_join_of_a_fourth_worker_rebalances_without_loss(
    kafka: Any, tmp_path: Path, planted: Any
) -> None:
    outcome = await _run(kafka, tmp_path, planted, _at(0.5, _join))
    assert outcome.codes == [0, 0, 0, 0]
    assert sorted(outcome.metrics) == [1, 3]  # an old member and the one that joined
    for metrics in outcome.metrics.values():
        owned = metrics["detector_worker_partitions"]
        assert 1 <= owned <= 2  # six partitions over four members
        lags = {k: v for k, v in metrics.items() if k.startswith("detector_worker_partition_lag")}
        assert len(lags) == owned and not any(lags.values())
        watermarks = [v for k, v in metrics.items() if "partition_watermark_seconds" in k]
        assert all(w > 1.7e9 for w in watermarks)  # 2026 event time, an hour past the stream
        assert metrics["detector_worker_transaction_aborts_total"] == 0


def _restart_broker(kafka: Any) -> Callable[[harness.Cluster], Awaitable[None]]:
    async def restart(cluster: harness.Cluster) -> None:
        kafka.stop(kill=True)
        await asyncio.sleep(2)
        await asyncio.to_thread(kafka.start)

    return restart


async def test_broker_restart_mid_stream_loses_and_repeats_nothing(
    kafka: Any, tmp_path: Path, planted: Any
) -> None:
    started = time.monotonic()
    outcome = await _run(kafka, tmp_path, planted, _at(0.5, _restart_broker(kafka)))
    assert outcome.codes == [0, 0, 0]
    assert time.monotonic() - started < 120
