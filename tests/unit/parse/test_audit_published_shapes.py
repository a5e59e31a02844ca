"""Published audit logs that taught the parser: impersonation, ``timestamp`` only, long requests.

* audit2rbac's demo log (v1 and v1beta1): events with only ``timestamp``, and
  ``system:admin`` impersonating users and the service account ``ns1:sa1``;
* a real k3s 1.33 log: bound-token claims, and watches whose ResponseComplete comes
  ~7 minutes after the requestReceivedTimestamp it carries.
"""

from __future__ import annotations

from pathlib import Path

from correlation.event import Event, describe
from detector.parse import parse_line
from detector.parse.long_running import LongRunningStages

DATA = Path(__file__).resolve().parents[2] / "data" / "k8s-audit"
AUDIT2RBAC = DATA / "audit2rbac" / "demo.log.jsonl"
AUDIT2RBAC_V1BETA1 = DATA / "audit2rbac" / "demo.v1beta1.log.jsonl"
K3S = DATA / "hori-k3s" / "k3s-1.33-audit-bound-token.jsonl"


def _events(path: Path) -> list[Event]:
    return [e for line in path.read_bytes().splitlines() if line for e in parse_line(line)]


def test_timestamp_only_events_parse_the_same_in_v1_and_v1beta1() -> None:
    v1, v1beta1 = _events(AUDIT2RBAC), _events(AUDIT2RBAC_V1BETA1)
    assert len(v1) == len(v1beta1) == 37
    assert [(e.id, e.time_ns) for e in v1] == [(e.id, e.time_ns) for e in v1beta1]
    assert v1[0].time_ns == 1505159705 * 10**9  # 2017-09-11T19:55:05Z, its only stamp


def test_impersonated_service_account_is_the_actor() -> None:
    as_sa = [e for e in _events(AUDIT2RBAC) if e.actor.service_account]
    assert as_sa and {e.actor.service_account for e in as_sa} == {"ns1:sa1"}
    assert {e.fields["impersonated_by"] for e in as_sa} == {"system:admin"}
    assert all(e.actor.namespace == "ns1" for e in as_sa)
    assert any(describe(e).startswith("system:admin as ns1:sa1 list pods") for e in as_sa)
    as_bob = [e for e in _events(AUDIT2RBAC) if e.actor.user == "bob"]
    assert as_bob and describe(as_bob[0]).startswith("system:admin as bob ")


def test_k3s_watches_are_one_event_each_at_their_start() -> None:
    events = _events(K3S)
    assert all(e.actor.pod.startswith("linkerd-destination-") for e in events)
    stages = LongRunningStages()
    admitted = [e for e in events if stages.admit(e)]
    # two watches restarting: each old one's ResponseComplete (its start not in the log,
    # so it is that request's one event) and each new one's ResponseStarted; both new
    # requests' RequestReceived carry no decision and are folded
    assert [(e.stage, e.resource) for e in admitted] == [
        ("ResponseComplete", "services"), ("ResponseStarted", "services"),
        ("ResponseComplete", "endpoints"), ("ResponseStarted", "endpoints"),
    ]  # fmt: skip
    assert stages.folded == 2
    assert all(e.id.endswith("/ResponseStarted") for e in admitted)  # one id per request
    old = admitted[0]
    assert old.decision == "allow" and old.time_ns < admitted[1].time_ns - 6 * 60 * 10**9
