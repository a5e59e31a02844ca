"""``detector run`` killed with SIGKILL between a chain's first and last step, restarted:
the chain is still confirmed, with the id an uninterrupted run gives it.

Real process, real HTTP receivers on loopback, real engine and rules, real checkpoint file.
Each step is stamped when it is posted: HTTP senders are pushed inputs whose progress
follows the receiving clock, so stamps from the past would be (rightly) late.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from correlation.chain import rfc3339
from correlation.engine import Engine, EngineConfig
from correlation.rules import builtin_rules_paths, load_rules
from detector.parse import parse_document
from tests.integration.support import DetectorProcess

JSON = {"Content-Type": "application/json"}
POD, HOME, OTHER = "scanner-7d9f-abcde", "shop", "billing"
RECON: dict[str, Any] = {
    "hostname": "node-1", "output": "nmap in pod", "priority": "Warning", "source": "syscall",
    "rule": "LMD Network Scanner Launched in Pod", "time": "",
    "tags": ["network", "mitre_discovery", "T1046"],
    "output_fields": {"container.id": "0123456789ab", "k8s.ns.name": HOME, "k8s.pod.name": POD,
                      "proc.name": "nmap"},
}  # fmt: skip
PIVOT: dict[str, Any] = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
    "auditID": "5b0c3a52-0f7e-4c44-9d55-4a1f4a1b2c3d", "stage": "ResponseComplete",
    "requestURI": f"/api/v1/namespaces/{OTHER}/secrets", "verb": "list",
    "user": {"username": f"system:serviceaccount:{HOME}:web",
             "groups": ["system:serviceaccounts", "system:authenticated"],
             "extra": {"authentication.kubernetes.io/pod-name": [POD]}},
    "sourceIPs": ["10.128.0.9"], "objectRef": {"resource": "secrets", "namespace": OTHER},
    "responseStatus": {"code": 403}, "annotations": {"authorization.k8s.io/decision": "forbid"},
    "requestReceivedTimestamp": "", "stageTimestamp": "",
}  # fmt: skip
EVENT_LIST = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [PIVOT]}


def _now() -> str:
    return rfc3339(time.time_ns() // 1000 * 1000)


async def post_recon(service: Service) -> None:
    RECON["time"] = _now()
    await service.post("/falco", RECON)


async def post_pivot(service: Service) -> None:
    """After the restart, still inside the recon's window."""
    PIVOT["requestReceivedTimestamp"] = PIVOT["stageTimestamp"] = _now()
    await service.post("/k8s-audit", EVENT_LIST)


def _uninterrupted() -> list[Any]:
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig())
    chains = []
    for doc in (RECON, EVENT_LIST):
        for event in parse_document(orjson.dumps(doc)):
            chains += engine.process(event)
    chains += engine.flush()
    return [c for c in chains if c.rule == "recon-token-pivot"]


def _uninterrupted_ids() -> list[str]:
    return [c.id for c in _uninterrupted()]


def _uninterrupted_incidents() -> list[str]:
    return [c.incident for c in _uninterrupted()]


class Service(DetectorProcess):
    """``detector run`` as a child process with a checkpoint file (config by environment)."""

    def __init__(self, tmp: Path) -> None:
        self.checkpoint = tmp / "engine.ckpt"
        self.output = tmp / "chains.jsonl"
        env = {
            "DETECTOR_CHECKPOINT__PATH": str(self.checkpoint),
            "DETECTOR_CHECKPOINT__INTERVAL_S": "0.2",
            "DETECTOR_OUTBOX__PATH": str(tmp / "outbox.sqlite3"),
            # chains settle within a second: a graceful stop keeps pending chains in the
            # checkpoint (no flush), so the tests wait for the emission itself
            "DETECTOR_ENGINE__LATENESS_BY_SOURCE": "{falco: 0.5, k8s_audit: 0.5}",
        }
        super().__init__(tmp, ["--output", str(self.output)], env)

    async def post(self, path: str, doc: dict[str, Any]) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.post(self.url + path, data=orjson.dumps(doc), headers=JSON) as r:
                assert r.status in (200, 202, 204), await r.text()

    async def wait_for_chain(self, rule: str, within_s: float = 20) -> None:
        async with asyncio.timeout(within_s):
            while not self.chain_ids(rule):  # noqa: ASYNC110 - the file sink writes it
                await asyncio.sleep(0.05)

    def records(self, rule: str) -> list[dict[str, Any]]:
        if not self.output.exists():
            return []
        records = [orjson.loads(line) for line in self.output.read_bytes().splitlines()]
        return [r for r in records if r["rule"] == rule]

    def chain_ids(self, rule: str) -> list[str]:
        if not self.output.exists():  # the file sink creates it with the first record
            return []
        records = [orjson.loads(line) for line in self.output.read_bytes().splitlines()]
        return [r["id"] for r in records if r["rule"] == rule]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = Service(tmp_path)
    yield running
    running.kill()


def _written_after(path: Path, posted_ns: int) -> bool:
    return path.exists() and path.stat().st_mtime_ns > posted_ns


async def _wait_for_checkpoint_after(path: Path, posted_ns: int) -> None:
    for _ in range(200):
        if _written_after(path, posted_ns):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("no checkpoint written within 10 s")
    await asyncio.sleep(0.5)  # two more intervals: the recon step is surely inside


async def test_chain_confirmed_across_kill9_with_same_id(service: Service) -> None:
    await service.started()
    await post_recon(service)
    posted = time.time_ns()
    await _wait_for_checkpoint_after(service.checkpoint, posted)
    assert await service.stop(signal.SIGKILL) == -signal.SIGKILL

    await service.started()
    await post_pivot(service)
    await service.wait_for_chain("recon-token-pivot")
    assert await service.stop(signal.SIGTERM) == 0
    assert service.chain_ids("recon-token-pivot") == _uninterrupted_ids()
    assert "checkpoint_restored" in service.log.read_text()


async def test_chain_confirmed_across_graceful_restart(service: Service) -> None:
    """SIGTERM saves on the way out, so no periodic checkpoint is needed (long interval);
    the partial match stays in the checkpoint (no flush at shutdown)."""
    service.env["DETECTOR_CHECKPOINT__INTERVAL_S"] = "3600"
    await service.started()
    await post_recon(service)
    assert await service.stop(signal.SIGTERM) == 0
    assert service.checkpoint.exists()
    # The recon step alone is not a chain: nothing is emitted.
    assert service.chain_ids("recon-token-pivot") == []

    await service.started()
    await post_pivot(service)
    await service.wait_for_chain("recon-token-pivot")
    assert await service.stop(signal.SIGTERM) == 0
    assert service.chain_ids("recon-token-pivot") == _uninterrupted_ids()


async def test_kill9_before_any_checkpoint_loses_no_acknowledged_event(service: Service) -> None:
    """Both steps answered 200, then SIGKILL before the first checkpoint: the intake log
    brings them back and the chain is confirmed after the restart (it used to be lost)."""
    service.env["DETECTOR_CHECKPOINT__INTERVAL_S"] = "3600"
    service.env["DETECTOR_ENGINE__LATENESS_BY_SOURCE"] = "{falco: 30, k8s_audit: 30}"
    await service.started()
    await post_recon(service)
    await post_pivot(service)
    assert not service.checkpoint.exists()
    assert await service.stop(signal.SIGKILL) == -signal.SIGKILL
    assert service.chain_ids("recon-token-pivot") == []  # still inside the lateness

    service.env["DETECTOR_ENGINE__LATENESS_BY_SOURCE"] = "{falco: 0.5, k8s_audit: 0.5}"
    await service.started()
    await service.wait_for_chain("recon-token-pivot")
    assert await service.stop(signal.SIGTERM) == 0
    assert service.chain_ids("recon-token-pivot") == _uninterrupted_ids()
    assert "intake_log_replayed" in service.log.read_text()


async def test_sigterm_inside_the_lateness_delivers_each_chain_once(service: Service) -> None:
    """A chain complete but not yet settled at SIGTERM is not flushed: the checkpoint
    keeps it and the restart emits it once, with the uninterrupted run's chain and
    incident ids (the flush used to emit it at shutdown and again after the restore)."""
    service.env["DETECTOR_ENGINE__LATENESS_BY_SOURCE"] = "{falco: 30, k8s_audit: 30}"
    await service.started()
    await post_recon(service)
    await post_pivot(service)
    assert await service.stop(signal.SIGTERM) == 0
    assert service.chain_ids("recon-token-pivot") == []
    assert "shutdown_pending_kept" in service.log.read_text()

    service.env["DETECTOR_ENGINE__LATENESS_BY_SOURCE"] = "{falco: 0.5, k8s_audit: 0.5}"
    await service.started()
    await service.wait_for_chain("recon-token-pivot")
    await asyncio.sleep(1.0)  # a second emission, if any, would be here by now
    assert await service.stop(signal.SIGTERM) == 0
    records = service.records("recon-token-pivot")
    assert [r["id"] for r in records] == _uninterrupted_ids()
    assert [r["incident"] for r in records] == _uninterrupted_incidents()


async def test_without_checkpoint_the_chain_is_lost(service: Service) -> None:
    """The control: ``checkpoint.path: ""`` turns it off, and the restart forgets the step."""
    service.env["DETECTOR_CHECKPOINT__PATH"] = ""
    await service.started()
    await post_recon(service)
    assert await service.stop(signal.SIGTERM) == 0
    await service.started()
    await post_pivot(service)
    assert await service.stop(signal.SIGTERM) == 0
    assert service.chain_ids("recon-token-pivot") == []
    assert not service.checkpoint.exists()
