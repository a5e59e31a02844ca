"""File tailing against real files: growth, rename and copytruncate rotation, restart.

Every test writes numbered Falco alert lines and checks the tailer handed each number
to ``emit`` exactly once — no line lost, none duplicated.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from correlation.event import Event
from detector.config import FileConfig
from detector.metrics import Metrics
from detector.sources.files import FileTailer


def alert(n: int) -> bytes:
    doc = {
        "time": f"2026-01-01T00:00:{n % 60:02d}.{n:09d}Z",
        "rule": "Read sensitive file untrusted",
        "priority": "Warning",
        "source": "syscall",
        "output_fields": {"proc.name": "cat", "k8s.pod.name": f"pod-{n}", "k8s.ns.name": "ns"},
    }
    return orjson.dumps(doc) + b"\n"


def write(path: Path, numbers: range, mode: str = "ab") -> None:
    with open(path, mode) as handle:
        for n in numbers:
            handle.write(alert(n))


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def rename_while_writing(path: Path, rotated: Path, data: bytes) -> None:
    """logrotate's rename: the writer still holds the old file and finishes its lines."""
    with open(path, "ab") as writer:
        os.rename(path, rotated)
        writer.write(data)


def numbers(events: list[Event]) -> list[int]:
    return [int(e.actor.pod.removeprefix("pod-")) for e in events]


class Tail:
    """A running tailer task and what it emitted."""

    def __init__(self, path: Path, metrics: Metrics | None = None, **extra: object) -> None:
        config = FileConfig(path=str(path), poll_interval_s=0.02, **extra)  # type: ignore[arg-type]
        self.metrics = metrics or Metrics()
        self.tailer = FileTailer("falco_file", config, self.metrics)
        self.events: list[Event] = []
        self.task: asyncio.Task[None] | None = None

    async def emit(self, event: Event) -> None:
        self.events.append(event)

    async def __aenter__(self) -> Tail:
        self.task = asyncio.create_task(self.tailer.run(self.emit))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task

    async def until(self, check: Callable[[], bool], limit_s: float = 5.0) -> None:
        async with asyncio.timeout(limit_s):
            while not check():  # noqa: ASYNC110 - polls what another task appends
                await asyncio.sleep(0.01)

    async def count(self, n: int) -> None:
        await self.until(lambda: len(self.events) >= n)
        await asyncio.sleep(0.1)  # and nothing more arrives


async def test_reads_existing_lines_then_follows_growth(tmp_path: Path) -> None:
    log = tmp_path / "falco.jsonl"
    write(log, range(3))
    async with Tail(log) as tail:
        await tail.count(3)
        line = alert(3)
        append(log, line[:20])  # a half-written line waits for its newline
        await asyncio.sleep(0.1)
        assert len(tail.events) == 3
        append(log, line[20:])
        write(log, range(4, 6))
        await tail.count(6)
    assert numbers(tail.events) == list(range(6))


async def test_rename_rotation_finishes_old_file_first(tmp_path: Path) -> None:
    log = tmp_path / "falco.jsonl"
    write(log, range(5))
    async with Tail(log) as tail:
        await tail.count(5)
        rename_while_writing(log, tmp_path / "falco.jsonl.1", alert(5) + alert(6))
        write(log, range(7, 10))
        await tail.count(10)
    assert numbers(tail.events) == list(range(10))
    assert tail.metrics.value("detector_source_reconnects_total", {"source": "falco_file"}) == 1


async def test_copytruncate_rotation_starts_again_from_zero(tmp_path: Path) -> None:
    log = tmp_path / "falco.jsonl"
    write(log, range(5))
    async with Tail(log) as tail:
        await tail.count(5)
        shutil.copy(log, tmp_path / "falco.jsonl.1")
        os.truncate(log, 0)
        # Until a poll sees the shorter file, new lines could outgrow the old offset
        # and hide the truncation: wait for the rewind itself.
        await tail.until(lambda: tail.tailer.offset == 0)
        write(log, range(5, 7))
        await tail.count(7)
    assert numbers(tail.events) == list(range(7))


async def test_restart_resumes_from_saved_offset(tmp_path: Path) -> None:
    log = tmp_path / "falco.jsonl"
    write(log, range(4))
    async with Tail(log) as first:
        await first.count(4)
    write(log, range(4, 6))  # written while the detector was down
    async with Tail(log) as second:
        await second.count(2)
    assert numbers(first.events) + numbers(second.events) == list(range(6))


async def test_restart_after_rotation_while_down_loses_nothing(tmp_path: Path) -> None:
    log = tmp_path / "falco.jsonl"
    write(log, range(3))
    async with Tail(log) as first:
        await first.count(3)
    write(log, range(3, 5))  # appended, then rotated away, while we were down
    os.rename(log, tmp_path / "falco.jsonl.1")
    write(log, range(5, 8), mode="wb")
    async with Tail(log) as second:
        await second.count(5)
    assert numbers(first.events) + numbers(second.events) == list(range(8))


async def test_bad_and_oversized_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    log = tmp_path / "falco.jsonl"
    log.write_bytes(alert(0) + b"{not json\n" + b'{"x": "' + b"a" * 5000 + b'"}\n' + alert(1))
    async with Tail(log, max_line_bytes=1024) as tail:
        await tail.count(2)
    assert numbers(tail.events) == [0, 1]
    errors = tail.metrics.value
    assert (
        errors("detector_parse_errors_total", {"source": "falco_file", "reason": "line_too_long"})
        == 1
    )
    bad_json = sum(
        s.value
        for m in tail.metrics.registry.collect()
        if m.name == "detector_parse_errors"
        for s in m.samples
        if s.name.endswith("_total") and s.labels["reason"] != "line_too_long"
    )
    assert bad_json == 1


async def test_start_at_end_skips_history_without_state(tmp_path: Path) -> None:
    log = tmp_path / "falco.jsonl"
    write(log, range(3))
    async with Tail(log, start_at="end") as tail:
        await tail.until(tail.tailer.ready)  # "end" is fixed when the file is opened
        write(log, range(3, 4))
        await tail.count(1)
    assert numbers(tail.events) == [3]


async def test_file_created_after_start_is_picked_up(tmp_path: Path) -> None:
    log = tmp_path / "later.jsonl"
    async with Tail(log) as tail:
        await tail.until(tail.tailer.ready)  # started, and found no file
        write(log, range(2))
        await tail.count(2)
    assert numbers(tail.events) == [0, 1]
