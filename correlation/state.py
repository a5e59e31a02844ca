"""Engine configuration, statistics and the snapshot format (all msgspec Structs)."""

from __future__ import annotations

import msgspec

from correlation.allowlist import EMPTY_ALLOWLIST, Allowlist
from correlation.event import Event
from correlation.identity import ResolverState
from correlation.incidents import IncidentState
from correlation.watermarks import InputState, WatermarkConfig

SECOND = 1_000_000_000


class EngineConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Engine limits. Times are nanoseconds of event time."""

    # the disorder bound of an input that declares none (see correlation.watermarks)
    lateness_ns: int = 60 * SECOND
    hold_ns: int = 10 * SECOND  # a container-only alert waits this long for its pod
    watermarks: WatermarkConfig = WatermarkConfig()
    max_partials_per_key: int = 256  # buffered step events per rule, step and join key
    max_partials_total: int = 1_000_000
    allowlist: Allowlist = EMPTY_ALLOWLIST
    max_pending: int = 10_000  # container-only Falco alerts waiting for their pod
    max_identities: int = 200_000  # container and IP bindings
    incident_window_ns: int = 3600 * SECOND
    max_incident_entities: int = 100_000


class EngineStats(msgspec.Struct):
    """Counters and gauges; ``evictions`` by reason, ``chains`` by rule id."""

    events: int = 0
    late: int = 0
    late_chains_missed: int = 0  # late events that would have completed a chain
    clock_skew: dict[str, int] = {}  # events stamped ahead of the clock, by source
    time_only: int = 0  # of ``events``: time-only ticks (no step or binding could use them)
    suppressed: int = 0
    absorbed: int = 0
    partials: int = 0
    pending: int = 0
    identity_bindings: int = 0
    watermark_ns: int = 0
    evictions: dict[str, int] = {}
    chains: dict[str, int] = {}


class Entry(msgspec.Struct, array_like=True):
    """One buffered step event under one join key."""

    rule: str
    step: int
    key: tuple[str, ...]
    event: Event


class Window(msgspec.Struct, array_like=True):
    """An emitted chain's window, kept to absorb later anchors inside it."""

    rule: str
    key: tuple[str, ...]
    anchor_ns: int
    chain_id: str


class Snapshot(msgspec.Struct, array_like=True):
    """Everything needed to continue after a restart (``Engine.snapshot``)."""

    version: int
    clock_ns: int  # the receiving clock when taken (0: none was given)
    watermark_ns: int
    inputs: list[InputState]
    entries: list[Entry]
    windows: list[Window]
    pending: list[Event]
    identity: ResolverState
    incidents: IncidentState
    stats: EngineStats
