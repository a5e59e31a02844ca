"""The summary ``detector replay`` writes to stderr at the end of a run.

Kept apart from the replay loop so the parts that grow (late-event detail, new counters)
are edited here without touching how events flow. Example::

    replay: 1,204 events in 0.21s (5,733 events/s) from 1,210 lines
      rules loaded (6):
        exec-pivot               correlation/rules/exec-pivot.yaml:1
        ...
      events by source: falco=1,040, k8s_audit=164
      chains by rule:   exec-pivot=1, recon-token-pivot=2
      bad lines:        malformed_json=6
      skipped:          none
      late events:      3 (not correlated; 1 would have completed a chain): they arrived ...
      sorted on disk:   audit.log (200,000 events, 7 runs, 66.0 MiB spilled)
      evictions:        none
      suppressed:       12 (allowlist or a rule's suppress: list)
      still open:       4 partial matches, 0 held alerts (expired at the end of input)

Every line is "name: value" so a reader finds one at a glance and a script can grep it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from correlation.rules import ChainRule
from correlation.state import EngineStats
from detector.commands._inputs import InputStats
from detector.commands._spill import SortStats

# What to do about each eviction reason, in the words of the replay's options.
EVICTION_HINTS: dict[str, str] = {
    "key_cap": "one join key held too many step events",
    "total_cap": "all rules together held too many step events",
    "pending_cap": "container-only alerts whose pod never showed up",
    "identity_cap": "too many container/IP -> pod bindings",
    "incident_cap": "too many incidents tracked",
}


@dataclass(frozen=True)
class ReplayTotals:
    """Everything the summary reports, gathered once the replay is over."""

    events: int
    elapsed_s: float
    inputs: InputStats
    chains: Counter[str]
    rules: Sequence[ChainRule]
    engine: EngineStats
    lateness: str  # as given on the command line, e.g. "60s"
    sorts: Mapping[Path, SortStats] = field(default_factory=dict)  # files sorted on disk


def render(totals: ReplayTotals) -> str:
    """The multi-line summary (no trailing newline)."""
    elapsed = max(totals.elapsed_s, 1e-9)
    stats, engine = totals.inputs, totals.engine
    lines = [
        f"replay: {totals.events:,} events in {elapsed:.2f}s "
        f"({totals.events / elapsed:,.0f} events/s) from {stats.lines:,} lines",
        *_rules(totals.rules),
        _row("events by source", counts(stats.events)),
        _row("chains by rule", counts(totals.chains)),
        _row("bad lines", counts(stats.bad)),
        _row("skipped", counts(stats.skipped)),
        _row("late events", _late(engine.late, engine.late_chains_missed, totals.lateness)),
        *(_row("sorted on disk", _sorted(path, sort)) for path, sort in totals.sorts.items()),
        _row("evictions", _evictions(engine.evictions)),
        _row("suppressed", f"{engine.suppressed:,} (allowlist or a rule's suppress: list)"),
        _row(
            "still open",
            f"{engine.partials:,} partial matches, {engine.pending:,} held alerts "
            "(unconfirmed at the end of input)",
        ),
    ]
    return "\n".join(lines)


def counts(counter: Mapping[str, int]) -> str:
    """``a=1, b=2`` sorted by key, or ``none``."""
    if not counter:
        return "none"
    return ", ".join(f"{key}={value:,}" for key, value in sorted(counter.items()))


def _row(name: str, value: str) -> str:
    return f"  {name + ':':<18}{value}"


def _rules(rules: Sequence[ChainRule]) -> list[str]:
    if not rules:
        return [_row("rules loaded", "none")]
    width = max(len(rule.id) for rule in rules) + 2
    found = [f"    {rule.id:<{width}}{_where(rule)}" for rule in sorted(rules, key=_id)]
    return [f"  rules loaded ({len(rules)}):", *found]


def _id(rule: ChainRule) -> str:
    return rule.id


def _where(rule: ChainRule) -> str:
    """``path:line``, the path relative to the working directory when it is below it."""
    path = Path(rule.path)
    try:
        shown = str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        shown = rule.path
    return f"{shown}:{rule.line}"


def _late(late: int, missed: int, lateness: str) -> str:
    if not late:
        return "none"
    return (
        f"{late:,} (not correlated; {missed:,} would have completed a chain): they arrived "
        f"more than --lateness {lateness} behind the newest event time already read; "
        "raise --lateness"
    )


def _sorted(path: Path, sort: SortStats) -> str:
    return (
        f"{path} ({sort.events:,} events, {sort.runs} runs, "
        f"{sort.spilled_bytes / 2**20:,.1f} MiB spilled)"
    )


def _evictions(evictions: Mapping[str, int]) -> str:
    shown = {reason: count for reason, count in evictions.items() if count}
    if not shown:
        return "none"
    parts = [
        f"{reason}={count:,}" + (f" ({EVICTION_HINTS[reason]})" if reason in EVICTION_HINTS else "")
        for reason, count in sorted(shown.items())
    ]
    return "; ".join(parts)
