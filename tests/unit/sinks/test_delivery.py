"""Outbox and Delivery with the file sink (a real file, a real SQLite database)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from detector.delivery.loops import Delivery, InvalidRecordError
from detector.delivery.outbox import Outbox
from detector.sinks.config import OutboxConfig, decode
from tests.unit.sinks.records import make_record


def file_delivery(tmp_path: Path, *sinks: dict[str, Any], **outbox: Any) -> Delivery:
    outbox = {"path": str(tmp_path / "outbox.sqlite3"), **outbox}
    return Delivery(decode({"outbox": outbox, "sinks": list(sinks)}))


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_submit_then_close_flushes_to_file(tmp_path: Path) -> None:
    out = tmp_path / "chains.jsonl"
    delivery = file_delivery(tmp_path, {"type": "file", "path": str(out)})
    records = [make_record(i) for i in range(5)]
    for record in records:
        await delivery.submit(record)
    await delivery.close(grace_s=5)  # run() never started: close delivers what it can
    assert lines(out) == records


async def test_routing_by_severity_and_rules(tmp_path: Path) -> None:
    high, low = tmp_path / "high.jsonl", tmp_path / "low.jsonl"
    delivery = file_delivery(
        tmp_path,
        {"type": "file", "name": "high", "path": str(high), "min_severity": "high"},
        {
            "type": "file",
            "name": "low",
            "path": str(low),
            "rules_include": ["recon-*", "exec-*"],
            "rules_exclude": ["exec-pivot"],
        },
    )
    await delivery.submit(make_record(1, severity="critical", rule="workload-pivot"))
    await delivery.submit(make_record(2, severity="low", rule="recon-token-pivot"))
    await delivery.submit(make_record(3, severity="medium", rule="exec-pivot"))
    await delivery.close(grace_s=5)
    assert [r["id"][-1] for r in lines(high)] == ["1"]
    assert [r["id"][-1] for r in lines(low)] == ["2"]


async def test_undelivered_records_survive_a_restart(tmp_path: Path) -> None:
    out = tmp_path / "chains.jsonl"
    first = file_delivery(tmp_path, {"type": "file", "path": str(out)})
    await first.submit(make_record(1))
    await first.submit(make_record(1))  # same id again: stored once
    await first.outbox.close()  # "crash": nothing delivered
    assert not out.exists()
    second = file_delivery(tmp_path, {"type": "file", "path": str(out)})
    await second.close(grace_s=5)
    assert [r["id"] for r in lines(out)] == [make_record(1)["id"]]


async def test_bad_record_is_rejected_and_counted(tmp_path: Path) -> None:
    delivery = file_delivery(tmp_path, {"type": "file", "path": str(tmp_path / "x")})
    with pytest.raises(InvalidRecordError):
        await delivery.submit({"no": "id"})
    await delivery.close(grace_s=1)


async def test_formatter_failure_is_dead_lettered_not_fatal(tmp_path: Path) -> None:
    out = tmp_path / "ocsf.jsonl"
    delivery = file_delivery(tmp_path, {"type": "file", "path": str(out), "format": "ocsf"})
    await delivery.submit({"id": "lmc-broken", "severity": "high", "rule": "r"})
    await delivery.submit(make_record(2))
    with capture_logs() as logs:
        await delivery.close(grace_s=5)
    assert [line["class_uid"] for line in lines(out)] == [2004]
    assert any(e["event"] == "delivery_dead_letter" for e in logs)


async def test_expiry_by_count_and_age_is_counted_and_logged(tmp_path: Path) -> None:
    clock = [1000.0]
    config = OutboxConfig(path=str(tmp_path / "o.sqlite3"), max_records=3, max_age_s=60)
    expired: list[tuple[list[str], str]] = []
    outbox = Outbox(
        config, on_expired=lambda ids, why: expired.append((ids, why)), clock=lambda: clock[0]
    )
    for i in range(5):
        await outbox.add(f"id-{i}", b"{}", ["a", "b"])
    assert expired == [(["id-0"], "max_records"), (["id-1"], "max_records")]
    clock[0] += 61
    await outbox.add("id-new", b"{}", ["a"])
    await outbox.expire_old()
    assert expired[-2:] == [(["id-2"], "max_records"), (["id-3", "id-4"], "max_age")]
    assert await outbox.pending_counts() == {"a": 1}
    await outbox.close()


async def test_removed_sink_rows_are_dropped_with_a_log(tmp_path: Path) -> None:
    outbox = Outbox(OutboxConfig(path=str(tmp_path / "outbox.sqlite3")))
    await outbox.add(make_record(1)["id"], orjson.dumps(make_record(1)), ["gone"])
    await outbox.close()
    delivery = file_delivery(tmp_path, {"type": "file", "path": str(tmp_path / "x")})
    with capture_logs() as logs:
        await delivery.close(grace_s=1)
    assert {"event": "outbox_rows_dropped", "reason": "sink_removed", "rows": 1} in [
        {k: e[k] for k in ("event", "reason", "rows") if k in e} for e in logs
    ]


async def test_submit_throughput(tmp_path: Path) -> None:
    """Concurrent submitters are group-committed; measured number goes to the report."""
    delivery = file_delivery(tmp_path, {"type": "file", "path": str(tmp_path / "x")})
    records = [make_record(i) for i in range(2000)]
    started = time.perf_counter()
    for chunk in range(0, len(records), 200):
        await asyncio.gather(*(delivery.submit(r) for r in records[chunk : chunk + 200]))
    rate = len(records) / (time.perf_counter() - started)
    print(f"submit throughput: {rate:.0f} records/s (synchronous=FULL, 200 concurrent)")
    assert (await delivery.outbox.pending_counts()) == {"file": 2000}
    assert rate > 500
    await delivery.outbox.close()
