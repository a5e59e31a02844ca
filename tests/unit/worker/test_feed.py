"""What a partition's engine makes of the records: relays as inputs, markers as time.

Records are built as aiokafka hands them over (value, headers, offset, timestamp in ms);
the broker half runs in tests/integration/scaleout/.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from correlation.engine import Engine, EngineConfig
from correlation.event import K8S_AUDIT, Event
from correlation.watermarks import WatermarkConfig
from detector.relay import wire
from detector.worker.partition import feed

S = 1_000_000_000
T0 = 1_772_445_600 * S
CONFIG = EngineConfig(
    lateness_ns=5 * S, watermarks=WatermarkConfig(idle_timeout_ns=30 * S)
)  # fmt: skip


def _record(value: bytes, schema: str, relay: str, at_s: float) -> Any:
    headers = [("schema", schema.encode()), ("relay", relay.encode())]
    return SimpleNamespace(
        value=value, headers=headers, offset=0, timestamp=int((T0 + at_s * S) // 1_000_000)
    )


def _events(relay: str, t: int, at_s: float) -> Any:
    event = Event(time_ns=T0 + t * S, source=K8S_AUDIT, id=f"{relay}-{t}", verb="get")
    return _record(wire.encode([event]), wire.SCHEMA, relay, at_s)


def _mark(relay: str, t: int, at_s: float) -> Any:
    return _record(wire.encode_progress(relay, T0 + t * S), wire.PROGRESS_SCHEMA, relay, at_s)


def test_the_slowest_relay_holds_the_partition_watermark() -> None:
    engine = Engine([], CONFIG)
    feed(engine, _events("b", 40, 100))
    feed(engine, _events("a", 100, 100))
    feed(engine, _mark("a", 100, 100))
    assert engine.watermark == T0 + 35 * S  # b's 40 s minus the 5 s disorder bound
    feed(engine, _mark("b", 90, 101))
    assert engine.watermark == T0 + 85 * S


def test_a_silent_relay_stops_holding_after_the_idle_timeout_and_rejoins() -> None:
    engine = Engine([], CONFIG)
    feed(engine, _events("b", 40, 40))
    for t in range(41, 100, 10):  # relay a keeps marking; b has gone quiet at 40 s
        feed(engine, _mark("a", t, t))
    assert engine.watermark == T0 + 91 * S - 5 * S  # b idle since 71 s > 40 + 30
    feed(engine, _events("b", 95, 100))  # b speaks again: back in the minimum
    feed(engine, _mark("a", 120, 120))
    assert engine.watermark == T0 + 90 * S


def test_a_marker_is_not_counted_as_an_event() -> None:
    engine = Engine([], CONFIG)
    feed(engine, _mark("a", 10, 10))
    assert engine.stats().events == 0
    assert [s.events for s in engine.inputs()] == [0]


def test_a_record_that_is_neither_raises_a_wire_error() -> None:
    with pytest.raises(wire.WireError):
        feed(Engine([], CONFIG), _record(b"{}", wire.SCHEMA, "a", 1))
