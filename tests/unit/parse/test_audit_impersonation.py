"""Impersonated requests act as the impersonated identity; old events carry ``timestamp``."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from correlation.chain import to_record
from correlation.engine import Engine, EngineConfig
from correlation.event import describe
from correlation.incidents import entities_of
from correlation.rules import builtin_rules_paths, load_rules
from detector.parse import parse_audit, parse_document
from tests.unit.parse.test_audit import EVENT

ADMIN_AS_SA: dict[str, Any] = dict(
    copy.deepcopy(EVENT),
    user={"username": "admin", "groups": ["system:masters", "system:authenticated"]},
    impersonatedUser={"username": "system:serviceaccount:a:sa", "groups": ["x"]},
    requestURI="/api/v1/namespaces/b/secrets",
    objectRef={"resource": "secrets", "namespace": "b", "apiVersion": "v1"},
)


def test_impersonated_identity_is_the_actor_and_the_real_user_is_kept() -> None:
    event = parse_audit(ADMIN_AS_SA)
    assert event.actor.service_account == "a:sa" and event.actor.namespace == "a"
    assert event.actor.user == "system:serviceaccount:a:sa"
    assert event.fields["impersonated_by"] == "admin"
    assert describe(event) == "admin as a:sa list secrets b -> 403"
    assert entities_of([event])["impersonators"] == ("admin",)


def test_impersonating_a_user_names_the_user() -> None:
    doc = dict(ADMIN_AS_SA, impersonatedUser={"username": "jane"})
    event = parse_audit(doc)
    assert event.actor.user == "jane" and event.actor.service_account == ""
    assert describe(event) == "admin as jane list secrets b -> 403"


def test_pod_claims_of_the_real_token_do_not_follow_the_impersonation() -> None:
    # pod shop/frontend-7d9f's bound token impersonates a:sa: the request is a:sa's, and
    # a:sa runs in no pod of shop (a pod "a/frontend-7d9f" would be made up)
    doc = dict(copy.deepcopy(EVENT), impersonatedUser={"username": "system:serviceaccount:a:sa"})
    event = parse_audit(doc)
    assert event.actor.service_account == "a:sa"
    assert (event.actor.pod, event.actor.pod_uid, event.actor.node) == ("", "", "")
    assert event.fields["impersonated_by"] == "system:serviceaccount:shop:frontend"
    assert event.fields["credential_id"].startswith("JTI=")  # the credential really used


def test_no_impersonation_no_impersonator_entity() -> None:
    event = parse_audit(EVENT)
    assert "impersonated_by" not in event.fields
    assert "impersonators" not in entities_of([event])


def test_sa_impersonation_chain_joins_on_the_service_account_and_names_admin() -> None:
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig(lateness_ns=0))
    chains = engine.process(parse_audit(ADMIN_AS_SA)) + engine.flush()
    assert [c.rule for c in chains] == ["sa-impersonation"]
    record = to_record(chains[0])
    assert record["entities"]["service_accounts"] == ["a:sa"]
    assert record["entities"]["impersonators"] == ["admin"]
    assert record["steps"][0]["summary"] == "admin as a:sa list secrets b -> 403"
    assert record["steps"][0]["event_id"] == f"{EVENT['auditID']}/ResponseComplete"


def test_impersonation_in_the_own_namespace_is_no_chain() -> None:
    doc = dict(ADMIN_AS_SA, objectRef={"resource": "secrets", "namespace": "a"})
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig(lateness_ns=0))
    assert engine.process(parse_audit(doc)) + engine.flush() == []


def test_events_with_only_timestamp_keep_working() -> None:
    # audit.k8s.io/v1beta1 (and early v1) wrote one `timestamp` and no stage timestamps
    doc = {k: v for k, v in EVENT.items() if not k.endswith("Timestamp")}
    doc.update(apiVersion="audit.k8s.io/v1beta1", timestamp="2026-11-27T01:05:00.123456Z")
    event = parse_audit(doc)
    assert event.time_ns == 1795741500123456000
    listed = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1beta1", "items": [doc]}
    assert [e.time_ns for e in parse_document(orjson.dumps(listed))] == [event.time_ns]
