"""The exported metrics stay exactly what docs/operations.md and the alert rules name.

``EXPECTED`` was taken from ``Metrics()`` before its declarations became a table: attribute,
exported name, kind, help text and label names, in registration order. Only public
prometheus_client API is used to read them back (``collect()`` and ``labels()``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import typing

from detector.metrics import CHECKPOINT_BUCKETS, LATENCY_BUCKETS, Metrics

EXPECTED: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    ("events_in", "detector_events_in", "counter", "Events accepted, by source", ("source",)),
    (
        "parse_errors",
        "detector_parse_errors",
        "counter",
        "Inputs rejected as unparseable, by source and reason",
        ("source", "reason"),
    ),
    (
        "http_rejects",
        "detector_http_rejects",
        "counter",
        "HTTP requests answered 4xx/5xx, by endpoint and status",
        ("endpoint", "status"),
    ),
    (
        "http_refused",
        "detector_http_refused",
        "counter",
        "POSTs answered 429/503 + Retry-After (nothing kept; the sender should retry)",
        ("endpoint", "reason"),
    ),
    (
        "http_inflight_bytes",
        "detector_http_inflight_bytes",
        "gauge",
        "Request body bytes being read or decoded (bounded by http.max_inflight_bytes)",
        (),
    ),
    (
        "http_connections_closed",
        "detector_http_connections_closed",
        "counter",
        "HTTP connections closed by the server's limits or lost mid-request, by reason",
        ("reason",),
    ),
    (
        "drops",
        "detector_dropped_events",
        "counter",
        "Events accepted or read but not processed, by reason",
        ("reason",),
    ),
    ("queue_depth", "detector_queue_depth", "gauge", "Events waiting for the engine", ()),
    ("queue_capacity", "detector_queue_capacity", "gauge", "buffer.max_events", ()),
    ("chains", "detector_chains_emitted", "counter", "Confirmed chains, by rule", ("rule",)),
    (
        "partial_matches",
        "detector_engine_partial_matches",
        "gauge",
        "Open partial matches in the engine",
        (),
    ),
    (
        "evictions",
        "detector_engine_evictions",
        "counter",
        "Engine state evicted by a cap, by reason (key_cap, total_cap, pending_cap, ...)",
        ("reason",),
    ),
    (
        "engine_errors",
        "detector_engine_errors",
        "counter",
        "Events the engine failed on internally (skipped, stream goes on)",
        (),
    ),
    (
        "late_events",
        "detector_engine_late_events",
        "counter",
        "Events older than the watermark, by source (not correlated)",
        ("source",),
    ),
    (
        "stages_folded",
        "detector_audit_stages_folded",
        "counter",
        "Later stages of long-running audit requests, folded into their ResponseStarted",
        (),
    ),
    (
        "suppressed",
        "detector_engine_suppressed",
        "counter",
        "Events suppressed by an allowlist",
        (),
    ),
    (
        "absorbed",
        "detector_engine_absorbed",
        "counter",
        "Anchors absorbed into a chain already emitted (one chain, not two)",
        (),
    ),
    (
        "time_only",
        "detector_engine_time_only",
        "counter",
        "Events no loaded rule could use, taken as time-only ticks (the early reject), "
        "and pod-token requests passed as claims that changed nothing (Engine.claimed)",
        (),
    ),
    ("pending", "detector_engine_pending", "gauge", "Container-only alerts held for their pod", ()),
    (
        "identity_bindings",
        "detector_engine_identity_bindings",
        "gauge",
        "Container and IP -> pod bindings",
        (),
    ),
    (
        "reconnects",
        "detector_source_reconnects",
        "counter",
        "Source reconnects, by source",
        ("source",),
    ),
    (
        "watermark",
        "detector_watermark_seconds",
        "gauge",
        "Engine watermark (event time, epoch s)",
        (),
    ),
    (
        "late_chains_missed",
        "detector_engine_late_chains_missed",
        "counter",
        "Late events that would have completed a chain not otherwise confirmed",
        (),
    ),
    (
        "clock_skew",
        "detector_clock_skew_events",
        "counter",
        "Events stamped ahead of the receiving clock beyond max_clock_skew_s (correlated, "
        "but moving no watermark), by source and reason",
        ("source", "reason"),
    ),
    (
        "inputs",
        "detector_inputs",
        "gauge",
        "Inputs (senders, files) the engine follows, by state (active, idle)",
        ("state",),
    ),
    (
        "input_idle",
        "detector_input_idle_changes",
        "counter",
        "Pulled inputs going idle or resuming, by change",
        ("change",),
    ),
    (
        "latency",
        "detector_chain_latency_seconds",
        "histogram",
        "Event time of the last evidence to chain emission",
        (),
    ),
    (
        "relay_sent",
        "detector_relay_events_sent",
        "counter",
        "Events a relay delivered to the correlator, by transport",
        ("transport",),
    ),
    (
        "relay_retries",
        "detector_relay_retries",
        "counter",
        "Relay batch sends that failed transiently and were retried, by transport",
        ("transport",),
    ),
    ("checkpoint_saves", "detector_checkpoint_saves", "counter", "Engine checkpoints written", ()),
    (
        "checkpoint_failures",
        "detector_checkpoint_failures",
        "counter",
        "Engine checkpoints not written (write) or not usable at start (the file's reason)",
        ("reason",),
    ),
    (
        "checkpoint_bytes",
        "detector_checkpoint_bytes",
        "gauge",
        "Size of the last engine snapshot",
        (),
    ),
    (
        "checkpoint_duration",
        "detector_checkpoint_duration_seconds",
        "histogram",
        "Time to snapshot the engine and write the checkpoint file",
        (),
    ),
    ("ready", "detector_ready", "gauge", "1 when /readyz answers 200", ()),
    (
        "build_info",
        "detector_build_info",
        "gauge",
        "Always 1; the labels say which detector version and Python are running",
        ("version", "python"),
    ),
    (
        "intake_log_bytes",
        "detector_intake_log_bytes",
        "gauge",
        "Bytes in the intake log's segments",
        (),
    ),
    (
        "intake_log_replayed",
        "detector_intake_log_replayed",
        "counter",
        "Logged events queued again at start (after the checkpoint's covered position)",
        (),
    ),
    (
        "intake_log_refused",
        "detector_intake_log_refused",
        "counter",
        "Batches refused because the intake log is full (when_full: refuse)",
        (),
    ),
    (
        "intake_log_dropped",
        "detector_intake_log_dropped",
        "counter",
        "Logged events not yet covered by a checkpoint deleted to make room (drop_oldest)",
        (),
    ),
    (
        "intake_log_corrupt",
        "detector_intake_log_corrupt",
        "counter",
        "Intake log segments cut at a torn or corrupt record at start",
        (),
    ),
    (
        "incident_store_errors",
        "detector_incident_store_errors",
        "counter",
        "Chains the incident store failed to keep (they were delivered anyway)",
        (),
    ),
    (
        "incident_store_pruned",
        "detector_incident_store_pruned",
        "counter",
        "Chains deleted from the incident store by its bounds, by reason (age, size)",
        ("reason",),
    ),
    # the delivery families, declared in detector/delivery/loops.py until they joined SPECS
    (
        "outbox_submitted",
        "detector_outbox_submitted",
        "counter",
        "Records stored in the outbox",
        (),
    ),
    (
        "outbox_unrouted",
        "detector_outbox_unrouted",
        "counter",
        "Records no sink's routing wanted",
        (),
    ),
    ("outbox_rejected", "detector_outbox_rejected", "counter", "Records refused by submit()", ()),
    ("outbox_expired", "detector_outbox_expired", "counter", "Records expired", ("reason",)),
    (
        "outbox_repeats",
        "detector_outbox_repeats",
        "counter",
        "Records not owed again: the sink had already acknowledged the id",
        ("sink",),
    ),
    ("sink_delivered", "detector_sink_delivered", "counter", "Records delivered", ("sink",)),
    ("sink_failures", "detector_sink_failures", "counter", "Transient failures", ("sink",)),
    (
        "sink_dead_letters",
        "detector_sink_dead_letters",
        "counter",
        "Dead-lettered records",
        ("sink",),
    ),
    ("outbox_pending", "detector_outbox_pending", "gauge", "Records owed, per sink", ("sink",)),
    (
        "sink_latency",
        "detector_sink_delivery_seconds",
        "histogram",
        "One deliver() call",
        ("sink",),
    ),
    (
        "slack_thread_errors",
        "detector_slack_thread_errors",
        "counter",
        "Slack thread-file problems (threads lost or not kept), by reason",
        ("sink", "reason"),
    ),
]
# Metrics added after the hash below was taken; their exposition is checked on its own.
ADDED_LATER = ("detector_build_info", "detector_engine_time_only", "detector_slack_thread_errors")
# sha256 of the exposition below (every labelled metric labelled once, ``_created`` lines
# dropped: they carry the wall clock), taken before the table refactor and re-taken when
# the per-input event-time metrics (clock skew, inputs, idle changes, late chains), the
# long-running stage fold counter, detector_http_connections_closed, the intake log ones,
# the incident store's two and the delivery families (moved in from the delivery loops)
# came.
EXPOSITION_SHA256 = "4ddfcfad493abfd9b566bd6d1d8dcbdb16b95f00612b5185efa0a8df2968770a"


def _labelled(metrics: Metrics) -> Metrics:
    """Give every labelled metric one child so its samples (and label names) show."""
    for attr, name, *_, labels in EXPECTED:
        if labels and name != "detector_build_info":  # labelled by Metrics() itself
            child = getattr(metrics, attr).labels(**{label: "x" for label in labels})
            if hasattr(child, "inc"):  # a histogram's child shows without an observation
                child.inc()
    return metrics


def _family_labels(samples: list[typing.Any]) -> set[tuple[str, ...]]:
    return {tuple(k for k in sample.labels if k != "le") for sample in samples}


def test_families_are_the_documented_names_kinds_help_and_labels() -> None:
    families = list(_labelled(Metrics()).registry.collect())
    seen = [(f.name, f.type, f.documentation, _family_labels(f.samples)) for f in families]
    want = [(name, kind, help_, {labels}) for _, name, kind, help_, labels in EXPECTED]
    assert seen == want


def test_every_metric_is_a_typed_attribute() -> None:
    metrics = Metrics()
    hints = typing.get_type_hints(Metrics)
    assert list(hints) == [attr for attr, *_ in EXPECTED]
    for attr, _, kind, *_ in EXPECTED:
        assert type(getattr(metrics, attr)).__name__.lower() == kind, attr
        assert hints[attr].__name__.lower() == kind, attr


def test_histogram_buckets_are_unchanged() -> None:
    families = {f.name: f for f in Metrics().registry.collect()}

    def bounds(name: str) -> list[float]:
        samples = families[name].samples
        return [float(s.labels["le"]) for s in samples if s.name.endswith("_bucket")]

    assert bounds("detector_chain_latency_seconds") == [*LATENCY_BUCKETS, float("inf")]
    assert bounds("detector_checkpoint_duration_seconds") == [*CHECKPOINT_BUCKETS, float("inf")]


def test_exposition_bytes_are_unchanged() -> None:
    text = _labelled(Metrics()).render().decode()
    kept = "".join(
        line + "\n"
        for line in text.splitlines()
        if "_created" not in line and not any(name in line for name in ADDED_LATER)
    )
    assert hashlib.sha256(kept.encode()).hexdigest() == EXPOSITION_SHA256


def test_build_info_names_the_installed_version_and_python() -> None:
    text = Metrics().render().decode()
    want = (
        f'detector_build_info{{python="{platform.python_version()}",'
        f'version="{importlib.metadata.version("lateral-chain-detector")}"}} 1.0'
    )
    assert want in text.splitlines()
