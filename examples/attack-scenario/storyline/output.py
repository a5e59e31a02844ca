"""Write a scenario as the committed files: Falco per node, audit split over two replicas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthetic import audit, jsonl

from .scenario import Scenario

AUDIT_LOG = "audit-apiserver-1.jsonl"
AUDIT_WEBHOOK = "audit-webhook-apiserver-2.jsonl"
WEBHOOK_BATCH = 400  # events per EventList post


def write(s: Scenario, out: Path) -> dict[str, int]:
    """Write every file under ``out``; returns lines written per file name."""
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for node, alerts in s.falco.by_node.items():
        name = f"falco-{node}.jsonl"
        counts[name] = jsonl.write(out / name, _by_time(alerts))
    events = _by_time(s.audit.events)
    # two API server replicas: one writes a log file, the other posts webhook batches
    log = [e for i, e in enumerate(events) if i % 3 != 2]
    hook = [e for i, e in enumerate(events) if i % 3 == 2]
    counts[AUDIT_LOG] = jsonl.write(out / AUDIT_LOG, log)
    counts[AUDIT_WEBHOOK] = jsonl.write(out / AUDIT_WEBHOOK, _event_lists(hook))
    return counts


def _by_time(timed: list[tuple[Any, dict[str, Any]]]) -> list[dict[str, Any]]:
    # a stable sort on the time alone: equal times keep their generation order
    return [doc for _, doc in sorted(timed, key=lambda item: item[0])]


def _event_lists(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    batches = range(0, len(events), WEBHOOK_BATCH)
    return [audit.event_list(events[i : i + WEBHOOK_BATCH]) for i in batches]
