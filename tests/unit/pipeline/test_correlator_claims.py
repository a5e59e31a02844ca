"""``detector run``'s correlator hands claims to ``Engine.claimed`` and folds their stages.

The same batches, queued once as normalized events and once as the early reject's claims,
must give the same chain records, the same engine counters (but ``time_only``) and the
same long-running stages folded.
"""

from __future__ import annotations

from typing import Any

import msgspec

from correlation.engine import Engine
from correlation.event import Claim, Event, Incoming
from correlation.interest import Interest
from detector.metrics import Metrics
from detector.parse import parse_line
from detector.parse.early import EarlyReject
from detector.pipeline import Correlator, EventQueue
from tests.integration.run.test_idle_watermark import Collected
from tests.unit.parse.test_early_claims import SECOND, WATCH, T, _builtin, request, token_read
from tests.unit.pipeline.test_event_queue import run_until_drained


def traffic() -> list[bytes | Event]:
    return [
        token_read(T, "cart", "10.0.0.2"),
        token_read(T + SECOND, "pay", "10.0.0.3"),
        request(T + 2 * SECOND, "cart", "10.0.0.2", number=1),  # its own address
        request(T + 3 * SECOND, "cart", "10.0.0.2", WATCH, 9, stage="ResponseStarted"),
        request(T + 3 * SECOND, "cart", "10.0.0.2", WATCH, 9, stage="ResponseComplete"),
        request(T + 4 * SECOND, "cart", "10.0.0.3", number=2),  # pay's address: replayed
        request(T + 5 * SECOND, "api", "10.0.0.4", number=3),  # unbound: learned
        request(T + 99 * SECOND, "api", "10.0.0.4", number=4),  # later: settles the chain
    ]


async def correlate(events: list[Incoming]) -> tuple[Any, ...]:
    metrics = Metrics()
    queue = EventQueue(100, metrics, clock=lambda: T + 3600 * SECOND)
    engine = Engine(_builtin())
    output = Collected()
    correlator = Correlator(engine, queue, output, metrics)
    queue.pushed["api"] = False  # one pulled input: its events move its time
    assert queue.offer("k8s_audit", events, "api")
    await run_until_drained(correlator, queue)
    stats = msgspec.structs.replace(engine.stats(), time_only=0)
    return output.records, stats, correlator.stages.folded


async def test_claims_in_the_queue_give_the_records_normalized_events_give() -> None:
    early = EarlyReject(Interest(_builtin()))
    plain: list[Incoming] = []
    claimed: list[Incoming] = []
    for item in traffic():
        plain += [item] if isinstance(item, Event) else parse_line(item)
        claimed += [item] if isinstance(item, Event) else parse_line(item, None, early.claiming)
    assert sum(isinstance(e, Claim) for e in claimed) == early.claims == 6
    records, stats, folded = await correlate(plain)
    assert await correlate(claimed) == (records, stats, folded)
    assert [r["rule"] for r in records] == ["stolen-token-replay"] and folded == 1
