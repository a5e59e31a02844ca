"""Real Falco alert shapes: list-valued output fields, the connection only in ``fd.name``,
protobuf-JSON time and upper-case priorities (issue 13; samples in tests/data/falco/).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from correlation.engine import Engine
from correlation.event import field_text
from correlation.rules import builtin_rules_paths, load_rules
from correlation.testing import run
from detector.parse import ParseError, parse_document, parse_falco
from detector.parse.connection import server_of
from detector.relay import wire

# "Network Connection outside Local Subnet" (upstream incubating) as Falco 0.37+ renders it
# with append_output pod fields: the server is only in fd.name (plus fd.rport), no fd.sip.
UPSTREAM: dict[str, Any] = {
    "hostname": "node-a",
    "priority": "Warning",
    "rule": "Network Connection outside Local Subnet",
    "source": "syscall",
    "tags": ["T1046", "container", "maturity_incubating", "mitre_discovery", "network"],
    "time": "2026-11-27T01:02:03.000000000Z",
    "output_fields": {
        "container.id": "12fc4de5ccc3",
        "evt.type": "connect",
        "fd.name": "10.244.1.7:43812->10.244.2.9:443",
        "fd.rport": 443,
        "k8s.ns.name": "shop",
        "k8s.pod.name": "web-6c9f7d8b5-x2x7k",
        "proc.cmdline": "python3 worker.py",
        "proc.name": "python3",
    },
}


def _upstream(second: int, server: str) -> dict[str, Any]:
    doc = copy.deepcopy(UPSTREAM)
    doc["time"] = f"2026-11-27T01:02:{second:02d}.000000000Z"
    doc["output_fields"]["fd.name"] = f"10.244.1.7:{40000 + second}->{server}"
    doc["output_fields"]["fd.rport"] = int(server.rsplit(":", 1)[1])
    return doc


@pytest.mark.parametrize(
    ("name", "server"),
    [
        ("172.17.0.9:43812->10.96.0.1:443", ("10.96.0.1", 443)),
        ("fd00:ec2::5:52522->fd00:ec2::254:80", ("fd00:ec2::254", 80)),  # libsinsp's IPv6 form
        ("[fd00::5]:52522->[fd00::254]:8080", ("fd00::254", 8080)),
        ("0.0.0.0:37910->10.1.2.3:21", ("10.1.2.3", 21)),  # a connect() refused at once
    ],
)
def test_server_end_of_a_tuple(name: str, server: tuple[str, int]) -> None:
    assert server_of(name) == server


@pytest.mark.parametrize(
    "name",
    [
        "/etc/shadow",
        "10.0.0.1:53",  # a bound socket, no peer
        "ffff8d8a3c1a4c00->ffff8d8a3c1a4800 /run/containerd/containerd.sock",  # unix socket
        "10.0.0.1:1->10.0.0.2",  # no port
        "10.0.0.1:1->10.0.0.2:70000",
        "->10.0.0.2:80",
        "10.0.0.1:1->[fd00::1:80",
        "10.0.0.1:1->db.shop:5432",  # a resolved name is not an address
    ],
)
def test_not_a_connection_tuple(name: str) -> None:
    assert server_of(name) is None


def test_target_from_fd_name_when_fd_sip_is_absent() -> None:
    event = parse_falco(UPSTREAM)
    assert (event.target.ips, event.target.port) == (("10.244.2.9",), 443)
    assert event.actor.pod_ref == "shop/web-6c9f7d8b5-x2x7k"


def test_fd_sip_wins_and_fd_name_fills_a_missing_port() -> None:
    doc = copy.deepcopy(UPSTREAM)
    doc["output_fields"].update({"fd.sip": "10.244.2.9", "fd.rport": None})
    event = parse_falco(doc)
    assert (event.target.ips, event.target.port) == (("10.244.2.9",), 443)
    doc["output_fields"]["fd.sip"] = "10.9.9.9"  # fd.name names another server: not mixed
    assert parse_falco(doc).target.port == 0


def test_refused_connect_alert_of_our_rules_has_a_target() -> None:
    doc = copy.deepcopy(UPSTREAM)
    doc["rule"] = "LMD Shell Connected to Cluster Internal Address"
    fields = doc["output_fields"]
    fields.update({"fd.name": "0.0.0.0:37910->10.1.2.3:21", "fd.sip": None, "fd.sport": None})
    fields["fd.rport"] = None
    event = parse_falco(doc)
    assert (event.target.ips, event.target.port) == (("10.1.2.3",), 21)


def test_twelve_upstream_connections_from_one_pod_are_an_internal_fanout() -> None:
    docs = [_upstream(i * 4, f"10.244.{i}.9:443") for i in range(12)]
    engine = Engine(load_rules(builtin_rules_paths()))
    chains = run(engine, [parse_falco(doc) for doc in docs])
    (chain,) = [c for c in chains if c.rule == "internal-fanout"]
    assert len(chain.steps) >= 10


def test_list_valued_output_fields_are_kept_as_tuples() -> None:
    doc = copy.deepcopy(UPSTREAM)
    doc["output_fields"]["k8s.pod.labels"] = ["app:web", "tier:front", None, "<NA>"]
    doc["output_fields"]["container.image.digest"] = ["sha256:d977"]
    doc["output_fields"]["proc.args"] = []
    event = parse_falco(doc)
    assert event.fields["k8s.pod.labels"] == ("app:web", "tier:front")
    assert event.fields["container.image.digest"] == ("sha256:d977",)
    assert "proc.args" not in event.fields
    assert field_text(event.fields["k8s.pod.labels"]) == "app:web, tier:front"


def test_list_fields_are_redacted_and_bounded() -> None:
    doc = copy.deepcopy(UPSTREAM)
    doc["output_fields"]["proc.aargs"] = ["--password=hunter2hunter2", "-v"]
    assert "hunter2" not in repr(parse_falco(doc).fields)
    doc["output_fields"]["proc.aargs"] = ["x"] * 65
    with pytest.raises(ParseError) as info:
        parse_falco(doc)
    assert info.value.reason == "too_large"


def test_k8saudit_list_fields_show_in_the_summary() -> None:
    doc = {
        "output": "Warning Pod started using host network",
        "priority": "Warning",
        "rule": "Create HostNetwork Pod",
        "source": "k8s_audit",
        "time": "2026-11-27T01:02:03.000000000Z",
        "output_fields": {
            "ka.req.pod.containers.image": ["busybox", "nginx:1.27"],
            "ka.user.name": "system:serviceaccount:kube-system:replicaset-controller",
        },
    }
    event = parse_falco(doc)
    assert event.fields["ka.req.pod.containers.image"] == ("busybox", "nginx:1.27")
    assert "images busybox, nginx:1.27" in event.summary


def test_list_fields_in_predicates_match_any_element(tmp_path: Path) -> None:
    doc = copy.deepcopy(UPSTREAM)
    doc["output_fields"]["k8s.pod.labels"] = ["app:web", "tier:front"]
    event = parse_falco(doc)
    rule_text = """
rules:
  - id: labelled
    title: t
    description: d
    severity: low
    techniques: [T1046]
    within: 1m
    steps:
      - name: one
        where:
          all:
            - fields.k8s.pod.labels: tier:front
            - fields.k8s.pod.labels: {startswith: "app:"}
        by: actor.pod
"""
    (tmp_path / "labelled.yaml").write_text(rule_text, encoding="utf-8")
    rule = next(r for r in load_rules([*builtin_rules_paths(), tmp_path]) if r.id == "labelled")
    assert rule.matching_steps(event) == ["one"]
    doc["output_fields"]["k8s.pod.labels"] = ["app:web"]
    assert rule.matching_steps(parse_falco(doc)) == []


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        ({"seconds": "1637339716", "nanos": 490784795}, 1637339716_490784795),
        ({"seconds": 1637339716, "nanos": 5}, 1637339716_000000005),
        ({"seconds": "1637339716"}, 1637339716_000000000),
    ],
)
def test_protobuf_json_time_and_upper_case_priority(time: Any, expected: int) -> None:
    doc = dict(UPSTREAM, time=time, priority="NOTICE")
    for event in (parse_falco(doc), *parse_document(_json(doc))):
        assert event.time_ns == expected
        assert event.priority == "notice"


@pytest.mark.parametrize(
    "time",
    [
        {"seconds": "16x"},
        {"seconds": "1637339716", "nanos": 1_000_000_000},
        {"seconds": -1},
        {"seconds": "1637339716", "nanos": 1, "extra": 2},
        {"nanos": 1},
    ],
)
def test_bad_protobuf_json_time_is_refused(time: Any) -> None:
    with pytest.raises(ParseError) as info:
        parse_falco(dict(UPSTREAM, time=time))
    assert info.value.reason in ("bad_time", "bad_type", "missing_field")


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def test_list_fields_survive_the_relay_wire() -> None:
    doc = copy.deepcopy(UPSTREAM)
    doc["output_fields"]["k8s.pod.labels"] = ["app:web", "tier:front"]
    event = parse_falco(doc)
    (back,) = wire.decode(wire.encode([event]))
    assert back == event
    assert back.fields["k8s.pod.labels"] == ("app:web", "tier:front")
