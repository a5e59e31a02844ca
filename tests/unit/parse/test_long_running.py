"""Long-running requests: ResponseStarted is the event, its later stages fold into it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from correlation.engine import Engine, EngineConfig
from correlation.event import FALCO, Event, time_only
from correlation.rules import load_rules
from correlation.testing import at, falco_event
from detector.cli import main
from detector.parse import parse_audit
from detector.parse.long_running import LongRunningStages, is_long_running
from tests.unit.cli.test_inputs import _alert
from tests.unit.parse.test_audit import EVENT

AUDIT_ID = "0e7c2d4a-1111-4c3b-8d9e-5f6a7b8c9d0e"


def _exec(stage: str, code: int, done_at: str = "2026-11-27T01:05:00.200000Z") -> dict[str, Any]:
    """pod shop/frontend-7d9f execs into payments/api, as the log backend writes each stage."""
    doc = copy.deepcopy(EVENT)
    doc.update(
        auditID=AUDIT_ID,
        stage=stage,
        verb="create",
        requestURI="/api/v1/namespaces/payments/pods/api/exec?command=sh&stdin=true&tty=true",
        objectRef={
            "resource": "pods",
            "namespace": "payments",
            "name": "api",
            "subresource": "exec",
            "apiVersion": "v1",
        },  # fmt: skip
        stageTimestamp=done_at,
        annotations={"authorization.k8s.io/decision": "allow"},
    )
    doc["responseStatus"] = {"code": code} if code else None
    if stage == "RequestReceived":
        del doc["annotations"], doc["responseStatus"]
    return doc


def _stages(*docs: dict[str, Any]) -> list[Event]:
    return [parse_audit(doc) for doc in docs]


def test_response_started_passes_and_its_complete_folds() -> None:
    received, started, complete = _stages(
        _exec("RequestReceived", 0), _exec("ResponseStarted", 101),
        _exec("ResponseComplete", 200, done_at="2026-11-27T01:12:00Z"),
    )  # fmt: skip
    assert all(is_long_running(e) for e in (received, started, complete))
    assert started.time_ns == complete.time_ns  # both carry requestReceivedTimestamp
    assert started.id == complete.id == f"{AUDIT_ID}/ResponseStarted"  # one event
    assert (started.stage, complete.stage) == ("ResponseStarted", "ResponseComplete")
    stages = LongRunningStages()
    assert [stages.admit(e) for e in (received, started, complete)] == [False, True, False]
    assert (stages.folded, len(stages)) == (2, 0)  # the request is closed: nothing held


def test_whichever_stage_comes_first_is_the_same_event() -> None:
    # a replay of shuffled lines may deliver ResponseComplete first: same id, one event
    started, complete = _stages(_exec("ResponseStarted", 101), _exec("ResponseComplete", 101))
    stages = LongRunningStages()
    assert [stages.admit(e) for e in (complete, started)] == [True, False]
    assert stages.folded == 1


def test_complete_without_started_is_the_event() -> None:
    # a denied exec never opens a stream: RequestReceived and ResponseComplete only
    (complete,) = _stages(_exec("ResponseComplete", 403))
    stages = LongRunningStages()
    assert stages.admit(complete) and stages.folded == 0


def test_short_requests_and_falco_alerts_pass_untouched() -> None:
    stages = LongRunningStages()
    short = parse_audit(dict(EVENT, stage="RequestReceived"))
    assert not is_long_running(short)
    assert stages.admit(short) and stages.admit(parse_audit(EVENT))
    assert stages.folded == 0


@pytest.mark.parametrize("later", ["ResponseComplete", "Panic"])
def test_watch_stages_fold(later: str) -> None:
    watch = dict(copy.deepcopy(EVENT), verb="watch", requestURI="/api/v1/pods?watch=true")
    started = parse_audit(dict(watch, stage="ResponseStarted"))
    done = parse_audit(dict(watch, stage=later))
    stages = LongRunningStages()
    assert stages.admit(started) and not stages.admit(done)


def test_open_requests_are_bounded_and_forgetting_is_counted() -> None:
    stages = LongRunningStages(max_open=2)
    watch = dict(copy.deepcopy(EVENT), verb="watch", stage="ResponseStarted")
    for n in range(3):
        assert stages.admit(parse_audit(dict(watch, auditID=f"id-{n}")))
    assert (len(stages), stages.forgotten) == (2, 1)
    # the forgotten request's ResponseComplete is passed on: a duplicate, never a loss
    assert stages.admit(parse_audit(dict(watch, auditID="id-0", stage="ResponseComplete")))


def test_replay_correlates_on_response_started_and_counts_nothing_late(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # exec at 01:05:00, a shell in the target 30 s later, the exec's ResponseComplete
    # written 7 minutes later (far beyond the lateness) with its original event time
    shell = json.loads(_alert(0, rule="Terminal shell in container"))
    shell["time"] = "2026-11-27T01:05:30.000000000Z"
    shell["output_fields"].update({"k8s.ns.name": "payments", "k8s.pod.name": "api"})
    lines = [
        _exec("ResponseStarted", 101),
        shell,
        _exec("ResponseComplete", 200, done_at="2026-11-27T01:12:00Z"),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(doc) + "\n" for doc in lines))
    out = tmp_path / "chains.jsonl"
    assert main(["replay", "--lateness", "5s", "--output", str(out), str(path)]) == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["rule"] == "exec-pivot"
    assert record["steps"][0]["event_id"] == f"{AUDIT_ID}/ResponseStarted"
    assert "\n  late events:      none\n" in capsys.readouterr().err  # the replay summary


def test_run_stops_after_the_event_that_confirmed_chains_and_goes_on_from_there(
    tmp_path: Path,
) -> None:
    """``run`` is the correlator's and replay's loop: it hands each item to the engine
    (events, ticks, folded stages left out) and returns right after the one that
    confirmed chains, so the caller can publish them before the next is taken."""
    rules_path = tmp_path / "twice.yaml"
    rules_path.write_text(
        "rules:\n  - id: twice\n    severity: low\n    within: 60s\n    steps:\n"
        "      - {name: a, where: {rule: X}, by: actor.pod}\n"
        "      - {name: b, where: {rule: X}, by: actor.pod}\n"
    )
    engine = Engine(load_rules([rules_path]), EngineConfig(lateness_ns=0))
    received, started, complete = _stages(
        _exec("RequestReceived", 0), _exec("ResponseStarted", 101),
        _exec("ResponseComplete", 200, done_at="2026-11-27T01:12:00Z"),
    )  # fmt: skip
    items = [falco_event("X", 0), time_only(at(0), FALCO), falco_event("X", 1),
             falco_event("Y", 2), received, started, complete]  # fmt: skip
    stages = LongRunningStages()
    at_, found = stages.run(engine, items, 0)
    # the 2nd X completes it; Y moves the watermark past it (no lateness): out it comes
    assert at_ == 4 and [c.rule for c in found] == ["twice"]
    assert stages.run(engine, items, at_) == (len(items), [])
    assert stages.folded == 2  # RequestReceived and ResponseComplete of the one exec
    assert engine.stats().events == len(items) - 2
