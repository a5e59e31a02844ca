"""Trimmed parsing: noise is built without actor/target/fields, and nothing else changes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import msgspec
import orjson

from correlation.allowlist import Allowlist
from correlation.chain import to_record
from correlation.engine import Engine, EngineConfig
from correlation.event import EMPTY_IDENTITY, Event
from correlation.rules import builtin_rules_paths, load_rules
from detector.commands._inputs import InputStats, merged_batches
from detector.parse import parse_line
from detector.parse.trim import Trimmer

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = sorted((ROOT / "examples" / "attack-scenario").glob("*.jsonl"))
KUBELET: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "auditID": "k-1",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/shop/pods/web-1",
    "verb": "get",
    "user": {"username": "system:node:node-a"},
    "sourceIPs": ["10.0.0.9"],
    "userAgent": "kubelet/v1.30",
    "objectRef": {"resource": "pods", "namespace": "shop", "name": "web-1"},
    "responseStatus": {"code": 200},
    "requestReceivedTimestamp": "2026-01-01T00:00:00.000001Z",
}


def _engine() -> Engine:
    return Engine(load_rules(builtin_rules_paths()), EngineConfig(lateness_ns=60 * 10**9))


def _line(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)


def test_noise_is_trimmed_but_keeps_time_and_id() -> None:
    keep = Trimmer(_engine().wants)
    [full] = parse_line(_line(KUBELET))
    [trimmed] = parse_line(_line(KUBELET), keep=keep)
    assert (trimmed.time_ns, trimmed.id, trimmed.verb, trimmed.resource) == (
        full.time_ns, full.id, "get", "pods",
    )  # fmt: skip
    assert trimmed.actor is EMPTY_IDENTITY
    assert trimmed.fields == {}
    assert full.actor.user == "system:node:node-a"


def test_exec_and_bound_token_requests_are_built_in_full() -> None:
    keep = Trimmer(_engine().wants)
    exec_doc = copy.deepcopy(KUBELET)
    exec_doc["objectRef"]["subresource"] = "exec"
    exec_doc["verb"] = "create"
    [event] = parse_line(_line(exec_doc), keep=keep)
    assert event.actor.user == "system:node:node-a"
    # own-namespace read by a bound token: no step wants it, but it teaches IP -> pod
    token = copy.deepcopy(KUBELET)
    token["user"] = {
        "username": "system:serviceaccount:shop:web",
        "extra": {"authentication.kubernetes.io/pod-name": ["web-1"]},
    }
    token["verb"], token["objectRef"] = "update", {"resource": "leases", "namespace": "shop"}
    [event] = parse_line(_line(token), keep=keep)
    assert event.actor.pod == "web-1"


def test_allowlist_turns_trimming_off() -> None:
    allowlist = msgspec.convert({"namespaces": ["ci"]}, Allowlist)
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig(allowlist=allowlist))
    [event] = parse_line(_line(KUBELET), keep=Trimmer(engine.wants))
    assert event.actor.user == "system:node:node-a"


def _replay(files: list[Path], trim: bool) -> tuple[list[bytes], Any, Any, int]:
    engine = _engine()
    keep = Trimmer(engine.wants) if trim else None
    out: list[bytes] = []
    count = 0
    for batch in merged_batches(files, InputStats(), lambda *_: None, keep=keep):
        for event in batch:
            count += event.actor is EMPTY_IDENTITY
            out += [orjson.dumps(to_record(c)) for c in engine.process(event)]
    out += [orjson.dumps(to_record(c)) for c in engine.flush()]
    return out, engine.stats(), msgspec.json.encode(engine._resolver.state), count


def test_same_chains_stats_and_identity_bindings_as_untrimmed() -> None:
    full = _replay(SCENARIO, trim=False)
    trimmed = _replay(SCENARIO, trim=True)
    assert full[0], "the scenario must produce chains"
    assert trimmed[3] > full[3], "some scenario noise must have been trimmed"
    assert trimmed[:3] == full[:3]


def test_trimmed_event_takes_no_engine_work() -> None:
    engine = _engine()
    [event] = parse_line(_line(KUBELET), keep=Trimmer(engine.wants))
    assert isinstance(event, Event)
    assert not engine.wants(event)
    assert engine.process(event) == []
    assert engine.stats().events == 1
