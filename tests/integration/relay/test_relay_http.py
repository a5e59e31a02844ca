"""Relay sidecar → correlator over ``POST /events``: real services on loopback.

* the Falco half of an attack enters the relay's ``/falco``, the audit half the
  correlator's ``/k8s-audit`` → the correlator emits the one expected chain;
* the correlator is down while alerts arrive at the relay → the relay retries, and once
  the correlator is up nothing is missing from the chain.

The audit half is posted once the alerts are in: each sender is a pushed input whose
progress follows the clock, so the relay's own delivery delay must come first (an alert
arriving later than its sender's learned bound behind the others would be late).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import orjson

from detector.metrics import Metrics
from tests.integration.relay.nodes import AUTH, correlator, metric, relay
from tests.integration.run import scenario
from tests.integration.support import JSON, chains, free_port


async def _post_alerts(relay_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for alert in scenario.falco_alerts():
            async with session.post(relay_url + "/falco", json=alert) as response:
                assert response.status == 200, await response.text()


async def _post_audit(correlator_url: str) -> None:
    body = orjson.dumps(scenario.event_list())
    headers = {**JSON, **AUTH}
    async with aiohttp.ClientSession() as session:
        async with session.post(correlator_url + "/k8s-audit", data=body, headers=headers) as r:
            assert r.status == 200, await r.text()


async def _relayed(metrics: Metrics, count: int) -> None:
    async with asyncio.timeout(15):
        while metrics.value("detector_events_in_total", {"source": "events"}) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def _assert_one_chain(tmp_path: Path) -> None:
    found = [c for c in chains(tmp_path / "chains.jsonl") if c["rule"] == scenario.RULE]
    assert len(found) == 1, found
    steps = found[0]["steps"]
    assert [s["step"] for s in steps] == ["recon", "token-read", "cross-namespace-api"]  # type: ignore[index]
    assert [s["source"] for s in steps] == ["falco", "falco", "k8s_audit"]  # type: ignore[index]


async def test_falco_via_relay_and_audit_direct_make_one_chain(tmp_path: Path) -> None:
    c_port, r_port = free_port(), free_port()
    async with correlator(c_port, tmp_path) as metrics, relay(r_port, c_port) as relay_url:
        await _post_alerts(relay_url)
        await _relayed(metrics, 2)  # the relay's linger is its delivery delay: alerts first
        await _post_audit(f"http://127.0.0.1:{c_port}")
        assert await metric(relay_url, "detector_relay_events_sent_total") == 2
    _assert_one_chain(tmp_path)
    assert metrics.value("detector_chains_emitted_total", {"rule": scenario.RULE}) == 1


async def test_correlator_down_relay_retries_and_loses_nothing(tmp_path: Path) -> None:
    c_port, r_port = free_port(), free_port()
    async with relay(r_port, c_port) as relay_url:
        await _post_alerts(relay_url)  # accepted by the relay; the correlator is not there
        async with asyncio.timeout(15):
            while await metric(relay_url, "detector_relay_retries_total") < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        assert await metric(relay_url, "detector_relay_events_sent_total") == 0
        async with correlator(c_port, tmp_path) as metrics:
            await _relayed(metrics, 2)
            await _post_audit(f"http://127.0.0.1:{c_port}")
        assert await metric(relay_url, "detector_relay_events_sent_total") == 2
        assert await metric(relay_url, "detector_dropped_events_total") == 0
    _assert_one_chain(tmp_path)
