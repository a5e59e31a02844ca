"""The JSON-lines log: library loggers in the same lines, the service's words left alone.

The routing test runs a real interpreter so the process's own stderr is what is read.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import sys

from detector.logging import OwnText, redact_secrets

SCRIPT = """
import asyncio, logging
from detector.logging import configure, get_logger
configure("info")
logging.getLogger("aiokafka.cluster").warning("Topic %s not found in cluster metadata", "chains")
logging.getLogger("aiohttp.access").info("GET /x?token=abc123def456 200")
logging.getLogger("asyncio").debug("below the level: not shown")
try:
    raise ValueError("boom")
except ValueError:
    logging.getLogger("asyncio").exception("Task exception was never retrieved")
get_logger("detector.run").info("detector_started", mode="correlate")
"""


def _run() -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout == ""
    return [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON


def test_library_loggers_write_the_same_json_lines() -> None:
    kafka, access, failed, ours = _run()
    assert kafka["component"] == "aiokafka.cluster"
    assert (kafka["event"], kafka["level"]) == ("library_log", "warning")
    assert kafka["message"] == "Topic chains not found in cluster metadata"
    assert str(kafka["timestamp"]).endswith("Z")
    assert access["message"] == "GET /x?token=[REDACTED] 200"  # library text is data
    assert failed["component"] == "asyncio" and "ValueError: boom" in str(failed["exception"])
    assert (ours["event"], ours["component"]) == ("detector_started", "detector.run")
    assert set(ours) >= {"level", "timestamp"}


def test_the_services_own_words_are_never_rewritten() -> None:
    event = {
        "event": "http_rejected",
        "detail": OwnText("missing or wrong bearer token"),
        "error": "sent Bearer abc.def to server",
    }
    out = redact_secrets(None, "warning", dict(event))
    assert out["detail"] == "missing or wrong bearer token"
    assert out["error"] == "sent Bearer [REDACTED] to server"  # data is still scrubbed


async def test_each_emitted_chain_is_logged_with_its_id_rule_incident_and_severity() -> None:
    from typing import Any

    from structlog.testing import capture_logs

    from correlation.engine import Engine, EngineConfig
    from correlation.rules import builtin_rules_paths, load_rules
    from detector.metrics import Metrics
    from detector.parse import parse_line
    from detector.pipeline import Correlator, EventQueue
    from tests.unit.cli.test_replay_options import _fanout

    class Kept:
        def __init__(self) -> None:
            self.records: list[dict[str, Any]] = []

        async def submit(self, record: dict[str, Any]) -> None:
            self.records.append(record)

        async def run(self) -> None: ...
        async def close(self, grace_s: float) -> None: ...

    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig(lateness_ns=0))
    metrics, output = Metrics(), Kept()
    queue = EventQueue(100, metrics)
    # stamped now: the live path judges pushed events against their arrival time
    now = datetime.datetime.now(datetime.UTC)
    lines = []
    for i, line in enumerate(_fanout(10).splitlines()):
        doc = json.loads(line)
        doc["time"] = (now + datetime.timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z")
        lines.append(json.dumps(doc).encode())
    events = [e for line in lines for e in parse_line(line, [])]
    assert queue.offer("falco_http", events)
    correlator = Correlator(engine, queue, output, metrics)
    with capture_logs() as logs:
        task = asyncio.create_task(correlator.run())
        async with asyncio.timeout(10):
            await queue.drained()  # every event processed ...
        await correlator.flush()  # ... and the chain out, whatever the watermark says
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    (record,) = output.records
    emitted = [e for e in logs if e["event"] == "chain_emitted"]
    assert emitted == [
        {
            "event": "chain_emitted",
            "log_level": "info",
            "component": "detector.pipeline",
            "chain_id": record["id"],
            "rule": "internal-fanout",
            "incident": record["incident"],
            "severity": record["severity"],
        }
    ]
