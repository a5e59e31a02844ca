"""A tailed file's offset follows the engine checkpoint: ``kill -9`` between checkpoints
loses no line. Real ``detector run`` processes, real file, real HTTP, real checkpoint.

The first run reads the Falco half of an attack from a file, is killed before any
checkpoint is written, and the second run gets the audit half over HTTP: the chain is
confirmed only if the second run read the file's lines again.
"""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import aiohttp
import orjson

from tests.integration.run import scenario
from tests.integration.support import chains, free_port, post_json, spawn_run, wait_ready


async def metric(url: str, name: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        text = await response.text()
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def start(
    tmp_path: Path, falco: Path, output: Path
) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    process = await spawn_run(
        "--listen", f"127.0.0.1:{port}", "--falco-file", str(falco), "--output", str(output),
        env={
            "DETECTOR_CHECKPOINT__PATH": str(tmp_path / "engine.ckpt"),
            "DETECTOR_CHECKPOINT__INTERVAL_S": "3600",  # the kill lands before the first
            "DETECTOR_OUTBOX__PATH": str(tmp_path / "outbox.sqlite3"),
            "DETECTOR_SOURCES__FALCO_FILE__POLL_INTERVAL_S": "0.05",
            "DETECTOR_ENGINE__IDLE_ADVANCE_S": "0.1",
            # short bounds: the chain settles (and is emitted) before the graceful stop,
            # which keeps pending chains in the checkpoint instead of flushing them
            "DETECTOR_ENGINE__LATENESS_BY_SOURCE": "{falco: 0.5, k8s_audit: 0.5}",
            "DETECTOR_ENGINE__IDLE_TIMEOUT_S": "0.5",
        },
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url)
    return process, url


async def test_kill9_before_a_checkpoint_rereads_the_file(tmp_path: Path) -> None:
    falco, output = tmp_path / "falco.jsonl", tmp_path / "chains.jsonl"
    falco.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in scenario.falco_alerts()))
    first, url = await start(tmp_path, falco, output)
    try:
        async with asyncio.timeout(10):  # both alerts in the engine, as open partials
            while await metric(url, "detector_engine_partial_matches") < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        # no checkpoint yet, so no offset either (it used to be saved on enqueue)
        assert not (tmp_path / "falco.jsonl.offset").exists()
        assert not (tmp_path / "engine.ckpt").exists()
    finally:
        first.kill()  # SIGKILL: no shutdown save
        await first.communicate()
    second, url = await start(tmp_path, falco, output)
    try:
        async with aiohttp.ClientSession() as session:
            await post_json(session, url + "/k8s-audit", scenario.event_list())
        async with asyncio.timeout(20):
            while not output.exists() or not chains(output):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        second.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            _, stderr = await second.communicate()
    finally:
        if second.returncode is None:
            second.kill()
            await second.wait()
    assert second.returncode == 0, stderr.decode()[-2000:]
    assert [c["rule"] for c in chains(output)] == [scenario.RULE]
    # the graceful stop checkpointed, and the offset followed it: to the end of the file
    offset = orjson.loads((tmp_path / "falco.jsonl.offset").read_bytes())
    assert offset["offset"] == falco.stat().st_size
