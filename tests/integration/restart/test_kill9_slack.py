"""``detector run`` with a Slack bot sink, killed with SIGKILL between two chains of one
incident and restarted: the second chain is replied in the first one's thread and the
root is updated, so the incident keeps one Slack root across the kill (the sink's thread
file, :mod:`detector.sinks.slack_threads`).

Real process, HTTP receivers, engine, outbox and thread file. Slack is the fake Web API of
tests/integration/sinks/test_slack_api.py on loopback: Slack itself cannot be reached
here. The events are stamped when they are posted (pushed inputs follow the receiving
clock).
"""

from __future__ import annotations

import asyncio
import copy
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from correlation.chain import rfc3339
from tests.integration.restart.test_kill9_restart import JSON, OTHER, PIVOT, RECON
from tests.integration.sinks.test_slack_api import TOKEN, FakeSlack, serve
from tests.integration.support import DetectorProcess

pytestmark = pytest.mark.integration
TARGET = "ledger-0"  # the pod the scanner's service account then execs into (P -> Q)
Doc = tuple[str, dict[str, Any]]


def token_pivot(now: int) -> list[Doc]:
    """recon-token-pivot: nmap in the scanner pod, then its token lists another
    namespace's secrets."""
    recon = copy.deepcopy(RECON) | {"time": rfc3339(now)}
    pivot = copy.deepcopy(PIVOT)
    pivot["requestReceivedTimestamp"] = pivot["stageTimestamp"] = rfc3339(now + 10**8)
    return [("/falco", recon), ("/k8s-audit", _event_list(pivot))]


def exec_pivot(now: int) -> list[Doc]:
    """exec-pivot, same incident: the scanner's service account execs into TARGET, then a
    shell runs there."""
    exec_ = copy.deepcopy(PIVOT) | {
        "auditID": "6c1d4b63-1a8f-4d55-8e66-5b2a5b2c3d4e",
        "requestURI": f"/api/v1/namespaces/{OTHER}/pods/{TARGET}/exec?command=sh",
        "verb": "create",
        "objectRef": {"resource": "pods", "namespace": OTHER, "name": TARGET,
                      "subresource": "exec"},
        "responseStatus": {"code": 101},
        "requestReceivedTimestamp": rfc3339(now), "stageTimestamp": rfc3339(now),
    }  # fmt: skip
    del exec_["annotations"]
    shell = copy.deepcopy(RECON) | {
        "time": rfc3339(now + 10**8), "rule": "Terminal shell in container", "output": "sh",
        "tags": ["container", "shell", "mitre_execution"],
        "output_fields": {"container.id": "fedcba987654", "k8s.ns.name": OTHER,
                          "k8s.pod.name": TARGET, "proc.name": "sh"},
    }  # fmt: skip
    return [("/k8s-audit", _event_list(exec_)), ("/falco", shell)]


def _event_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": list(items)}


class Service(DetectorProcess):
    """``detector run`` delivering to the fake Slack (bot token) and a chains file."""

    def __init__(self, tmp: Path, api_url: str) -> None:
        self.output, self.state = tmp / "chains.jsonl", tmp / "state"
        slack = {
            "type": "slack", "bot_token": TOKEN, "channel": "#incidents", "api_url": api_url,
            "min_interval_s": 0,
        }  # fmt: skip
        config = {
            "sinks": [slack, {"type": "file", "path": str(self.output)}],
            "outbox": {"path": str(self.state / "outbox.sqlite3")},
            "checkpoint": {"path": str(self.state / "engine.ckpt"), "interval_s": 0.2},
            "engine": {"lateness_by_source": {"falco": 0.5, "k8s_audit": 0.5}},
        }
        path = tmp / "detector.json"  # JSON is YAML
        path.write_bytes(orjson.dumps(config))
        super().__init__(tmp, ["--config", str(path)])

    async def post_all(self, docs: list[Doc]) -> None:
        async with aiohttp.ClientSession() as session:
            for route, doc in docs:
                async with session.post(
                    self.url + route, data=orjson.dumps(doc), headers=JSON
                ) as r:
                    assert r.status in (200, 202, 204), await r.text()

    async def delivered_to_slack(self, count: int, within_s: float = 30) -> None:
        """Until the outbox has counted ``count`` records delivered to Slack in this life
        (the sink returns only once its thread file holds what it posted)."""
        metric = 'detector_sink_delivered_total{sink="slack"}'
        async with asyncio.timeout(within_s), aiohttp.ClientSession() as session:
            while True:
                async with session.get(self.url + "/metrics") as response:
                    text = await response.text()
                values = [float(line.split()[-1]) for line in text.splitlines()
                          if line.startswith(metric)]  # fmt: skip
                if values and values[0] >= count:
                    return
                await asyncio.sleep(0.05)

    def chains(self) -> dict[str, str]:
        """Chain id -> incident, from the chains file (a redelivery writes a line twice)."""
        lines = self.output.read_bytes().splitlines() if self.output.exists() else []
        return {r["id"]: r["incident"] for r in map(orjson.loads, lines)}


async def test_a_kill9_between_two_chains_keeps_the_incident_in_one_slack_thread(
    tmp_path: Path,
) -> None:
    fake = FakeSlack()
    async with serve(fake) as api:
        service = Service(tmp_path, api)
        try:
            await service.started()
            await service.post_all(token_pivot(time.time_ns() // 1000 * 1000))
            await service.delivered_to_slack(1)  # root + the chain in its thread
            assert await service.stop(signal.SIGKILL) == -signal.SIGKILL

            await service.started()
            await service.post_all(exec_pivot(time.time_ns() // 1000 * 1000))
            # the restart may emit the first chain again from the intake log's tail (the
            # thread file knows it: no call), so wait for Slack's calls, not a count
            async with asyncio.timeout(30):
                while len(fake.calls) < 4:  # noqa: ASYNC110 - the service calls the fake
                    await asyncio.sleep(0.05)
            assert await service.stop(signal.SIGTERM) == 0
        finally:
            service.kill()
    chains = service.chains()
    assert len(chains) == 2 and len(set(chains.values())) == 1  # two chains, one incident
    root = "1700000000.000001"
    assert [(m, p.get("thread_ts", ""), p.get("ts", "")) for m, p in fake.calls] == [
        ("chat.postMessage", "", ""),  # the incident's root, before the kill
        ("chat.postMessage", root, ""),  # recon-token-pivot in its thread
        ("chat.postMessage", root, ""),  # after the restart: exec-pivot in the same thread
        ("chat.update", "", root),  # and the root rewritten: 2 chains
    ]
    assert fake.calls[-1][1]["blocks"][0]["text"]["text"].endswith("· incident (2 chains)")
    assert (service.state / "slack-slack.threads").exists()
