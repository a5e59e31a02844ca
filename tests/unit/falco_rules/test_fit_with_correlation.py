"""Fit with correlation: the alert each rule's output produces parses into a normalized Event
with the pod set, and it matches the built-in chain steps the rule is meant to feed.

Uses the real parser (detector.parse.parse_falco) and the real chain-rule model
(correlation.rules: built-in files, ChainRule.matching_steps); no engine state is needed to
decide whether an event is eligible for a step.
"""

from __future__ import annotations

from functools import cache

import pytest

from correlation.rules import ChainRule, builtin_rules_paths, load_rules
from detector.parse import parse_falco
from detector.parse.redact import redact
from falco_rules.tooling.events import alert
from tests.unit.falco_rules.helpers import Case, cases, rules

# rule -> the (chain id, step name) pairs its alerts must be eligible for
FEEDS: dict[str, set[tuple[str, str]]] = {
    "LMD Network Scanner Launched in Pod": {
        ("recon-token-pivot", "recon"),
        ("imds-credential-theft", "discovery-or-credentials"),
        ("workload-pivot", "activity-in-workload"),
        ("exec-pivot", "activity-in-pod"),
    },
    "LMD Netcat or Socat Listen or Scan in Pod": {
        ("recon-token-pivot", "recon"),
        ("workload-pivot", "activity-in-workload"),
        ("exec-pivot", "activity-in-pod"),
    },
    "LMD DNS Service Enumeration in Pod": {
        ("recon-token-pivot", "recon"),
        ("imds-credential-theft", "discovery-or-credentials"),
    },
    "LMD Tool Connected to Cluster Internal Address": {
        ("recon-token-pivot", "recon"),
        ("internal-fanout", "internal-connections"),
    },
    "LMD Shell Connected to Cluster Internal Address": {
        ("recon-token-pivot", "recon"),
        ("internal-fanout", "internal-connections"),
        ("exec-pivot", "activity-in-pod"),
    },
    "LMD Tool Connected to Kubernetes API": {
        ("recon-token-pivot", "recon"),
        ("exec-pivot", "activity-in-pod"),
    },
    "LMD Cloud Metadata Service Contacted": {
        ("imds-credential-theft", "metadata-contact"),
    },
    "LMD Service Account Token Read": {
        ("recon-token-pivot", "token-read"),
        ("stolen-token-replay", "token-read"),
        ("imds-credential-theft", "discovery-or-credentials"),
        ("exec-pivot", "activity-in-pod"),
    },
    "LMD Raw Socket Opened in Pod": {
        ("recon-token-pivot", "recon"),
        ("exec-pivot", "activity-in-pod"),
    },
}
T0 = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z


@cache
def chains() -> dict[str, ChainRule]:
    return {rule.id: rule for rule in load_rules(builtin_rules_paths())}


def first_firing_case(rule: str) -> Case:
    return next(c for c in cases() if c.rule == rule and c.fire and c.event.get("k8s.pod.name"))


def test_every_rule_has_a_feed() -> None:
    assert set(FEEDS) == set(rules().rules)
    named = {chain for feeds in FEEDS.values() for chain, _ in feeds}
    assert named <= set(chains())


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_alert_parses_with_pod_namespace_and_container(name: str) -> None:
    case = first_firing_case(name)
    event = parse_falco(alert(rules().rules[name], case.event, T0, "node-a"))
    assert event.rule == name
    assert event.time_ns == T0
    assert event.actor.namespace == case.event["k8s.ns.name"]
    assert event.actor.pod == case.event["k8s.pod.name"]
    assert event.actor.pod_uid == case.event["k8s.pod.uid"]
    assert event.actor.container_id == case.event["container.id"]
    assert event.actor.image == case.event["container.image.repository"]
    assert event.actor.ips == (case.event["k8s.pod.ip"],)
    # credentials typed on the command line are redacted at parse time, the rest is kept
    assert event.fields["proc.cmdline"] == redact(str(case.event["proc.cmdline"]))
    if "fd.sip" in event.fields:
        assert event.target.ips == (case.event["fd.sip"],)
        assert event.target.port == int(str(case.event["fd.sport"]))


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_alert_matches_the_chain_steps_it_feeds(name: str) -> None:
    event = parse_falco(alert(rules().rules[name], first_firing_case(name).event, T0, "node-a"))
    for chain_id, step in sorted(FEEDS[name]):
        assert step in chains()[chain_id].matching_steps(event), (chain_id, step)


def test_alert_without_pod_metadata_still_carries_the_container() -> None:
    # Early events of a new container: no k8s fields yet; correlation resolves the pod later.
    case = next(c for c in cases() if c.name == "pod metadata not resolved yet")
    doc = alert(rules().rules[case.rule], case.event, T0, "node-a")
    assert doc["output_fields"]["k8s.pod.name"] is None
    event = parse_falco(doc)
    assert event.actor.container_id == case.event["container.id"]
    assert event.actor.pod == ""


def test_metadata_alert_does_not_fill_both_imds_steps() -> None:
    # imds-credential-theft needs a second, different step; one alert must not satisfy both.
    name = "LMD Cloud Metadata Service Contacted"
    event = parse_falco(alert(rules().rules[name], first_firing_case(name).event, T0, "node-a"))
    assert chains()["imds-credential-theft"].matching_steps(event) == ["metadata-contact"]
