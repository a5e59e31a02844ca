"""Prometheus metrics of the running service, on a registry of its own.

Each :class:`Metrics` owns a fresh ``CollectorRegistry`` (never the process-global one),
so tests and embedded pipelines can build as many as they like. ``/metrics`` renders
:meth:`Metrics.render`. Names, labels and what to alert on are in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# Seconds from the last evidence event's time to the chain leaving the engine. Audit
# batches arrive up to 30 s late, windows span minutes, so the buckets reach 30 min.
LATENCY_BUCKETS: Final = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800)
# One checkpoint (snapshot + fsync'd write) takes milliseconds for thousands of partials;
# the upper buckets are there to show a slow disk.
CHECKPOINT_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5)


class Metrics:
    """Every counter, gauge and histogram the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.events_in = Counter(
            "detector_events_in", "Events accepted, by source", ["source"], registry=reg
        )
        self.parse_errors = Counter(
            "detector_parse_errors",
            "Inputs rejected as unparseable, by source and reason",
            ["source", "reason"],
            registry=reg,
        )
        self.http_rejects = Counter(
            "detector_http_rejects",
            "HTTP requests answered 4xx/5xx, by endpoint and status",
            ["endpoint", "status"],
            registry=reg,
        )
        self.http_refused = Counter(
            "detector_http_refused",
            "POSTs answered 429/503 + Retry-After (nothing kept; the sender should retry)",
            ["endpoint", "reason"],
            registry=reg,
        )
        self.http_inflight_bytes = Gauge(
            "detector_http_inflight_bytes",
            "Request body bytes being read or decoded (bounded by http.max_inflight_bytes)",
            registry=reg,
        )
        self.drops = Counter(
            "detector_dropped_events",
            "Events accepted or read but not processed, by reason",
            ["reason"],
            registry=reg,
        )
        self.queue_depth = Gauge(
            "detector_queue_depth", "Events waiting for the engine", registry=reg
        )
        self.queue_capacity = Gauge("detector_queue_capacity", "buffer.max_events", registry=reg)
        self.chains = Counter(
            "detector_chains_emitted", "Confirmed chains, by rule", ["rule"], registry=reg
        )
        self.partial_matches = Gauge(
            "detector_engine_partial_matches", "Open partial matches in the engine", registry=reg
        )
        self.evictions = Counter(
            "detector_engine_evictions",
            "Engine state evicted by a cap, by reason (key_cap, total_cap, pending_cap, ...)",
            ["reason"],
            registry=reg,
        )
        self.engine_errors = Counter(
            "detector_engine_errors",
            "Events the engine failed on internally (skipped, stream goes on)",
            registry=reg,
        )
        self.late_events = Counter(
            "detector_engine_late_events",
            "Events older than the watermark, by source (not correlated)",
            ["source"],
            registry=reg,
        )
        self.suppressed = Counter(
            "detector_engine_suppressed", "Events suppressed by an allowlist", registry=reg
        )
        self.absorbed = Counter(
            "detector_engine_absorbed",
            "Anchors absorbed into a chain already emitted (one chain, not two)",
            registry=reg,
        )
        self.pending = Gauge(
            "detector_engine_pending", "Container-only alerts held for their pod", registry=reg
        )
        self.identity_bindings = Gauge(
            "detector_engine_identity_bindings", "Container and IP -> pod bindings", registry=reg
        )
        self.reconnects = Counter(
            "detector_source_reconnects", "Source reconnects, by source", ["source"], registry=reg
        )
        self.watermark = Gauge(
            "detector_watermark_seconds", "Engine watermark (event time, epoch s)", registry=reg
        )
        self.latency = Histogram(
            "detector_chain_latency_seconds",
            "Event time of the last evidence to chain emission",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.relay_sent = Counter(
            "detector_relay_events_sent",
            "Events a relay delivered to the correlator, by transport",
            ["transport"],
            registry=reg,
        )
        self.relay_retries = Counter(
            "detector_relay_retries",
            "Relay batch sends that failed transiently and were retried, by transport",
            ["transport"],
            registry=reg,
        )
        self.checkpoint_saves = Counter(
            "detector_checkpoint_saves", "Engine checkpoints written", registry=reg
        )
        self.checkpoint_failures = Counter(
            "detector_checkpoint_failures",
            "Engine checkpoints not written (write) or not usable at start (the file's reason)",
            ["reason"],
            registry=reg,
        )
        self.checkpoint_bytes = Gauge(
            "detector_checkpoint_bytes", "Size of the last engine snapshot", registry=reg
        )
        self.checkpoint_duration = Histogram(
            "detector_checkpoint_duration_seconds",
            "Time to snapshot the engine and write the checkpoint file",
            buckets=CHECKPOINT_BUCKETS,
            registry=reg,
        )
        self.ready = Gauge("detector_ready", "1 when /readyz answers 200", registry=reg)

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
        for reason, count in dict(values.get("evictions") or {}).items():
            kind = "errors" if reason == "error" else "evictions"
            found.append(((kind, str(reason)), float(count)))
        return found

    def _counter(self, key: tuple[str, str]) -> Any:
        kind, reason = key
        if kind == "evictions":
            return self._metrics.evictions.labels(reason=reason)
        return {
            "errors": self._metrics.engine_errors,
            "suppressed": self._metrics.suppressed,
            "absorbed": self._metrics.absorbed,
        }[kind]


def _as_mapping(stats: Any) -> Mapping[str, Any]:
    """An EngineStats struct (or a plain mapping, or any object) as a mapping."""
    if isinstance(stats, Mapping):
        return stats
    fields: tuple[str, ...] = tuple(getattr(stats, "__struct_fields__", ()))
    return {name: getattr(stats, name) for name in fields or tuple(vars(stats))}
