"""The incident store: grouping, filters, idempotence, merging, both bounds, file mode."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from correlation.chain import to_record
from detector.incidents.query import Query, parse_rfc3339_ns
from detector.incidents.store import IncidentStore
from tests.unit.incidents.scenario import PQR_PATH, chains, filled_store, pqr_incident


def test_scenario_gives_four_incidents_and_pqr_holds_three_chains(tmp_path: Path) -> None:
    store = filled_store(tmp_path / "i.sqlite3")
    found = store.incidents(Query())
    assert len(found) == 4
    (pqr,) = [rows for rows in found if rows.id == pqr_incident()]
    assert [r["rule"] for r in pqr.records] == ["recon-token-pivot", "exec-pivot", "workload-pivot"]
    assert max((r["path"] for r in pqr.records), key=len) == PQR_PATH
    steps = sum(len(r["steps"]) for r in pqr.records)
    assert len(pqr.evidence) == steps  # one evidence row per chain step
    assert {e.event_id for e in pqr.evidence} == {
        s["event_id"] for r in pqr.records for s in r["steps"]
    }


def test_evidence_keeps_the_normalized_event(tmp_path: Path) -> None:
    store = filled_store(tmp_path / "i.sqlite3")
    chain = chains()[0]
    rows = store.incident(chain.incident)
    assert rows is not None
    stored = {e.event_id: e.event for e in rows.evidence}
    assert all(stored[step.event.id] == step.event for step in chain.steps)


def test_adding_a_chain_twice_keeps_one_copy(tmp_path: Path) -> None:
    store = filled_store(tmp_path / "i.sqlite3")
    before = (store.chain_ids(), store.stored_bytes())
    chain = chains()[1]
    store.add(to_record(chain), [s.event for s in chain.steps])
    assert (store.chain_ids(), store.stored_bytes()) == before


@pytest.mark.parametrize(
    ("query", "rules"),
    [
        (Query(rule="imds-credential-theft"), {"imds-credential-theft"}),
        (Query(entities=(("pods", "data/etl-worker-0"),)), {"imds-credential-theft"}),
        (
            Query(entities=(("service_accounts", "shop:frontend"),)),
            {"recon-token-pivot", "exec-pivot", "workload-pivot"},
        ),
        (Query(entities=(("namespaces", "analytics"),)), {"internal-fanout"}),
    ],
)
def test_filters_select_incidents_and_return_them_whole(
    tmp_path: Path, query: Query, rules: set[str]
) -> None:
    found = filled_store(tmp_path / "i.sqlite3").incidents(query)
    assert {r["rule"] for rows in found for r in rows.records} == rules


def test_severity_and_time_filters(tmp_path: Path) -> None:
    store = filled_store(tmp_path / "i.sqlite3")
    records = [to_record(c) for c in chains()]
    high = {r["incident"] for r in records if r["severity"] in ("high", "critical")}
    assert {rows.id for rows in store.incidents(Query(min_severity="high"))} == high
    latest = max(parse_rfc3339_ns(r["last_seen"]) for r in records)
    newest = store.incidents(Query(since_ns=latest))
    assert [rows.id for rows in newest] == [
        next(r["incident"] for r in records if parse_rfc3339_ns(r["last_seen"]) == latest)
    ]
    assert store.incidents(Query(since_ns=latest + 1)) == []
    earliest = min(parse_rfc3339_ns(r["first_seen"]) for r in records)
    assert store.incidents(Query(until_ns=earliest - 1)) == []


def test_most_recent_first_and_limit(tmp_path: Path) -> None:
    found = filled_store(tmp_path / "i.sqlite3").incidents(Query())
    last = [max(r["last_seen"] for r in rows.records) for rows in found]
    assert last == sorted(last, reverse=True)
    assert len(filled_store(tmp_path / "j.sqlite3").incidents(Query(limit=2))) == 2


def test_an_incident_published_under_another_id_is_merged_into_the_survivor(tmp_path: Path) -> None:
    """A chain later bridged into an older incident keeps the id it was sent with."""
    store = IncidentStore(tmp_path / "i.sqlite3", 1e9, 1 << 40)
    recon, exec_pivot = (c for c in chains() if c.rule in ("recon-token-pivot", "exec-pivot"))
    early = to_record(recon)
    early["incident"] = "inc-00000000000000000000"  # as if published before the bridge
    store.add(early, [s.event for s in recon.steps])
    survivor = store.add(to_record(exec_pivot), [s.event for s in exec_pivot.steps])
    assert survivor == exec_pivot.incident
    for asked in ("inc-00000000000000000000", exec_pivot.incident):
        rows = store.incident(asked)
        assert rows is not None and rows.id == exec_pivot.incident
        assert {r["rule"] for r in rows.records} == {"recon-token-pivot", "exec-pivot"}
    assert [rows.id for rows in store.incidents(Query())] == [exec_pivot.incident]


def test_size_bound_prunes_the_oldest_chains(tmp_path: Path) -> None:
    clock = [0.0]
    store = IncidentStore(tmp_path / "i.sqlite3", 1e9, 1 << 40, now=lambda: clock[0])
    sizes = []
    for chain in chains():
        clock[0] += 1
        store.add(to_record(chain), [s.event for s in chain.steps])
        sizes.append(store.stored_bytes() - sum(sizes))
    store.max_bytes = sum(sizes[-2:])
    clock[0] += 1
    last = chains()[-1]
    store.add(to_record(last), [s.event for s in last.steps])  # re-add: prune runs
    assert store.chain_ids() == sorted(c.id for c in chains()[-2:])
    assert store.stored_bytes() <= store.max_bytes
    assert store.pruned == len(chains()) - 2


def test_age_bound_prunes_chains_stored_too_long_ago(tmp_path: Path) -> None:
    clock = [0.0]
    store = IncidentStore(tmp_path / "i.sqlite3", 100.0, 1 << 40, now=lambda: clock[0])
    first, *rest = chains()
    store.add(to_record(first), [s.event for s in first.steps])
    clock[0] = 101.0
    for chain in rest:
        store.add(to_record(chain), [s.event for s in chain.steps])
    assert first.id not in store.chain_ids()
    assert len(store.chain_ids()) == len(rest)


def test_steps_and_events_must_agree(tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "i.sqlite3", 1e9, 1 << 40)
    chain = chains()[0]
    with pytest.raises(ValueError, match="steps but"):
        store.add(to_record(chain), [chain.steps[0].event])
    assert store.chain_ids() == []


def test_file_is_private_and_read_only_open_needs_it(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "i.sqlite3"
    filled_store(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reader = IncidentStore(path, 1e9, 1 << 40, readonly=True)
    assert len(reader.incidents(Query())) == 4
    with pytest.raises(FileNotFoundError):
        IncidentStore(tmp_path / "missing.sqlite3", 1e9, 1 << 40, readonly=True)
