"""The service's side of event time: input names and kinds, alignment, per-input reports.

The model itself (per-input progress, the minimum over inputs, clamped clocks) lives in
``correlation.watermarks``; this module feeds it from the running service:

* :func:`input_disorder` — an input's disorder bound from ``engine.lateness_by_source``
  (the source type of the receiver or file), else ``engine.allowed_lateness_s``.
* :class:`Alignment` — a pulled source (file tailer) whose own watermark is more than
  ``max_drift_s`` ahead of the engine's waits until the others catch up.
* :class:`InputReports` — after each tick, what changed per input: late events and
  clock-skewed events are logged at most once per :data:`REPORT_EVERY_S` per input
  (with how many and how late), an input going idle or coming back once each time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from correlation.watermarks import InputState
from detector.logging import get_logger
from detector.metrics import Metrics

log = get_logger("detector.event_time")
REPORT_EVERY_S: Final = 10.0
ALIGN_POLL_S: Final = 0.05
# the source type of each receiver or file (its events' Event.source)
SOURCE_TYPES: Final = {
    "falco_http": "falco",
    "falco_grpc": "falco",
    "falco_file": "falco",
    "k8s_audit": "k8s_audit",
    "audit_file": "k8s_audit",
}
LATE_HINT: Final = "raise engine.lateness_by_source for this source, or fix the sender's delay"


class Progress(Protocol):
    """What alignment reads of the engine."""

    @property
    def watermark(self) -> int: ...
    def input_watermark(self, name: str) -> int | None: ...


def input_disorder(source: str, by_source: Mapping[str, float], default_s: float) -> int:
    """The disorder bound (ns) of an input of receiver or file ``source``."""
    seconds = by_source.get(SOURCE_TYPES.get(source, source), default_s)
    return int(seconds * 1e9)


def input_name(source: str, peer: str | None) -> str:
    """``falco_http@10.0.0.7``: one input per sender where the sender can be told apart."""
    return f"{source}@{peer}" if peer else source


class Alignment:
    """Pauses a pulled source that runs too far ahead (watermark alignment)."""

    def __init__(self, engine: Progress, max_drift_ns: int) -> None:
        self._engine, self._max_drift = engine, max_drift_ns
        self.pauses = 0

    def ahead(self, name: str) -> bool:
        own = self._engine.input_watermark(name)
        return own is not None and own - self._engine.watermark > self._max_drift

    async def wait(self, name: str) -> None:
        """Return once input ``name`` is within the drift of the engine's watermark."""
        if not self.ahead(name):
            return
        self.pauses += 1
        log.info("input_paused", input=name, reason="ahead_of_watermark")
        while self.ahead(name):  # noqa: ASYNC110 - the watermark moves without telling us
            await asyncio.sleep(ALIGN_POLL_S)  # the others read on; the engine follows them


@dataclass
class _Seen:
    late: int = 0
    skewed: int = 0
    idle: bool = False
    reported_late: int = 0
    reported_skewed: int = 0
    next_report: float = field(default=0.0)


class InputReports:
    """Logs and counts what changed per input since the last look (rate-limited)."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics, self._clock = metrics, clock
        self._seen: dict[str, _Seen] = {}

    def baseline(self, inputs: list[InputState]) -> None:
        """Counts from before this process (a restored engine) are not news."""
        for state in inputs:
            self._seen[state.name] = _Seen(
                state.late, state.skewed, state.idle, state.late, state.skewed
            )

    def look(self, inputs: list[InputState]) -> None:
        now = self._clock()
        idle = 0
        for state in inputs:
            seen = self._seen.setdefault(state.name, _Seen())
            idle += state.idle
            if state.idle != seen.idle:
                seen.idle = state.idle
                self._metrics.input_idle.labels(change="idle" if state.idle else "resumed").inc()
                log.info("input_idle" if state.idle else "input_resumed", input=state.name)
            seen.late, seen.skewed = state.late, state.skewed
            if now >= seen.next_report and self._report(state, seen):
                seen.next_report = now + REPORT_EVERY_S
        self._metrics.inputs.labels(state="idle").set(idle)
        self._metrics.inputs.labels(state="active").set(len(inputs) - idle)

    def _report(self, state: InputState, seen: _Seen) -> bool:
        reported = False
        if seen.late > seen.reported_late:
            log.warning(
                "late_events",
                input=state.name,
                count=seen.late - seen.reported_late,
                behind_s=round(state.late_max_ns / 1e9, 3),
                hint=LATE_HINT,
            )
            seen.reported_late, reported = seen.late, True
        if seen.skewed > seen.reported_skewed:
            log.warning(
                "clock_skew",
                input=state.name,
                count=seen.skewed - seen.reported_skewed,
                detail="events stamped ahead of this host's clock beyond max_clock_skew_s",
            )
            seen.reported_skewed, reported = seen.skewed, True
        return reported
