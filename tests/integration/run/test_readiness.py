"""``/readyz`` of a real ``detector run`` names what is not ready; a chain is logged."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from tests.integration.support import free_port, spawn_run, stop_process


async def _readyz(url: str, limit_s: float = 20.0) -> tuple[int, dict[str, object]]:
    """The first answer of /readyz once the server listens."""
    async with asyncio.timeout(limit_s), aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url + "/readyz") as response:
                    return response.status, await response.json()
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)


async def test_readyz_names_the_source_that_is_not_connected(tmp_path: Path) -> None:
    port = free_port()
    process = await spawn_run(
        "--listen", f"127.0.0.1:{port}",
        "--falco-grpc", f"unix://{tmp_path}/no-falco.sock",  # nothing listens there
        "--output", str(tmp_path / "chains.jsonl"),
        env={"DETECTOR_OUTBOX__PATH": str(tmp_path / "outbox.sqlite3"),
             "DETECTOR_CHECKPOINT__PATH": ""},
    )  # fmt: skip
    try:
        status, body = await _readyz(f"http://127.0.0.1:{port}")
        # the delivery loop may still be opening the outbox in the first milliseconds
        for _ in range(100):
            if body.get("not_ready") == ["source:falco_grpc"]:
                break
            await asyncio.sleep(0.05)
            status, body = await _readyz(f"http://127.0.0.1:{port}")
        assert (status, body) == (503, {"status": "not ready", "not_ready": ["source:falco_grpc"]})
    finally:
        stderr = await stop_process(process)
    lines = [json.loads(line) for line in stderr.decode().splitlines()]  # all JSON lines
    assert any(line["event"] == "detector_started" for line in lines)
