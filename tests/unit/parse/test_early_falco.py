"""The early reject of Falco alerts, decided before normalization.

An alert becomes a time-only tick only when it names no actor (pod, container, address,
image, namespace) and no loaded step wants its rule or tags; it is decided from the
decoded alert with the function normalization uses for the actor, follows the rules it
was built from, and refuses a bad alert with exactly the error normalization raises.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from correlation.allowlist import Allowlist
from correlation.event import EMPTY_IDENTITY, FALCO, K8S_AUDIT, Event, Identity
from correlation.interest import Interest
from correlation.rules import ChainRule, load_rules
from detector.errors import ParseError, SkippedInput
from detector.parse import parse_falco, parse_line
from detector.parse.bodies import falco_body
from detector.parse.early import EarlyReject
from detector.parse.falco import FalcoAlert, actor_of, normalize_falco
from detector.parse.limits import MAX_LIST, MAX_OUTPUT_FIELDS
from detector.sources.falco_grpc_wire import response_to_alert
from synthetic import falco
from tests.integration.run import scenario
from tests.unit.parse.test_early import (
    NO_IMDS,
    SCENARIO,
    _builtin,
    _lease,
    _lines,
    _same_outcome,
)

T = 1_772_445_600 * 1_000_000_000
SCANS_ONLY = NO_IMDS  # one rule that wants only Falco's `Scan` alerts
WANTS_LOG_CLEARING = """
rules:
  - id: log-clearing
    severity: low
    within: 60s
    steps:
      - {name: cleared, where: {rule: Clear Log Activities}, by: actor.node}
"""
WANTS_TAG = WANTS_LOG_CLEARING.replace("rule: Clear Log Activities", "tags: T1070")
# the keys that make an actor, one at a time
ACTOR_FIELDS = ("k8s.ns.name", "k8s.pod.name", "container.id", "k8s.pod.ip", "container.ip",
                "container.image.repository", "container.image")  # fmt: skip


_BUILTIN: list[EarlyReject] = []


def _builtin_early() -> EarlyReject:
    """The early reject of the built-in rules, built once (hypothesis runs many cases)."""
    if not _BUILTIN:
        _BUILTIN.append(_early(_builtin()))
    return _BUILTIN[0]


def _rules(tmp_path: Path, *texts: str) -> list[ChainRule]:
    paths = []
    for n, text in enumerate(texts):
        paths.append(tmp_path / f"rules-{n}.yaml")
        paths[-1].write_text(text)
    return load_rules(paths)


def _early(rules: list[ChainRule], allowlist: Allowlist | None = None) -> EarlyReject:
    return EarlyReject(Interest(rules, allowlist or Allowlist()))


def _host_alert(rule: str = "Clear Log Activities", **fields: Any) -> dict[str, Any]:
    base = {"proc.name": "rm", "proc.cmdline": "rm -f /var/log/syslog", "container.id": "host"}
    return falco.alert(T, rule, "Warning", ["T1070", "host"], "x", "node-1", base | fields)


def _body(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)


def _alert(doc: dict[str, Any]) -> FalcoAlert:
    return msgspec.json.decode(_body(doc), type=FalcoAlert)


def test_an_alert_no_step_wants_is_a_tick_with_its_time(tmp_path: Path) -> None:
    early = _early(_rules(tmp_path, SCANS_ONLY))
    full = falco_body(_body(_host_alert()))
    tick = falco_body(_body(_host_alert()), early)
    assert tick == Event(full.time_ns, FALCO, "") and early.ticks == 1
    assert full.actor.node == "node-1" and not full.actor.container_id  # the host, no actor


@pytest.mark.parametrize("wanting", [WANTS_LOG_CLEARING, WANTS_TAG])
def test_a_rule_that_starts_wanting_it_un_rejects_it(tmp_path: Path, wanting: str) -> None:
    body = _body(_host_alert())
    before = _early(_rules(tmp_path, SCANS_ONLY))
    after = _early(_rules(tmp_path, SCANS_ONLY, wanting))  # the rules changed: a new reject
    assert falco_body(body, before).id == ""
    assert falco_body(body, after) == falco_body(body)
    assert after.ticks == 0


@pytest.mark.parametrize(
    ("by", "kept"),
    [("actor.pod", False), ("actor.workload", False), ("actor.node", True), ("target.pod", True)],
)
def test_a_step_keeps_it_only_if_its_join_key_can_have_a_value(
    tmp_path: Path, by: str, kept: bool
) -> None:
    # a host alert has no pod and the resolver cannot find one (no container id); target
    # fields are not known before normalization, so a step joining on them may want it
    body = _body(_host_alert())
    rules = _rules(tmp_path, WANTS_LOG_CLEARING.replace("by: actor.node", f"by: {by}"))
    assert bool(falco_body(body, _early(rules)).id) == kept


def test_a_rule_with_a_suppress_list_keeps_what_its_steps_match(tmp_path: Path) -> None:
    # its suppress list is asked before join keys are read: left to the engine to count
    text = WANTS_LOG_CLEARING.replace("by: actor.node", "by: actor.pod")
    text = text.replace("    within: 60s", "    within: 60s\n    suppress: {namespaces: [ci]}")
    body = _body(_host_alert())
    assert falco_body(body, _early(_rules(tmp_path, text))) == falco_body(body)


def test_the_decision_is_remembered_per_rule_and_tags(tmp_path: Path) -> None:
    early = _early(_rules(tmp_path, SCANS_ONLY, WANTS_LOG_CLEARING))
    other = _host_alert("Read sensitive file untrusted")
    other["tags"] = ["T1555"]
    for _ in range(3):
        assert falco_body(_body(_host_alert()), early).id  # wanted, every time
        assert falco_body(_body(other), early).id == ""
    assert early.ticks == 3


@pytest.mark.parametrize("key", ACTOR_FIELDS)
def test_an_alert_with_an_actor_is_never_rejected(tmp_path: Path, key: str) -> None:
    value = "10.0.0.7" if key.endswith(".ip") else "c0ffee"
    doc = _host_alert(**{key: value})
    early = _early(_rules(tmp_path, SCANS_ONLY))  # no step wants the rule
    assert falco_body(_body(doc), early) == falco_body(_body(doc))
    assert early.ticks == 0


@pytest.mark.parametrize("missing", [None, "<NA>", "", ["a", "b"]])
def test_missing_identity_values_name_no_actor(tmp_path: Path, missing: Any) -> None:
    doc = _host_alert(**dict.fromkeys(ACTOR_FIELDS, missing))
    assert falco_body(_body(doc)).actor.container_id == ""
    assert falco_body(_body(doc), _early(_rules(tmp_path, SCANS_ONLY))).id == ""


_VALUES = st.one_of(
    st.none(), st.sampled_from(["", "<NA>", "host", "p", "10.0.0.1"]), st.integers(-3, 3),
    st.booleans(), st.lists(st.sampled_from(["a", "<NA>"]), max_size=2),
    st.text(max_size=3), st.just("x" * 1500),
)  # fmt: skip
_KEYS = st.sampled_from([*ACTOR_FIELDS, "k8s.pod.uid", "k8s.pod.id", "user.name", "proc.name"])


# no deadline: the first example builds the built-in rules' early reject (slow on a
# loaded machine, and Hypothesis calls a first example over its deadline flaky)
@settings(deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6), st.sampled_from(["", "node-1", "n" * 1100]))
def test_the_actor_is_read_as_the_events_fields_hold_it(fields: dict[str, Any], host: str) -> None:
    doc = falco.alert(T, "Clear Log Activities", "Warning", ["T1070"], "x", host, fields)
    alert = _alert(doc)
    event = normalize_falco(alert)
    actor = actor_of(alert)
    assert actor == event.actor and actor == _actor_from_fields(event)
    got = _builtin_early().falco(alert)
    named = actor.namespace or actor.pod or actor.container_id or actor.ips or actor.image
    assert got == event if named else got == Event(event.time_ns, FALCO, "")


def _actor_from_fields(event: Event) -> Identity:
    """The oracle: the actor from the normalized Event's own ``fields`` (scalars only)."""

    def text(key: str) -> str:
        value = event.fields.get(key, "")
        return value if isinstance(value, str) else ""

    container = text("container.id")
    ips = tuple(dict.fromkeys(ip for ip in (text("k8s.pod.ip"), text("container.ip")) if ip))
    parts = {
        "namespace": text("k8s.ns.name"), "pod": text("k8s.pod.name"),
        "pod_uid": text("k8s.pod.uid") or text("k8s.pod.id"),
        "container_id": "" if container == "host" else container, "user": text("user.name"),
        "image": text("container.image.repository") or text("container.image"), "ips": ips,
    }  # fmt: skip
    # as ever, an alert naming none of these (an image alone, no host) has no actor
    if not (parts["namespace"] or parts["pod"] or container or ips or event.actor.node):
        return EMPTY_IDENTITY
    return Identity(node=event.actor.node, **parts)


@pytest.mark.parametrize(
    "change",
    [
        {"priority": "loud"},
        {"rule": ""},
        {"time": "2026-03-02T10:00:00.Z"},
        {"time": {"seconds": "12x", "nanos": 0}},
        {"time": {"seconds": 1, "nanos": 2_000_000_000}},
        {"tags": ["t"] * (MAX_LIST + 1)},
        {"output_fields": {f"f{n}": "v" for n in range(MAX_OUTPUT_FIELDS + 1)}},
        {"output_fields": {"proc.name": "rm", "k8s.pod.labels": ["l"] * (MAX_LIST + 1)}},
        {"source": "internal"},
        {"rule": "Falco internal: metrics snapshot"},
    ],
)
def test_a_bad_alert_is_refused_with_the_same_error(tmp_path: Path, change: dict[str, Any]) -> None:
    doc = _host_alert() | change
    early = _early(_rules(tmp_path, SCANS_ONLY))
    for parse in (_parse_body, _parse_line, parse_falco):
        outcomes = []
        for reject in (None, early):
            with pytest.raises((ParseError, SkippedInput)) as info:
                parse(doc, reject)
            outcomes.append((type(info.value), info.value.reason, str(info.value)))
        assert outcomes[0] == outcomes[1]
    assert early.ticks == 0


def _parse_body(doc: dict[str, Any], early: EarlyReject | None) -> Event:
    return falco_body(_body(doc), early)


def _parse_line(doc: dict[str, Any], early: EarlyReject | None) -> Event:
    (event,) = parse_line(_body(doc), None, early)
    return event


def test_the_grpc_shape_is_decided_as_the_json_one() -> None:
    doc = _host_alert()
    doc["output_fields"] = {k: str(v) for k, v in doc["output_fields"].items()}  # as gRPC has
    host = response_to_alert(scenario.grpc_response(doc))
    pod = response_to_alert(scenario.grpc_response(scenario.falco_alerts()[0]))
    assert parse_falco(host, _builtin_early()) == Event(parse_falco(host).time_ns, FALCO, "")
    assert parse_falco(pod, _builtin_early()) == parse_falco(pod)


def test_with_host_alerts_ticking_the_chains_and_counts_stay_the_same() -> None:
    lines = _lines(sorted(SCENARIO.glob("*.jsonl")))
    times = sorted(orjson.loads(line)["time"] for line in lines if b'"rule"' in line)
    for n, time in enumerate(times):
        doc = _host_alert("Clear Log Activities" if n % 2 else "Read sensitive file untrusted")
        lines.append(_body(doc | {"time": time}))
    _same_outcome(lines, Allowlist())
    early = _builtin_early()
    falco_ticks = [e for line in lines for e in parse_line(line, None, early)
                   if e.source == FALCO and not e.id]  # fmt: skip
    assert len(falco_ticks) == len(times)  # every host alert, and no alert of the attack


@pytest.mark.parametrize("as_text", [False, True])
def test_an_aks_record_goes_through_the_early_reject_too(as_text: bool) -> None:
    # the envelope is another way in for an audit event: the same decision as a bare one
    event = orjson.loads(_lease())
    log = orjson.dumps(event).decode() if as_text else event
    record = _body({"category": "kube-audit", "properties": {"log": log}, "time": "x"})
    early = _early(_builtin())
    (tick,) = parse_line(record, None, early)
    assert tick == Event(parse_line(record)[0].time_ns, K8S_AUDIT, "") and early.ticks == 1
