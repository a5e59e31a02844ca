"""``kill -9`` at random points while a generator posts a scenario, 20+ times: nothing
acknowledged is lost and every chain reaches the webhook once, with the ids of an
uninterrupted run.

Real ``detector run`` processes (HTTP receivers, engine, checkpoint, intake log, outbox,
webhook sink) and a real aiohttp webhook receiver on loopback that counts POSTs by chain
id. The generator posts each chain's two steps (a Falco recon alert, then the audit
pivot) and retries every POST until it is answered 200: an event counts as acknowledged
only then. Kills land at random moments of the posting, with one exception: not within
a moment of a webhook delivery, because a kill between the receiver's 200 and the
outbox's commit of that ack re-sends the chain (delivery is at-least-once at that one
point; consumers deduplicate on the id, see docs/sinks.md). Every other re-delivery —
a chain decided again after a restart — is refused by the outbox.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from correlation.chain import rfc3339
from correlation.engine import Engine, EngineConfig
from correlation.rules import builtin_rules_paths, load_rules
from detector.parse import parse_document
from tests.integration.support import DetectorProcess, receiving

JSON = {"Content-Type": "application/json"}
CHAINS = 20
KILLS = 20
RULE = "recon-token-pivot"
# Events are stamped when each POST is made. On this shared machine a POST can take
# seconds to be answered, and a pushed input's events later than its delivery bound are
# (rightly) late; the bounds here cover that, so every acknowledged event must be
# correlated.
LATENESS_S = 10
# A kill waits until the webhook has been quiet for QUIET_S, so that it does not land
# between a delivery and the outbox's commit of its ack; a re-send is put down to that
# instant only when the process that sent the first copy was killed less than ACK_S after
# the copy arrived. The ack is one SQLite commit on a worker thread: well under ACK_S even
# on a loaded machine. Which process sent a copy is in its X-Generation header (the
# number of kills before its start): the arrival is only seen when this test's loop reads
# it, and a POST sent just before a kill waits in the socket while the loop is busy
# killing and restarting, so it can arrive after the kill of its sender. (Timed against
# any kill at or after the arrival, that one was once counted as unexplained.)
QUIET_S = 0.6
ACK_S = 1.5


def recon(n: int, at: str) -> dict[str, Any]:
    # A stable uuid, as Falcosidekick sends: a POST whose 200 a kill cut off was already in
    # the intake log, and its retry (stamped anew) is then the same alert. Without one, the
    # alert's id is derived from its time, the logged first attempt anchors the chain, and
    # the chain id is not the one the acknowledged attempt gives.
    return {
        "uuid": f"1f2e3d4c-0000-4000-8000-{n:012d}", "hostname": "node-1",
        "output": "nmap in pod", "priority": "Warning", "source": "syscall",
        "rule": "LMD Network Scanner Launched in Pod", "time": at,
        "tags": ["network", "mitre_discovery", "T1046"],
        "output_fields": {"container.id": f"{n:012x}", "k8s.ns.name": "shop",
                          "k8s.pod.name": f"scanner-{n}", "proc.name": "nmap"},
    }  # fmt: skip


def pivot(n: int, at: str) -> dict[str, Any]:
    event = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": f"5b0c3a52-0f7e-4c44-9d55-{n:012d}", "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/billing/secrets", "verb": "list",
        "user": {"username": "system:serviceaccount:shop:web",
                 "groups": ["system:serviceaccounts", "system:authenticated"],
                 "extra": {"authentication.kubernetes.io/pod-name": [f"scanner-{n}"]}},
        "sourceIPs": ["10.128.0.9"], "objectRef": {"resource": "secrets", "namespace": "billing"},
        "responseStatus": {"code": 403},
        "annotations": {"authorization.k8s.io/decision": "forbid"},
        "requestReceivedTimestamp": at, "stageTimestamp": at,
    }  # fmt: skip
    return {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [event]}


class Webhook:
    """Counts deliveries by chain id; remembers when the last one arrived."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.first: dict[str, float] = {}  # id -> when it first arrived (monotonic)
        self.sender: dict[str, int] = {}  # id -> the generation that sent the first copy
        self.last = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        record = orjson.loads(await request.read())
        self.last = time.monotonic()
        if record.get("rule") == RULE:
            self.count[record["id"]] += 1
            self.first.setdefault(record["id"], self.last)
            self.sender.setdefault(record["id"], int(request.headers["X-Generation"]))
        return web.Response(status=200)

    def quiet_for(self, seconds: float) -> bool:
        return time.monotonic() - self.last > seconds


@asynccontextmanager
async def webhook() -> AsyncIterator[tuple[Webhook, str]]:
    hook = Webhook()
    async with receiving("/hook", hook.handle) as url:
        yield hook, url


def make_service(tmp: Path) -> DetectorProcess:
    """``detector run`` with its state (checkpoint, intake log, outbox) in ``tmp``; its
    config is written by :func:`configure` before each start."""
    return DetectorProcess(tmp, ["--config", str(tmp / "detector.yaml")])


def configure(tmp: Path, hook_url: str, generation: int) -> None:
    """The config of the next start: its webhook POSTs say which start sent them."""
    (tmp / "detector.yaml").write_text(
        f"""
checkpoint: {{path: {tmp / "engine.ckpt"}, interval_s: 0.3}}
outbox: {{path: {tmp / "outbox.sqlite3"}, retry: {{initial_s: 0.05, max_s: 0.5}}}}
sinks: [{{type: webhook, name: hook, url: "{hook_url}", headers: {{X-Generation: "{generation}"}}}}]
engine:
  lateness_by_source: {{falco: {LATENESS_S}, k8s_audit: {LATENESS_S}}}
  delivery_bound_floor_s: {LATENESS_S}
shutdown_grace_s: 5
"""
    )


async def post_until_acknowledged(
    session: aiohttp.ClientSession, url: str, make: Callable[[str], dict[str, Any]]
) -> dict[str, Any]:
    """Retry through refusals, kills and restarts until the service answers 200. Each
    attempt is stamped anew: a retry seconds later with the first stamp would be late on
    a pushed input (correctly, by the event-time model), which is not what this tests."""
    while True:
        doc = make(rfc3339(time.time_ns() // 1000 * 1000))
        body = orjson.dumps(doc)
        try:
            async with session.post(url, data=body, headers=JSON) as response:
                if response.status == 200:
                    return doc
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)


def expected_ids(steps: list[tuple[str, dict[str, Any]]]) -> list[str]:
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig())
    chains = []
    for _, doc in steps:
        for event in parse_document(orjson.dumps(doc)):
            chains += engine.process(event)
    chains += engine.flush()
    return sorted(c.id for c in chains if c.rule == RULE)


# the suite's slowest test: 138 s in a full run beside two busy loops and two other test
# loops (load average 5-11), about half the suite's 300 s; its own bounds allow more
@pytest.mark.timeout(600)
async def test_kill9_at_random_points_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(15)
    async with webhook() as (hook, hook_url):
        service = make_service(tmp_path)
        steps: list[tuple[str, dict[str, Any]]] = []
        killed: list[float] = []  # killed[g]: when generation g was killed
        try:
            configure(tmp_path, hook_url, 0)
            service.start()
            async with aiohttp.ClientSession() as session:

                async def generate() -> None:
                    for n in range(CHAINS):
                        for path, make in (("/falco", recon), ("/k8s-audit", pivot)):
                            url = service.url + path
                            doc = await post_until_acknowledged(session, url, partial(make, n))
                            steps.append((path, doc))
                            await asyncio.sleep(rng.uniform(0.2, 0.6))

                poster = asyncio.create_task(generate())
                for _ in range(KILLS):
                    await service.ready()
                    await asyncio.sleep(rng.uniform(0.0, 0.8))  # a random point of the posting
                    while not hook.quiet_for(QUIET_S):  # noqa: ASYNC110 - see the module docstring
                        await asyncio.sleep(0.05)
                    killed.append(time.monotonic())
                    service.kill()
                    configure(tmp_path, hook_url, len(killed))
                    service.start()
                await poster
                want = expected_ids(steps)
                assert len(want) == CHAINS
                try:
                    async with asyncio.timeout(90):
                        while sorted(hook.count) != want:  # noqa: ASYNC110
                            await asyncio.sleep(0.1)
                except TimeoutError:
                    missing = sorted(set(want) - set(hook.count))
                    raise AssertionError(f"never delivered: {missing}; {service.log}") from None
            await service.ready()  # a SIGTERM before the handlers are set is a plain kill
            assert await service.stop() == 0
            await asyncio.sleep(0.5)  # anything re-sent at shutdown would have arrived
        finally:
            service.kill()
    assert sorted(hook.count) == want  # every chain, with the uninterrupted run's ids
    # Each chain once. The one exception is the kill the quiet check cannot see: a POST
    # already on its way when the kill lands is answered by this receiver, but the dead
    # process never commits the ack and re-sends it (at-least-once at that one instant):
    # its sender was killed less than ACK_S after the copy arrived, or before it arrived.
    twice = {i for i, n in hook.count.items() if n > 1}
    unexplained = {
        i: (hook.sender[i], hook.first[i])
        for i in twice
        if hook.sender[i] >= len(killed) or killed[hook.sender[i]] - hook.first[i] >= ACK_S
    }
    assert not unexplained, (unexplained, killed, hook.count)
    assert max(hook.count.values()) <= 2
    logs = service.log.read_text()
    assert logs.count('"detector_started"') == KILLS + 1  # every kill hit a running service
    assert "intake_log_replayed" in logs  # acknowledged events came back from the log
    assert '"late_events"' not in logs  # and every one was correlated
