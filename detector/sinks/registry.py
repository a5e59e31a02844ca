"""Sink ``type:`` → factory, and the per-sink routing filter.

Adding a sink: its config struct in :mod:`detector.sinks.config`, its module, and one
line in :data:`SINKS`. Nothing else dispatches on the type.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any, Final

from correlation.chain import severity_rank
from detector.metrics import Metrics
from detector.sinks.base import Sink
from detector.sinks.config import SinkConfig, sink_type
from detector.sinks.file import FileSink
from detector.sinks.formats import Formatter, formatter
from detector.sinks.kafka import KafkaSink
from detector.sinks.slack import SlackSink
from detector.sinks.webhook import WebhookSink

# Each factory takes its own config struct (the tagged union guarantees the match), its
# formatter and the service's metrics, on which a sink counts problems of its own.
Factory = Callable[[Any, Formatter, Metrics | None], Sink]


def _counts_nothing(sink: Callable[[Any, Formatter], Sink]) -> Factory:
    """A sink with no problems of its own to count (delivery counts what it sends)."""
    return lambda config, format_, _metrics: sink(config, format_)


SINKS: Final[dict[str, Factory]] = {
    "kafka": _counts_nothing(KafkaSink),
    "webhook": _counts_nothing(WebhookSink),
    "slack": SlackSink,  # thread-file problems (detector_slack_thread_errors_total)
    "file": _counts_nothing(FileSink),
}


def build_sink(config: SinkConfig, metrics: Metrics | None = None) -> Sink:
    """A ready sink for ``config``; ValueError (naming the key) when a secret is missing.
    ``metrics``: the service's (a registry of the sink's own when None)."""
    return SINKS[sink_type(config)](config, formatter(config.format), metrics)


def accepts(config: SinkConfig, record: dict[str, Any]) -> bool:
    """Routing: severity at or above ``min_severity``, rule included and not excluded."""
    if severity_rank(str(record.get("severity"))) < severity_rank(config.min_severity):
        return False
    rule = str(record.get("rule", ""))
    if config.rules_include and not any(fnmatchcase(rule, p) for p in config.rules_include):
        return False
    return not any(fnmatchcase(rule, p) for p in config.rules_exclude)
