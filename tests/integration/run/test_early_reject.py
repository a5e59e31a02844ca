"""``detector run``'s early reject: noise no rule can use is queued as time-only ticks.

The real service in-process (HTTP receivers, file tailer, queue, engine with the shipped
rules and an allowlist): the attack's events are all still correlated, noise becomes
ticks (still counted as accepted, still moving event time, never late), and events the
allowlist matches are not rejected early, so ``suppressed`` still counts them.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from msgspec.structs import replace

from correlation.allowlist import Allowlist
from correlation.engine import Engine
from correlation.rules import builtin_rules_paths, load_rules
from detector import config as cfg
from detector.commands.run import build_engine_config, early_reject
from detector.metrics import Metrics
from detector.sources.files import FileTailer
from tests.integration.run import scenario
from tests.integration.support import chains, free_port, post_json, serving

NOISE = 200
LISTED = 20


def lease_renewal(n: int) -> dict[str, Any]:
    """A kubelet renewing its node lease: no rule step, binding or allowlist entry wants it."""
    item = copy.deepcopy(scenario.audit_items()[0])
    item |= {
        "auditID": f"00000000-0000-4000-8000-{n:012d}",
        "requestURI": f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n{n % 3}",
        "verb": "update",
        "user": {"username": f"system:node:node-{n % 3}", "groups": ["system:nodes"]},
        "sourceIPs": ["172.18.0.3"],
        "objectRef": {"resource": "leases", "namespace": "kube-node-lease",
                      "name": f"node-{n % 3}", "apiGroup": "coordination.k8s.io"},
        "responseStatus": {"code": 200},
    }  # fmt: skip
    return item


def listed_call(n: int) -> dict[str, Any]:
    """Prometheus listing secrets in another namespace: a rule step would want it, but its
    service account is allowlisted."""
    item = copy.deepcopy(scenario.audit_items()[0])
    item["auditID"] = f"11111111-0000-4000-8000-{n:012d}"
    item["user"] = {"username": "system:serviceaccount:monitoring:prometheus"}
    item["sourceIPs"] = ["10.0.9.9"]
    return item


def service_config(port: int, tmp_path: Path, **more: Any) -> cfg.Config:
    overrides = {
        "http.listen": f"127.0.0.1:{port}",
        "output": str(tmp_path / "chains.jsonl"),
        "engine.idle_advance_s": 0.05,
        "outbox.path": str(tmp_path / "outbox.sqlite3"),
        "checkpoint.path": "",
    }
    return cfg.load(environ={}, overrides=overrides | more)


def engine_for(config: cfg.Config) -> Engine:
    listed = Allowlist(service_accounts=("monitoring:prometheus",))
    engine_config = replace(build_engine_config(config.engine), allowlist=listed)
    return Engine(load_rules(builtin_rules_paths()), engine_config)


async def test_noise_over_http_becomes_ticks_and_the_attack_is_still_one_chain(
    tmp_path: Path,
) -> None:
    scenario.rebase()
    config = service_config(free_port(), tmp_path)
    engine, metrics = engine_for(config), Metrics()
    items = [lease_renewal(n) for n in range(NOISE)]
    items += [listed_call(n) for n in range(LISTED)] + scenario.audit_items()
    async with serving(config, engine, metrics) as url, aiohttp.ClientSession() as session:
        for alert in scenario.falco_alerts():
            await post_json(session, url + "/falco", alert)
        body = scenario.event_list() | {"items": items}
        await post_json(session, url + "/k8s-audit", body)
        output = tmp_path / "chains.jsonl"
        async with asyncio.timeout(10):
            while not (output.exists() and output.stat().st_size):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    assert [c["rule"] for c in chains(output)] == [scenario.RULE]
    stats = engine.stats()
    assert stats.time_only == NOISE  # exactly the noise, nothing the attack or allowlist needs
    assert stats.suppressed == LISTED  # allowlisted events are still counted as suppressed
    assert metrics.value("detector_engine_time_only_total") == NOISE
    assert metrics.value("detector_engine_suppressed_total") == LISTED
    assert metrics.value("detector_events_in_total", {"source": "k8s_audit"}) == len(items)
    assert metrics.value("detector_engine_late_events_total", {"source": "k8s_audit"}) == 0


async def tailed(path: Path, early: Any, count: int) -> list[Any]:
    """What a file tailer emits for the first ``count`` events of ``path``."""
    tailer = FileTailer("audit_file", cfg.FileConfig(path=str(path)), Metrics(), early=early)
    seen: list[Any] = []

    async def emit(event: Any) -> None:
        seen.append(event)

    task = asyncio.create_task(tailer.run(emit))
    try:
        async with asyncio.timeout(5):
            while len(seen) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return seen


async def test_a_tailed_file_parses_through_the_early_reject(tmp_path: Path) -> None:
    scenario.rebase()
    lines = [lease_renewal(n) for n in range(3)] + scenario.audit_items()
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    config = service_config(free_port(), tmp_path)
    seen = await tailed(path, early_reject(engine_for(config)), len(lines))
    assert [bool(e.id) for e in seen] == [False, False, False, True]  # ticks, then the step
    assert all(e.time_ns for e in seen)  # a tick keeps its event time
    assert seen[-1].resource == "secrets" and seen[-1].actor.pod == "web-0"
