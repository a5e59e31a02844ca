"""Engine statistics on /metrics: evictions by reason, errors apart, late by source."""

from __future__ import annotations

import asyncio

import msgspec

from correlation.engine import Engine, EngineConfig
from correlation.rules import builtin_rules_paths, load_rules
from correlation.state import EngineStats
from detector.metrics import EngineExport, Metrics
from detector.parse import parse_audit, parse_falco
from detector.pipeline import Correlator, EventQueue
from tests.integration.run import scenario
from tests.integration.run.test_idle_watermark import Collected

STATS = EngineStats(
    suppressed=3,
    absorbed=1,
    time_only=8,
    pending=4,
    identity_bindings=5,
    partials=6,
    evictions={"error": 2, "key_cap": 7, "pending_cap": 1},
)


def test_errors_are_not_evictions_and_every_stat_is_exported() -> None:
    metrics = Metrics()
    EngineExport(metrics).apply(STATS)
    assert metrics.value("detector_engine_errors_total") == 2
    assert metrics.value("detector_engine_evictions_total", {"reason": "key_cap"}) == 7
    assert metrics.value("detector_engine_evictions_total", {"reason": "pending_cap"}) == 1
    assert metrics.value("detector_engine_evictions_total", {"reason": "error"}) == 0
    assert metrics.value("detector_engine_suppressed_total") == 3
    assert metrics.value("detector_engine_absorbed_total") == 1
    assert metrics.value("detector_engine_time_only_total") == 8
    assert metrics.value("detector_engine_pending") == 4
    assert metrics.value("detector_engine_identity_bindings") == 5
    assert metrics.value("detector_engine_partial_matches") == 6


def test_counters_grow_by_the_delta_from_the_restored_baseline() -> None:
    metrics = Metrics()
    export = EngineExport(metrics, baseline=STATS)  # totals of an engine before a restart
    export.apply(STATS)
    assert metrics.value("detector_engine_errors_total") == 0
    later = msgspec.structs.replace(STATS, suppressed=5, evictions={"error": 3, "key_cap": 7})
    export.apply(later)
    export.apply(later)  # applying the same totals twice counts nothing more
    assert metrics.value("detector_engine_errors_total") == 1
    assert metrics.value("detector_engine_suppressed_total") == 2
    assert metrics.value("detector_engine_evictions_total", {"reason": "key_cap"}) == 0


async def test_late_events_are_counted_by_source() -> None:
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig(lateness_ns=10**9))
    metrics = Metrics()
    queue = EventQueue(100, metrics)
    correlator = Correlator(engine, queue, Collected(), metrics)
    task = asyncio.create_task(correlator.run())
    audit = parse_audit(scenario.audit_items()[0])  # T0+40 s
    falco = [parse_falco(alert) for alert in scenario.falco_alerts()]  # T0, T0+10 s: late
    assert queue.offer("test", [audit, *falco])
    await asyncio.wait_for(queue.drained(), 5)
    task.cancel()
    assert metrics.value("detector_engine_late_events_total", {"source": "falco"}) == 2
    assert metrics.value("detector_engine_late_events_total", {"source": "k8s_audit"}) == 0
