"""The incident view: graph vertices are the entities, edges join them, timeline = evidence."""

from __future__ import annotations

from typing import Any

import pytest

from correlation.testing import audit_event
from detector.incidents import view
from detector.incidents.query import Query
from tests.unit.incidents.scenario import PQR_PATH, filled_store, pqr_incident


@pytest.fixture(scope="module")
def details(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    store = filled_store(tmp_path_factory.mktemp("view") / "i.sqlite3")
    return [view.detail(rows) for rows in store.incidents(Query())]


def _entities(detail: dict[str, Any]) -> set[str]:
    return {
        view.vertex_id(kind, value)
        for record in detail["records"]
        for key, kind in view.VERTEX_KINDS.items()
        for value in record["entities"][key]
    }


def test_vertices_are_exactly_the_incidents_entities(details: list[dict[str, Any]]) -> None:
    for detail in details:
        vertices = {v["id"] for v in detail["graph"]["vertices"]}
        assert vertices == _entities(detail)
        for edge in detail["graph"]["edges"]:
            assert {edge["source"], edge["target"]} <= vertices


def test_one_step_edge_per_chain_step_with_technique_and_time(
    details: list[dict[str, Any]],
) -> None:
    for detail in details:
        steps = [(r["id"], s["step"], s["event_id"]) for r in detail["records"] for s in r["steps"]]
        edges = [e for e in detail["graph"]["edges"] if e["kind"] == "step"]
        assert sorted((e["chain"], e["step"], e["event_id"]) for e in edges) == sorted(steps)
        for edge in edges:
            assert edge["technique"] and edge["label"].endswith(edge["time"][11:19] + "Z")


def test_timeline_rows_are_the_distinct_evidence_in_time_order(
    details: list[dict[str, Any]],
) -> None:
    for detail in details:
        rows = detail["timeline"]
        want = {s["event_id"] for r in detail["records"] for s in r["steps"]}
        assert [row["event_id"] for row in rows] == sorted(
            want, key=lambda i: next(r["time"] for r in rows if r["event_id"] == i)
        )
        assert len(rows) == len(want)
        assert [row["time"] for row in rows] == sorted(row["time"] for row in rows)
        assert all(row["raw"]["id"] == row["event_id"] for row in rows)


def test_pqr_path_the_denied_call_and_the_exec_edge(details: list[dict[str, Any]]) -> None:
    (pqr,) = [d for d in details if d["id"] == pqr_incident()]
    assert pqr["path"] == PQR_PATH and pqr["chains"] == 3
    denied = [row for row in pqr["timeline"] if row["denied"]]
    assert [row["summary"].endswith("-> 403") for row in denied] == [True]
    exec_edges = [e for e in pqr["graph"]["edges"] if e.get("step") == "exec"]
    assert [(e["source"], e["target"]) for e in exec_edges] == [
        ("service_account:shop:frontend", "pod:payments/payments-api-7b8c6d5f4-q4w2e")
    ]
    assert "T1609" in exec_edges[0]["technique"]


def test_denied_means_a_refused_audit_request() -> None:
    assert view.denied(audit_event("list", "secrets", code=403))
    assert not view.denied(audit_event("list", "secrets", code=200))


def test_summary_names_severity_rules_and_entities(details: list[dict[str, Any]]) -> None:
    (pqr,) = [d for d in details if d["id"] == pqr_incident()]
    assert pqr["severity"] == max(
        (r["severity"] for r in pqr["records"]),
        key=["info", "low", "medium", "high", "critical"].index,
    )
    assert pqr["rules"] == ["recon-token-pivot", "exec-pivot", "workload-pivot"]
    assert set(PQR_PATH) <= set(pqr["pods"])
    assert "url" not in pqr and pqr["cluster"] == ""
