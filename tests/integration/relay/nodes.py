"""A correlating ``detector run`` in-process and a relay ``detector run`` as a subprocess.

Two real services on loopback: the correlator is ``serve()`` in this event loop (its
metrics are inspected directly, SIGTERM to this process stops it gracefully), the relay
is ``python -m detector.cli run`` with ``DETECTOR_MODE=relay`` — the same binary and
configuration path a DaemonSet sidecar uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from detector import config as cfg
from detector.commands.run import serve
from detector.metrics import Metrics
from tests.integration.support import (
    shipped_engine,
    spawn_run,
    stop_in_process,
    stop_process,
    wait_ready,
)

TOKEN = "relay-test-token"  # noqa: S105 - a test credential on loopback
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def correlator_config(port: int, tmp_path: Path) -> cfg.Config:
    return cfg.load(
        environ={},
        overrides={
            "http.listen": f"127.0.0.1:{port}",
            "http.bearer_token": TOKEN,
            "output": str(tmp_path / "chains.jsonl"),
            "engine.idle_advance_s": 0.05,
            "outbox.path": str(tmp_path / "outbox.sqlite3"),
            # no checkpoint: the graceful stop flushes pending chains (the end of the input),
            # and no state is written into the working directory
            "checkpoint.path": "",
        },
    )


@asynccontextmanager
async def correlator(port: int, tmp_path: Path) -> AsyncIterator[Metrics]:
    """A correlating service until the block ends; then SIGTERM and wait for its exit."""
    metrics = Metrics()
    config = correlator_config(port, tmp_path)
    service = asyncio.create_task(serve(config, shipped_engine(), metrics))
    try:
        await wait_ready(f"http://127.0.0.1:{port}")
        yield metrics
        await stop_in_process(service)
    finally:
        service.cancel()
        await asyncio.gather(service, return_exceptions=True)


@asynccontextmanager
async def relay(port: int, correlator_port: int, **env: str) -> AsyncIterator[str]:
    """``detector run`` in relay mode forwarding to the correlator; yields its URL."""
    settings = {
        "DETECTOR_MODE": "relay",
        "DETECTOR_HTTP__LISTEN": f"127.0.0.1:{port}",
        "DETECTOR_SOURCES__K8S_AUDIT__ENABLED": "false",
        "DETECTOR_RELAY__HTTP__ENDPOINT": f"http://127.0.0.1:{correlator_port}/events",
        "DETECTOR_RELAY__HTTP__BEARER_TOKEN": TOKEN,
        "DETECTOR_RELAY__LINGER_S": "0.05",
        "DETECTOR_RELAY__BACKOFF_INITIAL_S": "0.1",
        "DETECTOR_RELAY__BACKOFF_MAX_S": "0.5",
        "DETECTOR_SHUTDOWN_GRACE_S": "5",
        **env,
    }
    process = await spawn_run(env=settings, stdout=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url)
        yield url
    finally:
        stderr = await stop_process(process)
    assert process.returncode == 0, stderr.decode()[-2000:]


async def metric(url: str, name: str) -> float:
    """One sample summed over its labels, read from a service's ``/metrics`` page."""
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        text = await response.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


__all__ = ["AUTH", "TOKEN", "correlator", "metric", "relay"]
