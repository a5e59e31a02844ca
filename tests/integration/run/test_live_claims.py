"""``POST /k8s-audit`` passes pod-token requests on as claims, through the intake log too.

Real parts: the receiver with the early reject of the built-in rules, the whole service
in-process (HTTP server, queue, correlator, engine), the intake log on disk and its
replay of a logged body. A request made with a pod's own token that only a
foreign-source-IP step may want is queued as a :class:`~correlation.event.Claim`; the
engine decides it when it takes it (a claim that changed nothing counts as time-only),
and the attack over the same endpoint is still one chain.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from correlation.event import Claim
from detector.commands.run import early_reject
from detector.metrics import Metrics
from detector.sources.k8s_audit import K8sAuditReceiver
from tests.integration.restart.test_intake_bodies import logged_intake, opened
from tests.integration.restart.test_intake_covered import replayed
from tests.integration.run import scenario
from tests.integration.run.test_early_reject import service_config, tailed
from tests.integration.support import chains, free_port, post_json, serving, shipped_engine
from tests.unit.parse.test_early_claims import request

OWN = 30  # pods reading their own namespace's config maps with their own tokens


def own_token_reads(now_ns: int) -> list[dict[str, Any]]:
    """Claimable: only the stolen-token step (a foreign source IP) could want them."""
    return [orjson.loads(request(now_ns + n, "api", "10.0.0.1", number=n)) for n in range(OWN)]


def body_of(items: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(scenario.event_list() | {"items": items})


async def test_the_receiver_queues_own_token_requests_as_claims() -> None:
    receiver = K8sAuditReceiver(1 << 20, early_reject(shipped_engine()))
    decoded = await receiver.decode(body_of(own_token_reads(time.time_ns())), 100, 100)
    assert len(decoded.events) == OWN and not decoded.rejected
    assert all(isinstance(e, Claim) for e in decoded.events)
    assert {(e.pod_ref, e.ip) for e in decoded.events} == {("shop/api", "10.0.0.1")}
    plain = await K8sAuditReceiver(1 << 20).decode(body_of(own_token_reads(0)), 100, 100)
    assert not any(isinstance(e, Claim) for e in plain.events)  # no rules (a relay): Events


async def test_a_logged_body_of_claims_replays_to_the_same_claims(tmp_path: Path) -> None:
    body = body_of(own_token_reads(time.time_ns()))
    receiver = K8sAuditReceiver(1 << 20, early_reject(shipped_engine()))
    claims = (await receiver.decode(body, 100, 100)).events
    intake = await opened(tmp_path)
    assert intake.offer(K8sAuditReceiver.name, claims, "k8s_audit@10.0.0.2", body)
    await intake.committed()
    again, _, queue = logged_intake(tmp_path)
    assert await replayed(again, queue) == claims


async def test_claims_over_http_change_nothing_and_the_attack_is_still_one_chain(
    tmp_path: Path,
) -> None:
    scenario.rebase()
    output, config = tmp_path / "chains.jsonl", service_config(free_port(), tmp_path)
    engine, metrics = shipped_engine(), Metrics()
    items = own_token_reads(scenario.at(0)) + scenario.audit_items()
    async with serving(config, engine, metrics) as url, aiohttp.ClientSession() as session:
        for alert in scenario.falco_alerts():
            await post_json(session, url + "/falco", alert)
        await post_json(session, url + "/k8s-audit", scenario.event_list() | {"items": items})
        async with asyncio.timeout(10):
            while not (output.exists() and output.stat().st_size):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    assert [c["rule"] for c in chains(output)] == [scenario.RULE]
    # the first claim teaches the resolver api's address (built, processed); the rest
    # changed nothing
    assert engine.stats().time_only == OWN - 1
    assert metrics.value("detector_events_in_total", {"source": "k8s_audit"}) == len(items)
    assert metrics.value("detector_engine_late_events_total", {"source": "k8s_audit"}) == 0


async def test_a_tailed_audit_file_queues_own_token_requests_as_claims(tmp_path: Path) -> None:
    scenario.rebase()
    lines = own_token_reads(scenario.at(0)) + scenario.audit_items()
    path, again = tmp_path / "audit.log", tmp_path / "again.log"  # a tailer saves its offset
    for each in (path, again):
        each.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    seen = await tailed(path, early_reject(shipped_engine()), len(lines))
    assert all(isinstance(e, Claim) for e in seen[:OWN])  # as the webhook receiver makes them
    assert {(e.pod_ref, e.ip) for e in seen[:OWN]} == {("shop/api", "10.0.0.1")}
    assert not isinstance(seen[-1], Claim) and seen[-1].resource == "secrets"  # the attack's
    plain = await tailed(again, None, len(lines))  # no rules (a relay): Events only
    assert not any(isinstance(e, Claim) for e in plain)
    assert [c.event() for c in seen[:OWN]] == plain[:OWN]  # each claim builds that Event
