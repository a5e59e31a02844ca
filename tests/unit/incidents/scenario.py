"""The bundled attack scenario's chains (real files, real engine and rules), for these tests."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Final

from correlation.chain import Chain, to_record
from correlation.engine import Engine, EngineConfig
from correlation.rules import builtin_rules_paths, load_rules
from detector.allowlist import load_allowlist
from detector.commands._inputs import InputStats, merged_batches
from detector.incidents.store import IncidentStore

ROOT: Final = Path(__file__).resolve().parents[3]
SCENARIO: Final = ROOT / "examples" / "attack-scenario"
PQR_PATH: Final = [
    "shop/frontend-6f7c9d8b5-x2x9z",
    "payments/payments-api-7b8c6d5f4-q4w2e",
    "data/report-sync-8x7kq",
]


@cache
def chains() -> tuple[Chain, ...]:
    """Every chain of the scenario, in emission order (allowlist applied, as in the demo)."""
    allowlist = load_allowlist(str(SCENARIO / "allowlist.yaml"))
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig(allowlist=allowlist))
    found: list[Chain] = []
    paths = sorted(SCENARIO.glob("*.jsonl"))
    for batch in merged_batches(paths, InputStats(), lambda *_: None):
        for event in batch:
            found.extend(engine.process(event))
    found.extend(engine.flush())
    return tuple(found)


def filled_store(path: Path, now: float = 1_000.0, **bounds: float) -> IncidentStore:
    """A store at ``path`` holding every scenario chain (stored at ``now``)."""
    store = IncidentStore(
        path,
        bounds.get("max_age_s", 1e9),
        int(bounds.get("max_bytes", 1 << 40)),
        now=lambda: now,
    )
    for chain in chains():
        store.add(to_record(chain), [step.event for step in chain.steps])
    return store


def pqr_incident() -> str:
    return next(c.incident for c in chains() if c.rule == "workload-pivot")
