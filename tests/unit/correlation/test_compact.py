"""Compact copies of buffered events: what they keep, what they share, the table's bound."""

from __future__ import annotations

from pathlib import Path

import msgspec

from correlation.chain import to_record
from correlation.compact import FIELD_ORDER, Compactor
from correlation.engine import Engine
from correlation.event import EMPTY_IDENTITY, Event, describe
from correlation.keys import fields_read
from correlation.rules import load_rules
from correlation.testing import audit_event, falco_event, run

FANOUT = """
rules:
  - id: fanout
    severity: high
    within: 60s
    steps:
      - name: connect
        where: {rule: Connect}
        by: actor.pod
        count: {min: 3, distinct: fields.fd.sip}
"""


def decoded_twice(event: Event) -> tuple[Event, Event]:
    """Two equal events whose strings are distinct objects, as two decoded lines are."""
    raw = msgspec.json.encode(event)
    return msgspec.json.decode(raw, type=Event), msgspec.json.decode(raw, type=Event)


def test_copy_keeps_every_attribute_but_unread_fields() -> None:
    event = falco_event(
        "Connect", 1, tags=("T1046", "network"), ips=("10.0.0.9",),
        target_ips=("10.1.0.1",), port=443, fields={"fd.sip": "10.1.0.1", "proc.name": "nc"},
    )  # fmt: skip
    copy = Compactor(["fd.sip"]).compact(event)
    assert copy.fields == {"fd.sip": "10.1.0.1"}
    assert msgspec.structs.replace(copy, fields=event.fields) == event
    assert Compactor().compact(event).fields == {}


def test_audit_copy_keeps_what_describe_reads() -> None:
    plain = audit_event("get", "", 1, fields={"request_uri": "/healthz", "user_agent": "x"})
    copy = Compactor().compact(plain)
    assert copy.fields == {"request_uri": "/healthz"}
    unset = msgspec.structs.replace(plain, summary="")
    assert describe(Compactor().compact(unset)) == describe(unset)
    with_resource = audit_event("get", "secrets", 1, fields={"request_uri": "/api/v1/x"})
    assert Compactor().compact(with_resource).fields == {}


def test_repeated_values_are_shared_between_copies() -> None:
    first, second = decoded_twice(audit_event("list", "secrets", 1, namespace="shop"))
    assert first.actor is not second.actor and first.verb == second.verb
    compactor = Compactor()
    a, b = compactor.compact(first), compactor.compact(second)
    assert a.actor is b.actor
    assert a.target is b.target
    assert a.verb is b.verb and a.resource is b.resource and a.stage is b.stage
    assert a.actor.ips is b.actor.ips
    assert a.id is first.id  # unique values are kept, not copied into the table


def test_empty_identity_and_tags_stay_the_defaults() -> None:
    copy = Compactor().compact(falco_event("Scan", 1, pod="", container_id=""))
    assert copy.tags == ()
    assert Compactor().compact(audit_event("list", "pods", 1)).target.pod == ""
    bare = Event(time_ns=1, source="falco", id="x")
    assert Compactor().compact(bare).target is EMPTY_IDENTITY


def test_table_is_bounded() -> None:
    compactor = Compactor(max_entries=8)
    for n in range(50):
        compactor.compact(falco_event(f"Rule {n}", n, pod=f"p-{n}", tags=(f"t{n}",)))
        assert compactor.size <= 8
    compactor.clear()
    assert compactor.size == 0


def test_fields_read_by_key_functions() -> None:
    assert fields_read("fields.fd.sip") == ("fd.sip",)
    assert set(fields_read("target.workload")) == {"workload.name", "workload.generate_name"}
    assert fields_read("actor.pod") == ()


def test_distinct_count_on_a_field_still_sees_it_after_buffering(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(FANOUT)
    rules = load_rules([path])

    def connect(t: float, sip: str) -> Event:
        return falco_event("Connect", t, fields={"fd.sip": sip, "proc.name": "nc"})

    same = [connect(t, "10.1.0.1") for t in range(3)]
    assert run(Engine(rules), same) == []
    distinct = [connect(t, f"10.1.0.{t}") for t in range(3)]
    chains = run(Engine(rules), distinct)
    assert len(chains) == 1
    kept = [s.event.fields for s in chains[0].steps]
    assert kept == [{"fd.sip": f"10.1.0.{t}"} for t in range(3)]  # proc.name was dropped


def test_chain_records_and_snapshots_do_not_depend_on_sharing(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(FANOUT)
    rules = load_rules([path])
    events = [falco_event("Connect", t, fields={"fd.sip": f"10.1.0.{t}"}) for t in range(3)]
    engine = Engine(rules)
    for event in events[:2]:
        engine.process(event)
    data = engine.snapshot()
    restored = Engine.restore(rules, None, data)
    assert restored.snapshot() == data
    chains = run(restored, events[2:])
    expected = run(Engine(rules), events)
    assert [to_record(c) for c in chains] == [to_record(c) for c in expected]


def test_flush_empties_the_table(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(FANOUT)
    engine = Engine(load_rules([path]))
    engine.process(falco_event("Connect", 1, fields={"fd.sip": "10.1.0.1"}))
    assert engine._compactor.size > 0  # private: the table's size has no public gauge
    engine.flush()
    assert engine._compactor.size == 0


def test_positional_field_order_matches_the_event() -> None:
    assert Event.__struct_fields__ == FIELD_ORDER
