"""Event time under real delivery, end to end: the service with real file tailers and
real HTTP receivers on loopback.

* two tailers catching up on a backlog written before the start: every chain of the
  bundled scenario, zero late events (each file is its own input; the one read faster
  waits for the other instead of running the watermark ahead);
* an input that goes quiet at its end stops holding the other back, and rejoins when its
  file grows again;
* a +300 s and a +1 day stamp do not stop a following real-time chain, before and after
  a restart from the checkpoint.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from correlation.chain import rfc3339
from correlation.engine import Engine
from correlation.rules import builtin_rules_paths, load_rules
from detector import config as cfg
from detector.commands.run import build_checkpointer, build_engine_config, serve
from detector.metrics import Metrics
from detector.parse import parse_line
from tests.integration.run import scenario
from tests.integration.support import chains, free_port, post_json, stop_in_process, wait_ready

SCENARIO = Path(__file__).parents[3] / "examples" / "attack-scenario"
EXPECTED = orjson.loads((SCENARIO / "expected.json").read_bytes())


def merged_lines(*names: str) -> bytes:
    """The files' events, one per line, merged by event time (one input in its order;
    an EventList line becomes one line per item)."""
    lines = []
    for name in names:
        for line in (SCENARIO / name).read_bytes().splitlines():
            doc = orjson.loads(line)
            items = doc["items"] if doc.get("kind") == "EventList" else [doc]
            lines += [orjson.dumps(item) for item in items]
    lines.sort(key=lambda line: parse_line(line)[0].time_ns)
    return b"".join(line + b"\n" for line in lines)


FALCO_FILES = ("falco-node-a.jsonl", "falco-node-b.jsonl", "falco-node-c.jsonl")
AUDIT_FILES = ("audit-apiserver-1.jsonl", "audit-webhook-apiserver-2.jsonl")


def service_config(tmp_path: Path, **overrides: Any) -> cfg.Config:
    settings: dict[str, Any] = {
        "output": str(tmp_path / "chains.jsonl"),
        "outbox.path": str(tmp_path / "outbox.sqlite3"),
        "checkpoint.path": "",
        "engine.idle_advance_s": 0.05,
        "engine.idle_timeout_s": 0.5,
        **overrides,
    }
    return cfg.load(environ={}, overrides=settings)


def engine_for(config: cfg.Config) -> Engine:
    return Engine(load_rules(builtin_rules_paths()), build_engine_config(config.engine))


async def wait_for(predicate: Any, limit_s: float = 20.0) -> None:
    async with asyncio.timeout(limit_s):
        while not predicate():  # noqa: ASYNC110 - polling files and metrics
            await asyncio.sleep(0.05)


def rules_in(path: Path) -> list[str]:
    return sorted(c["rule"] for c in chains(path)) if path.exists() else []


async def test_two_tailers_on_a_backlog_confirm_every_chain_with_zero_late(
    tmp_path: Path,
) -> None:
    falco, audit = tmp_path / "falco.jsonl", tmp_path / "audit.jsonl"
    falco.write_bytes(
        merged_lines("falco-node-a.jsonl", "falco-node-b.jsonl", "falco-node-c.jsonl")
    )
    audit.write_bytes(merged_lines("audit-apiserver-1.jsonl", "audit-webhook-apiserver-2.jsonl"))
    config = service_config(
        tmp_path,
        **{
            "sources.falco_file.path": str(falco),
            "sources.audit_file.path": str(audit),
            "engine.allowlist": str(SCENARIO / "allowlist.yaml"),
            "engine.max_drift_s": 30,
        },
    )
    metrics, output = Metrics(), tmp_path / "chains.jsonl"
    want = sorted(c["rule"] for c in EXPECTED["chains"])
    service = asyncio.create_task(serve(config, engine_for(config), metrics))
    try:
        await wait_for(lambda: rules_in(output) == want)
        await wait_for(lambda: metrics.value("detector_inputs", {"state": "idle"}) == 2)
        await stop_in_process(service)
    finally:
        service.cancel()
    assert rules_in(output) == want  # nothing more once both were idle, nor at shutdown
    for source in ("falco", "k8s_audit"):
        assert metrics.value("detector_engine_late_events_total", {"source": source}) == 0


async def test_an_idle_input_stops_holding_the_other_back_and_rejoins(tmp_path: Path) -> None:
    falco, audit = tmp_path / "falco.jsonl", tmp_path / "audit.jsonl"
    falco.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in scenario.falco_alerts()))
    audit.write_bytes(b"")  # the API server's log has nothing yet
    config = service_config(
        tmp_path, **{"sources.falco_file.path": str(falco), "sources.audit_file.path": str(audit)}
    )
    metrics, output = Metrics(), tmp_path / "chains.jsonl"
    service = asyncio.create_task(serve(config, engine_for(config), metrics))
    try:
        await wait_for(lambda: metrics.value("detector_inputs", {"state": "idle"}) == 2)
        engine_idle = metrics.value("detector_input_idle_changes_total", {"change": "idle"})
        assert engine_idle == 2 and rules_in(output) == []  # the recon alone is no chain
        audit.write_bytes(orjson.dumps(scenario.event_list()) + b"\n")  # the log grows
        await wait_for(lambda: rules_in(output) == [scenario.RULE])
        resumed = metrics.value("detector_input_idle_changes_total", {"change": "resumed"})
        assert resumed >= 1
        await stop_in_process(service)
    finally:
        service.cancel()
    assert metrics.value("detector_engine_late_events_total", {"source": "k8s_audit"}) == 0


def ahead(seconds: float) -> str:
    return rfc3339(time.time_ns() // 1000 * 1000 + int(seconds * 1e9))


def future_stamped() -> tuple[dict[str, Any], dict[str, Any]]:
    """An audit event stamped 300 s ahead and a Falco alert stamped a day ahead."""
    items = scenario.audit_items()
    items[0]["auditID"] = "00000000-0000-4000-8000-000000000300"
    items[0]["requestReceivedTimestamp"] = items[0]["stageTimestamp"] = ahead(300)
    alert = {**scenario.falco_alerts()[0], "time": ahead(86_400)}
    alert["output_fields"] = {**alert["output_fields"], "k8s.pod.name": "elsewhere"}
    return {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}, alert


def renamed(doc: Any, pod: str) -> Any:
    """The scenario's document about pod ``pod`` (and its own auditID) instead of web-0."""
    return orjson.loads(orjson.dumps(doc).replace(b"web-0", pod.encode()).replace(b"6c1f", b"7d2e"))


async def attack(url: str, pod: str) -> None:
    """The scenario's attack, stamped as it is posted (a prompt sender: this input's
    delays so far are none, so its bound is the floor, 250 ms)."""
    scenario.rebase(before_s=0.0)
    async with aiohttp.ClientSession() as session:
        for alert in scenario.falco_alerts():
            await post_json(session, url + "/falco", renamed(alert, pod))
        await post_json(session, url + "/k8s-audit", renamed(scenario.event_list(), pod))


async def run_once(tmp_path: Path, metrics: Metrics, future: bool) -> list[str]:
    """Start (restoring the checkpoint), post [future stamps and] an attack, stop."""
    port = free_port()
    config = service_config(
        tmp_path,
        **{"http.listen": f"127.0.0.1:{port}", "checkpoint.path": str(tmp_path / "ckpt")},
    )
    checkpointer = build_checkpointer(config, metrics)
    assert checkpointer is not None
    engine = checkpointer.restore(
        load_rules(builtin_rules_paths()), build_engine_config(config.engine)
    )
    service = asyncio.create_task(serve(config, engine, metrics, checkpointer))
    output = tmp_path / "chains.jsonl"
    before = len(rules_in(output))
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url)
        if future:
            event_list, alert = future_stamped()
            async with aiohttp.ClientSession() as session:
                await post_json(session, url + "/k8s-audit", event_list)
                await post_json(session, url + "/falco", alert)
        # after a restart, another pod: the first chain's window (restored) would
        # rightly absorb the same attack again
        await attack(url, "web-0" if future else "web-9")
        await wait_for(lambda: len(rules_in(output)) > before)  # live, not at the shutdown
        await stop_in_process(service)
    finally:
        service.cancel()
    return [c["rule"] for c in chains(output)[before:]]


async def test_future_stamps_do_not_blind_the_detector_before_or_after_a_restart(
    tmp_path: Path,
) -> None:
    first = Metrics()
    assert await run_once(tmp_path, first, future=True) == [scenario.RULE]
    skewed = sum(
        first.value("detector_clock_skew_events_total", {"source": s, "reason": "ahead"})
        for s in ("falco", "k8s_audit")
    )
    assert skewed == 2
    assert first.value("detector_engine_late_events_total", {"source": "k8s_audit"}) == 0
    second = Metrics()  # the checkpoint holds the future-stamped events and the progress
    # (web-9's token from web-0's address is also a stolen-token-replay: fine here)
    assert scenario.RULE in await run_once(tmp_path, second, future=False)
    for source in ("falco", "k8s_audit"):
        assert second.value("detector_engine_late_events_total", {"source": source}) == 0
