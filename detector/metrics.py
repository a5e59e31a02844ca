"""Prometheus metrics of the running service, on a registry of its own.

Each :class:`Metrics` owns a fresh ``CollectorRegistry`` (never the process-global one),
so tests and embedded pipelines can build as many as they like. ``/metrics`` renders
:meth:`Metrics.render`. Names, labels and what to alert on are in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from detector.version import build_info

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# Seconds from the last evidence event's time to the chain leaving the engine. Audit
# batches arrive up to 30 s late, windows span minutes, so the buckets reach 30 min.
LATENCY_BUCKETS: Final = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800)
# One checkpoint (snapshot + fsync'd write) takes milliseconds for thousands of partials;
# the upper buckets are there to show a slow disk.
CHECKPOINT_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5)


Kind = type[Counter] | type[Gauge] | type[Histogram]
# What the ``source`` label of intake metrics says: the name of the source or receiver.
INTAKE_SOURCES: Final = (
    "falco_http",
    "k8s_audit",
    "events",
    "falco_grpc",
    "falco_file",
    "audit_file",
    "kafka_events",
)
ENDPOINTS: Final = ("/falco", "/k8s-audit", "/events")


@dataclass(frozen=True, slots=True)
class Spec:
    """One exported metric: the :class:`Metrics` attribute and how it is declared."""

    attr: str
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None
    # The values a label takes, where the code fixes them (docs' alert examples and
    # dashboards may only use these; tests tie them to the code that sets them).
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def build(self, registry: CollectorRegistry) -> Counter | Gauge | Histogram:
        extra: dict[str, Any] = {} if self.buckets is None else {"buckets": self.buckets}
        return self.kind(self.name, self.help, self.labels, registry=registry, **extra)


C, G, H = Counter, Gauge, Histogram
# Registration order is exposition order; docs/operations.md lists every name and label
# (counters gain ``_total`` in the exposition), and the alert rules there depend on them.
SPECS: Final = (
    Spec(
        "events_in",
        "detector_events_in",
        C,
        "Events accepted, by source",
        ("source",),
        values={"source": INTAKE_SOURCES},
    ),
    Spec(
        "parse_errors",
        "detector_parse_errors",
        C,
        "Inputs rejected as unparseable, by source and reason",
        ("source", "reason"),
        values={"source": INTAKE_SOURCES},
    ),
    Spec(
        "http_rejects",
        "detector_http_rejects",
        C,
        "HTTP requests answered 4xx/5xx, by endpoint and status",
        ("endpoint", "status"),
        values={"endpoint": ENDPOINTS, "status": ("400", "401", "413", "415", "429", "503")},
    ),
    Spec(
        "http_refused",
        "detector_http_refused",
        C,
        "POSTs answered 429/503 + Retry-After (nothing kept; the sender should retry)",
        ("endpoint", "reason"),
        values={"endpoint": ENDPOINTS, "reason": ("queue_full", "shutting_down", "over_budget")},
    ),
    Spec(
        "http_inflight_bytes",
        "detector_http_inflight_bytes",
        G,
        "Request body bytes being read or decoded (bounded by http.max_inflight_bytes)",
    ),
    Spec(
        "http_connections_closed",
        "detector_http_connections_closed",
        C,
        "HTTP connections closed by the server's limits or lost mid-request, by reason",
        ("reason",),
    ),
    Spec(
        "drops",
        "detector_dropped_events",
        C,
        "Events accepted or read but not processed, by reason",
        ("reason",),
        values={
            "reason": (
                "shutdown_timeout",
                "skipped_falco_internal",
                "relay_rejected",
                "relay_too_large",
                "relay_shutdown",
            )
        },
    ),
    Spec("queue_depth", "detector_queue_depth", G, "Events waiting for the engine"),
    Spec("queue_capacity", "detector_queue_capacity", G, "buffer.max_events"),
    Spec("chains", "detector_chains_emitted", C, "Confirmed chains, by rule", ("rule",)),
    Spec(
        "partial_matches",
        "detector_engine_partial_matches",
        G,
        "Open partial matches in the engine",
    ),
    Spec(
        "evictions",
        "detector_engine_evictions",
        C,
        "Engine state evicted by a cap, by reason (key_cap, total_cap, pending_cap, ...)",
        ("reason",),
        values={
            "reason": (
                "key_cap",
                "total_cap",
                "pending_cap",
                "identity_cap",
                "incident_cap",
                "restore_unknown_rule",
            )
        },
    ),
    Spec(
        "engine_errors",
        "detector_engine_errors",
        C,
        "Events the engine failed on internally (skipped, stream goes on)",
    ),
    Spec(
        "late_events",
        "detector_engine_late_events",
        C,
        "Events older than the watermark, by source (not correlated)",
        ("source",),
        values={"source": ("falco", "k8s_audit")},  # the event's source, not the intake's
    ),
    Spec(
        "stages_folded",
        "detector_audit_stages_folded",
        C,
        "Later stages of long-running audit requests, folded into their ResponseStarted",
    ),
    Spec("suppressed", "detector_engine_suppressed", C, "Events suppressed by an allowlist"),
    Spec(
        "absorbed",
        "detector_engine_absorbed",
        C,
        "Anchors absorbed into a chain already emitted (one chain, not two)",
    ),
    Spec(
        "time_only",
        "detector_engine_time_only",
        C,
        "Events no loaded rule could use, taken as time-only ticks (the early reject), "
        "and pod-token requests passed as claims that changed nothing (Engine.claimed)",
    ),
    Spec("pending", "detector_engine_pending", G, "Container-only alerts held for their pod"),
    Spec(
        "identity_bindings",
        "detector_engine_identity_bindings",
        G,
        "Container and IP -> pod bindings",
    ),
    Spec(
        "reconnects",
        "detector_source_reconnects",
        C,
        "Source reconnects, by source",
        ("source",),
        values={"source": ("falco_grpc", "falco_file", "audit_file", "kafka_events")},
    ),
    Spec("watermark", "detector_watermark_seconds", G, "Engine watermark (event time, epoch s)"),
    Spec(
        "late_chains_missed",
        "detector_engine_late_chains_missed",
        C,
        "Late events that would have completed a chain not otherwise confirmed",
    ),
    Spec(
        "clock_skew",
        "detector_clock_skew_events",
        C,
        "Events stamped ahead of the receiving clock beyond max_clock_skew_s (correlated, "
        "but moving no watermark), by source and reason",
        ("source", "reason"),
        values={"source": ("falco", "k8s_audit"), "reason": ("ahead",)},
    ),
    Spec(
        "inputs",
        "detector_inputs",
        G,
        "Inputs (senders, files) the engine follows, by state (active, idle)",
        ("state",),
        values={"state": ("active", "idle")},
    ),
    Spec(
        "input_idle",
        "detector_input_idle_changes",
        C,
        "Pulled inputs going idle or resuming, by change",
        ("change",),
        values={"change": ("idle", "resumed")},
    ),
    Spec(
        "latency",
        "detector_chain_latency_seconds",
        H,
        "Event time of the last evidence to chain emission",
        buckets=LATENCY_BUCKETS,
    ),
    Spec(
        "relay_sent",
        "detector_relay_events_sent",
        C,
        "Events a relay delivered to the correlator, by transport",
        ("transport",),
        values={"transport": ("http", "kafka")},
    ),
    Spec(
        "relay_retries",
        "detector_relay_retries",
        C,
        "Relay batch sends that failed transiently and were retried, by transport",
        ("transport",),
        values={"transport": ("http", "kafka")},
    ),
    Spec("checkpoint_saves", "detector_checkpoint_saves", C, "Engine checkpoints written"),
    Spec(
        "checkpoint_failures",
        "detector_checkpoint_failures",
        C,
        "Engine checkpoints not written (write) or not usable at start (the file's reason)",
        ("reason",),
    ),
    Spec("checkpoint_bytes", "detector_checkpoint_bytes", G, "Size of the last engine snapshot"),
    Spec(
        "checkpoint_duration",
        "detector_checkpoint_duration_seconds",
        H,
        "Time to snapshot the engine and write the checkpoint file",
        buckets=CHECKPOINT_BUCKETS,
    ),
    Spec("ready", "detector_ready", G, "1 when /readyz answers 200"),
    Spec(
        "build_info",
        "detector_build_info",
        G,
        "Always 1; the labels say which detector version and Python are running",
        ("version", "python"),
    ),
    Spec("intake_log_bytes", "detector_intake_log_bytes", G, "Bytes in the intake log's segments"),
    Spec(
        "intake_log_replayed",
        "detector_intake_log_replayed",
        C,
        "Logged events queued again at start (after the checkpoint's covered position)",
    ),
    Spec(
        "intake_log_refused",
        "detector_intake_log_refused",
        C,
        "Batches refused because the intake log is full (when_full: refuse)",
    ),
    Spec(
        "intake_log_dropped",
        "detector_intake_log_dropped",
        C,
        "Logged events not yet covered by a checkpoint deleted to make room (drop_oldest)",
    ),
    Spec(
        "intake_log_corrupt",
        "detector_intake_log_corrupt",
        C,
        "Intake log segments cut at a torn or corrupt record at start",
    ),
    Spec(
        "incident_store_errors",
        "detector_incident_store_errors",
        C,
        "Chains the incident store failed to keep (they were delivered anyway)",
    ),
    Spec(
        "incident_store_pruned",
        "detector_incident_store_pruned",
        C,
        "Chains deleted from the incident store by its bounds, by reason (age, size)",
        ("reason",),
        values={"reason": ("age", "size")},
    ),
    # Delivery (detector.delivery.loops): the outbox and the sinks behind it.
    Spec("outbox_submitted", "detector_outbox_submitted", C, "Records stored in the outbox"),
    Spec("outbox_unrouted", "detector_outbox_unrouted", C, "Records no sink's routing wanted"),
    Spec("outbox_rejected", "detector_outbox_rejected", C, "Records refused by submit()"),
    Spec(
        "outbox_expired",
        "detector_outbox_expired",
        C,
        "Records expired",
        ("reason",),
        values={"reason": ("max_records", "max_age", "dead_letter_cap")},
    ),
    Spec(
        "outbox_repeats",
        "detector_outbox_repeats",
        C,
        "Records not owed again: the sink had already acknowledged the id",
        ("sink",),
    ),
    Spec("sink_delivered", "detector_sink_delivered", C, "Records delivered", ("sink",)),
    Spec("sink_failures", "detector_sink_failures", C, "Transient failures", ("sink",)),
    Spec("sink_dead_letters", "detector_sink_dead_letters", C, "Dead-lettered records", ("sink",)),
    Spec("outbox_pending", "detector_outbox_pending", G, "Records owed, per sink", ("sink",)),
    Spec("sink_latency", "detector_sink_delivery_seconds", H, "One deliver() call", ("sink",)),
    Spec(
        "slack_thread_errors",
        "detector_slack_thread_errors",
        C,
        "Slack thread-file problems (threads lost or not kept), by reason",
        ("sink", "reason"),
        values={"reason": ("unreadable", "rows", "unavailable", "write")},
    ),
)


class Metrics:
    """Every counter, gauge and histogram the service exports, one attribute per :data:`SPECS`.

    The annotations below are what callers and mypy see; ``__init__`` fills them from the
    table, and a unit test keeps the two in step (name, kind and order).
    """

    events_in: Counter
    parse_errors: Counter
    http_rejects: Counter
    http_refused: Counter
    http_inflight_bytes: Gauge
    http_connections_closed: Counter
    drops: Counter
    queue_depth: Gauge
    queue_capacity: Gauge
    chains: Counter
    partial_matches: Gauge
    evictions: Counter
    engine_errors: Counter
    late_events: Counter
    stages_folded: Counter
    suppressed: Counter
    absorbed: Counter
    time_only: Counter
    pending: Gauge
    identity_bindings: Gauge
    reconnects: Counter
    watermark: Gauge
    late_chains_missed: Counter
    clock_skew: Counter
    inputs: Gauge
    input_idle: Counter
    latency: Histogram
    relay_sent: Counter
    relay_retries: Counter
    checkpoint_saves: Counter
    checkpoint_failures: Counter
    checkpoint_bytes: Gauge
    checkpoint_duration: Histogram
    ready: Gauge
    build_info: Gauge
    intake_log_bytes: Gauge
    intake_log_replayed: Counter
    intake_log_refused: Counter
    intake_log_dropped: Counter
    intake_log_corrupt: Counter
    incident_store_errors: Counter
    incident_store_pruned: Counter
    outbox_submitted: Counter
    outbox_unrouted: Counter
    outbox_rejected: Counter
    outbox_expired: Counter
    outbox_repeats: Counter
    sink_delivered: Counter
    sink_failures: Counter
    sink_dead_letters: Counter
    outbox_pending: Gauge
    sink_latency: Histogram
    slack_thread_errors: Counter

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        for spec in SPECS:
            setattr(self, spec.attr, spec.build(self.registry))
        self.build_info.labels(**build_info()).set(1)

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of one sample (0.0 when absent); handy in tests and logs."""
        found = self.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else found


class EngineExport:
    """Copies ``EngineStats`` into :class:`Metrics`: gauges as they are, counters by delta.

    The baseline is the stats at construction, so a restored engine's totals from before
    a restart are not replayed as one jump. The engine counts an internal exception as
    eviction reason ``error``; that is exported as ``detector_engine_errors_total``, not
    as an eviction.
    """

    def __init__(self, metrics: Metrics, baseline: Any = None) -> None:
        self._metrics = metrics
        self._seen: dict[tuple[str, str], float] = {}
        if baseline is not None:
            self._seen = dict(self._counters(baseline))

    def apply(self, stats: Any) -> None:
        values = _as_mapping(stats)
        self._metrics.partial_matches.set(float(values.get("partials", 0)))
        self._metrics.pending.set(float(values.get("pending", 0)))
        self._metrics.identity_bindings.set(float(values.get("identity_bindings", 0)))
        for key, total in self._counters(stats):
            grown = total - self._seen.get(key, 0.0)
            if grown > 0:
                self._counter(key).inc(grown)
            self._seen[key] = max(total, self._seen.get(key, 0.0))

    @staticmethod
    def _counters(stats: Any) -> list[tuple[tuple[str, str], float]]:
        values = _as_mapping(stats)
        found = [(("suppressed", ""), float(values.get("suppressed", 0)))]
        found.append((("absorbed", ""), float(values.get("absorbed", 0))))
        found.append((("time_only", ""), float(values.get("time_only", 0))))
        found.append((("late_chains_missed", ""), float(values.get("late_chains_missed", 0))))
        for source, count in dict(values.get("clock_skew") or {}).items():
            found.append((("clock_skew", str(source)), float(count)))
        for reason, count in dict(values.get("evictions") or {}).items():
            kind = "errors" if reason == "error" else "evictions"
            found.append(((kind, str(reason)), float(count)))
        return found

    def _counter(self, key: tuple[str, str]) -> Any:
        kind, reason = key
        if kind == "evictions":
            return self._metrics.evictions.labels(reason=reason)
        if kind == "clock_skew":
            return self._metrics.clock_skew.labels(source=reason, reason="ahead")
        return {
            "errors": self._metrics.engine_errors,
            "suppressed": self._metrics.suppressed,
            "absorbed": self._metrics.absorbed,
            "time_only": self._metrics.time_only,
            "late_chains_missed": self._metrics.late_chains_missed,
        }[kind]


def _as_mapping(stats: Any) -> Mapping[str, Any]:
    """An EngineStats struct (or a plain mapping, or any object) as a mapping."""
    if isinstance(stats, Mapping):
        return stats
    fields: tuple[str, ...] = tuple(getattr(stats, "__struct_fields__", ()))
    return {name: getattr(stats, name) for name in fields or tuple(vars(stats))}
