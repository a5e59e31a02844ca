"""The pages' API on a live ``detector run``: auth, filters, errors, records with cluster + url."""

from __future__ import annotations

import json

from tests.integration.web.live import CLUSTER, EXPECTED, Live


def _pqr(live: Live) -> dict:  # type: ignore[type-arg]
    path = EXPECTED["incident_paths"]["P-Q-R"]
    (found,) = [i for i in live.json("/api/incidents")["incidents"] if i["path"] == path]
    return found  # type: ignore[no-any-return]


def test_the_scenario_gives_its_incidents_with_cluster_and_links(live: Live) -> None:
    incidents = live.json("/api/incidents")["incidents"]
    assert len(incidents) == len(
        set(EXPECTED["incident_paths"]) | {c["incident"] for c in EXPECTED["chains"]}
    )
    pqr = _pqr(live)
    assert pqr["chains"] == 3 and pqr["cluster"] == CLUSTER
    assert pqr["url"] == f"{live.url}/incidents/{pqr['id']}"
    records = [
        json.loads(line) for line in (live.store.parent / "chains.jsonl").read_text().splitlines()
    ]
    assert {r["cluster"] for r in records} == {CLUSTER}
    assert all(r["url"] == f"{live.url}/incidents/{r['incident']}" for r in records)


def test_every_route_needs_the_token_bearer_or_basic(live: Live) -> None:
    for path in ("/incidents", "/api/incidents", "/static/app.js"):
        status, headers, _ = live.get(path, auth=None)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
        assert live.get(path, auth="basic")[0] == 200
        assert live.get(path, auth="bearer")[0] == 200
    assert live.get("/healthz", auth=None)[0] == 200  # probes stay open


def test_filters_and_errors(live: Live) -> None:
    only = live.json("/api/incidents?pod=data/etl-worker-0")["incidents"]
    assert [i["rules"] for i in only] == [["imds-credential-theft"]]
    status, _, body = live.get("/api/incidents?severity=urgent")
    assert status == 400 and json.loads(body)["error"] == "bad_query"
    assert live.get("/api/incidents/inc-unknown")[0] == 404
    assert live.get("/static/../detector.yaml")[0] == 404
    assert live.get("/static/nothing.js")[0] == 404


def test_pages_forbid_inline_script_and_outside_origins(live: Live) -> None:
    status, headers, body = live.get("/incidents/" + _pqr(live)["id"])
    assert status == 200 and headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert b"<script>" not in body and b"http" not in body.split(b"<body")[1]
