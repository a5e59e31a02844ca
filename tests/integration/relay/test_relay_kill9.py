"""A relay killed with SIGKILL while the correlator is down loses nothing it answered 200.

Real ``detector run`` in ``mode: relay`` as a child process with ``intake_log.path`` set,
its Falco HTTP receiver, and real aiohttp servers on loopback standing in for the
correlator's ``POST /events`` (they decode the relay's wire batches and count events by
id): one that answers 503 (the correlator down), then a new one that takes them (the
correlator back up). Without the relay's intake log the alerts only ever sat in the
relay's memory, and the kill lost them.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from correlation.chain import rfc3339
from detector.relay import wire
from tests.integration.support import DetectorProcess, post_json, receiving

ALERTS = 6


class Correlator:
    """``POST /events``: 503 while down, else 200 and every event counted by id."""

    def __init__(self) -> None:
        self.up = False
        self.seen: Counter[str] = Counter()
        self.refused = 0

    async def handle(self, request: web.Request) -> web.Response:
        if not self.up:
            self.refused += 1
            return web.Response(status=503, headers={"Retry-After": "0"})
        for event in wire.decode(await request.read()):
            self.seen[event.id] += 1
        return web.Response(status=200)


@asynccontextmanager
async def correlator() -> AsyncIterator[tuple[Correlator, str]]:
    fake = Correlator()
    async with receiving("/events", fake.handle) as url:
        yield fake, url


def alert(n: int) -> dict[str, Any]:
    return {
        "uuid": f"7d3c1e52-0000-4000-8000-{n:012d}", "hostname": "node-1",
        "output": "nmap in pod", "priority": "Warning", "source": "syscall",
        "rule": "LMD Network Scanner Launched in Pod",
        "time": rfc3339(time.time_ns() // 1000 * 1000),
        "tags": ["network", "mitre_discovery", "T1046"],
        "output_fields": {"container.id": f"{n:012x}", "k8s.ns.name": "shop",
                          "k8s.pod.name": f"scanner-{n}", "proc.name": "nmap"},
    }  # fmt: skip


def relay(tmp: Path, endpoint: str) -> DetectorProcess:
    configure(tmp, endpoint)
    return DetectorProcess(tmp, ["--config", str(tmp / "relay.yaml")])


def configure(tmp: Path, endpoint: str) -> None:
    """The relay's config file, forwarding to ``endpoint`` (read again at each start)."""
    (tmp / "relay.yaml").write_text(
        f"""
mode: relay
sources: {{k8s_audit: {{enabled: false}}, events: {{enabled: false}}}}
relay:
  http: {{endpoint: "{endpoint}"}}
  linger_s: 0.05
  backoff_initial_s: 0.05
  backoff_max_s: 0.2
intake_log: {{path: {tmp / "relay-log"}}}
checkpoint: {{interval_s: 0.2}}
"""
    )


async def settled(counter: Correlator, want: int, within_s: float = 20.0) -> None:
    async with asyncio.timeout(within_s):
        while len(counter.seen) < want:  # noqa: ASYNC110 - the relay posts to it
            await asyncio.sleep(0.05)


async def test_a_killed_relay_forwards_what_it_acknowledged(tmp_path: Path) -> None:
    process: DetectorProcess | None = None
    try:
        async with correlator() as (down, endpoint):
            process = relay(tmp_path, endpoint)
            await process.started()
            async with aiohttp.ClientSession() as session:
                for n in range(ALERTS):
                    await post_json(session, process.url + "/falco", alert(n))
            async with asyncio.timeout(10):
                while down.refused == 0:  # noqa: ASYNC110 - the relay is retrying
                    await asyncio.sleep(0.05)
            assert await process.stop(signal.SIGKILL) == -signal.SIGKILL
        # The correlator comes back as a new server (on another port; the relay's config
        # follows), as a restarted one would: a retry the killed relay had sent to the
        # down one just before it died stays there. With one server switched from 503 to
        # 200 instead, that retry, unread while this process waited for CPU on a loaded
        # machine, was answered 200 once "up" and counted as a second copy of its batch
        # (the test's own artifact: no running relay sent it, no restart knew of it).
        async with correlator() as (fake, endpoint):
            fake.up = True
            configure(tmp_path, endpoint)
            await process.started()
            await settled(fake, ALERTS)
            assert await process.stop(signal.SIGTERM) == 0  # the last checkpoint: all settled

            await process.started()  # nothing left to replay: no second copy
            await asyncio.sleep(1.0)
            assert await process.stop(signal.SIGTERM) == 0
    finally:
        if process is not None:
            process.kill()
    assert not down.seen
    assert len(fake.seen) == ALERTS
    assert set(fake.seen.values()) == {1}
    logs = process.log.read_text()
    assert logs.count('"intake_log_replayed"') == 1  # the restart after the kill only
    assert (tmp_path / "relay-log" / "relay.ckpt").exists()
