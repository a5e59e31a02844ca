"""The early reject at the parse seam: ticks for what nothing can use, the same outcome.

The engine must see the same chains and counters (but ``time_only``) whether it is fed
fully normalized events or the early reject's mix of events and ticks; every event that
is not a tick must equal its plain parse, and a bad line must fail the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from bench.generate import STREAM, Params, generate
from correlation.allowlist import Allowlist
from correlation.chain import to_record
from correlation.engine import Engine, EngineConfig
from correlation.event import Event
from correlation.interest import Interest
from correlation.rules import ChainRule, builtin_rules_paths, load_rules
from detector.allowlist import load_allowlist
from detector.errors import ParseError
from detector.parse import parse_line
from detector.parse.early import EarlyReject
from synthetic import audit, falco, jsonl
from synthetic.times import micros
from tests.unit.correlation.test_interest import LEASES

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "examples" / "attack-scenario"
T = 1_772_445_600 * 1_000_000_000
NO_IMDS = """
rules:
  - id: scans-only
    severity: low
    within: 60s
    steps:
      - {name: scan, where: {rule: Scan}, by: actor.pod}
"""


def _builtin() -> list[ChainRule]:
    return load_rules(builtin_rules_paths())


def _early(rules: list[ChainRule], allowlist: Allowlist | None = None) -> EarlyReject:
    return EarlyReject(Interest(rules, allowlist or Allowlist()))


def _lease(**change: Any) -> bytes:
    doc = audit.event(
        time_ns=T, stage_ns=T + 1000, audit_id="a1", stage="ResponseComplete", level="Metadata",
        uri="/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", verb="update",
        user=audit.user("system:node:n1", ["system:nodes"]), source_ips=["10.0.0.1"],
        user_agent="kubelet", object_ref=audit.object_ref("leases", "kube-node-lease", "n1"),
        status=audit.response_status(200), annotations=audit.authorization(True, "x"),
    )  # fmt: skip
    doc.update(change)
    return jsonl.line(doc)


def test_a_kubelet_lease_update_is_a_tick_with_its_time() -> None:
    early = _early(_builtin())
    (tick,) = parse_line(_lease(), None, early)
    (full,) = parse_line(_lease())
    assert tick == Event(full.time_ns, full.source, "") and early.ticks == 1


def test_a_rule_that_wants_it_makes_it_an_event_again(tmp_path: Path) -> None:
    extra = tmp_path / "leases.yaml"
    extra.write_text(LEASES)
    (event,) = parse_line(_lease(), None, _early([*_builtin(), *load_rules([extra])]))
    assert event == parse_line(_lease())[0]


def test_an_allowlisted_actor_is_not_a_tick() -> None:
    line = _lease(user=audit.user("system:serviceaccount:kube-system:lease-mgr", []))
    assert parse_line(line, None, _early(_builtin())) != parse_line(line)  # a tick
    listed = _early(_builtin(), Allowlist(namespaces=("kube-system",)))
    assert parse_line(line, None, listed) == parse_line(line)  # counted as suppressed later


@pytest.mark.parametrize(
    "change",
    [
        {"apiVersion": "audit.k8s.io/v2"},
        {"auditID": ""},
        {"requestReceivedTimestamp": "2026-03-02T10:00:00.Z"},
        {"requestReceivedTimestamp": "", "stageTimestamp": ""},
        {"sourceIPs": ["10.0.0.1"] * 1000},
    ],
)
def test_a_bad_event_fails_the_same_way(change: dict[str, Any]) -> None:
    errors = []
    for early in (None, _early(_builtin())):
        with pytest.raises(ParseError) as info:
            parse_line(_lease(**change), None, early)
        errors.append((info.value.reason, str(info.value)))
    assert errors[0] == errors[1]


def test_falco_alerts_without_an_actor_that_no_step_wants_are_ticks(tmp_path: Path) -> None:
    path = tmp_path / "scan.yaml"
    path.write_text(NO_IMDS)
    early = _early(load_rules([path]))

    def alert(fields: dict[str, Any]) -> dict[str, Any]:
        return falco.alert(T, "Clear Log Activities", "Warning", ["T1070"], "x", "node-1", fields)

    host = alert({"proc.name": "rm", "container.id": None})
    in_pod = alert({"container.id": "c1", "k8s.pod.name": "p", "k8s.ns.name": "n"})
    scan = {**host, "rule": "Scan"}
    assert parse_line(jsonl.line(host), None, early)[0].id == ""
    assert parse_line(jsonl.line(in_pod), None, early) == parse_line(jsonl.line(in_pod))
    # the step wants a Scan, but joins on the actor's pod, which a host alert never has
    assert parse_line(jsonl.line(scan), None, early)[0].id == ""
    by_node = tmp_path / "by-node.yaml"
    by_node.write_text(NO_IMDS.replace("by: actor.pod", "by: actor.node"))
    wanted = parse_line(jsonl.line(scan), None, _early(load_rules([by_node])))
    assert wanted == parse_line(jsonl.line(scan))
    # every built-in step joins on the actor's pod (the imds one looks at every alert)
    assert parse_line(jsonl.line(host), None, _early(_builtin()))[0].id == ""
    bad = {**host, "priority": "loud"}
    with pytest.raises(ParseError, match="unknown priority"):
        parse_line(jsonl.line(bad), None, early)


# --- the whole outcome: same chains, same counters ----------------------------------------
def _lines(paths: list[Path]) -> list[bytes]:
    events = []
    for path in paths:
        events += path.read_bytes().splitlines()
    return events


def _run(rules: list[ChainRule], config: EngineConfig, events: list[Event]) -> tuple[bytes, Any]:
    engine = Engine(rules, config)
    chains = [c for e in sorted(events, key=lambda e: e.time_ns) for c in engine.process(e)]
    chains += engine.flush()
    return b"".join(orjson.dumps(to_record(c)) for c in chains), engine.stats()


def _same_outcome(
    lines: list[bytes], allowlist: Allowlist, rules: list[ChainRule] | None = None
) -> int:
    rules, config = rules or _builtin(), EngineConfig(allowlist=allowlist)
    early = _early(rules, allowlist)
    plain = [e for line in lines for e in parse_line(line)]
    mixed = [e for line in lines for e in parse_line(line, None, early)]
    for full, got in zip(plain, mixed, strict=True):
        assert got == full or got == Event(full.time_ns, full.source, "")
    chains, stats = _run(rules, config, plain)
    chains_early, stats_early = _run(rules, config, mixed)
    assert chains_early == chains and chains
    assert stats_early.time_only == early.ticks > 0
    assert msgspec.structs.replace(stats_early, time_only=0) == stats
    return early.ticks


def test_the_bundled_scenario_gives_the_same_chains_and_counts() -> None:
    lines = _lines(sorted(SCENARIO.glob("*.jsonl")))
    allowlist = load_allowlist(str(SCENARIO / "allowlist.yaml"))
    assert allowlist
    _same_outcome(lines, allowlist)
    _same_outcome(lines, Allowlist())


def test_a_generated_stream_gives_the_same_chains_and_counts(tmp_path: Path) -> None:
    generate(tmp_path, Params(events=6_000, pods=200, rate=25.0, gap_s=20.0))
    lines = (tmp_path / STREAM).read_bytes().splitlines()
    ticks = _same_outcome(lines, Allowlist(namespaces=("monitoring",)))
    assert ticks > len(lines) // 4  # most of the noise skips normalization


@pytest.mark.parametrize("stage", ["ResponseComplete", "Panic"])
def test_a_watch_that_ends_minutes_later_ticks_at_its_stage_time(stage: str) -> None:
    # a controller's watch closes 7 minutes after it opened: nothing wants it, and its
    # tick stands for when the API server wrote it, so it is not late (long_running.py)
    closed = T + 420 * 10**9
    watch = {"verb": "watch", "stage": stage,
             "stageTimestamp": micros(closed)}  # fmt: skip
    early = _early(_builtin())
    (tick,) = parse_line(_lease(**watch), None, early)
    assert tick.time_ns == closed and tick.id == ""
    (opened,) = parse_line(_lease(verb="watch", stage="ResponseStarted"), None, early)
    assert opened.time_ns == T  # its start ticks at its event time as ever
