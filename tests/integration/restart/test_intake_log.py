"""The intake log on a real directory: segments, group commit, replay, bounds, corruption."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from correlation.event import Event
from detector.delivery.intake_log import IntakeLog, legacy_covered
from detector.metrics import Metrics


def events(first: int, count: int) -> list[Event]:
    return [
        Event(time_ns=1_772_359_200_000_000_000 + n, source="falco", id=f"e-{n}")
        for n in range(first, first + count)
    ]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg*"))


def size_on_disk(directory: Path) -> int:
    return sum(p.stat().st_size for p in segments(directory))


def cut_last_bytes(segment: Path, count: int) -> None:
    with segment.open("r+b") as handle:
        handle.truncate(segment.stat().st_size - count)


def flip_byte(segment: Path, at: int) -> None:
    data = bytearray(segment.read_bytes())
    data[at] ^= 0xFF
    segment.write_bytes(bytes(data))


def ids(log: IntakeLog) -> list[str]:
    return [e.id for _, record in log.tail() for e in record.events]


async def test_appended_batches_come_back_after_a_restart(tmp_path: Path) -> None:
    metrics = Metrics()
    log = IntakeLog(tmp_path, metrics)
    assert log.append("falco_http", "falco_http@10.0.0.1", 7, events(0, 3))
    assert log.append("k8s_audit", "k8s_audit@10.0.0.2", 7, events(3, 2))
    await log.synced()
    # no close(): as after kill -9
    again = IntakeLog(tmp_path, Metrics())
    records = [record for _, record in again.tail()]
    assert [(r.source, r.input, len(r.events)) for r in records] == [
        ("falco_http", "falco_http@10.0.0.1", 3),
        ("k8s_audit", "k8s_audit@10.0.0.2", 2),
    ]
    assert {r.arrived_ns for r in records} == {7}
    assert ids(again) == [f"e-{n}" for n in range(5)]
    assert records[0].events == events(0, 3)  # every field survives
    assert again.next_seq == 5


async def test_commit_cuts_the_tail_and_deletes_covered_segments(tmp_path: Path) -> None:
    log = IntakeLog(tmp_path, Metrics(), segment_bytes=4096, max_bytes=1 << 20)
    for n in range(0, 200, 10):
        assert log.append("falco_http", "a", 7, events(n, 10))
    await log.synced()
    before = segments(tmp_path)
    assert len(before) == 3  # seqs 0, 90 and 180 start them
    log.commit(137)
    left = segments(tmp_path)
    assert 1 <= len(left) < len(before)
    assert int(left[0].stem) <= 137  # the segment holding seq 137 is kept, older ones gone
    assert not (tmp_path / "covered").exists()  # the checkpoint file holds the seq now
    again = IntakeLog(tmp_path, Metrics(), segment_bytes=4096, covered=137)
    assert [seq for seq, _ in again.tail()][0] == 137
    assert ids(again) == [f"e-{n}" for n in range(137, 200)]  # cut inside a record


async def test_segments_a_checkpoint_covers_are_deleted_at_start(tmp_path: Path) -> None:
    """A kill between the checkpoint's write and the log's commit leaves covered segments
    behind; the next start deletes them (the checkpoint said they are covered)."""
    log = IntakeLog(tmp_path, Metrics(), segment_bytes=4096)
    for n in range(0, 200, 10):
        assert log.append("falco_http", "a", 7, events(n, 10))
    await log.synced()
    assert len(segments(tmp_path)) == 3
    again = IntakeLog(tmp_path, Metrics(), segment_bytes=4096, covered=200)
    assert segments(tmp_path) == [] and ids(again) == []
    assert again.next_seq == 200


async def test_group_commit_one_fsync_round_serves_concurrent_batches(tmp_path: Path) -> None:
    log = IntakeLog(tmp_path, Metrics())
    rounds = 0
    real = os.fsync

    def counting(fd: int) -> None:
        nonlocal rounds
        rounds += 1
        real(fd)

    async def one(n: int) -> None:
        assert log.append("falco_http", "a", 7, events(n, 1))
        await log.synced()

    os_fsync, os.fsync = os.fsync, counting
    try:
        await asyncio.gather(*(one(n) for n in range(50)))
    finally:
        os.fsync = os_fsync
    assert ids(IntakeLog(tmp_path, Metrics())) == [f"e-{n}" for n in range(50)]
    assert rounds < 50 * 2  # segment + directory per round, far fewer rounds than batches


async def test_a_torn_tail_is_cut_counted_and_logged(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    log = IntakeLog(tmp_path, Metrics())
    log.append("falco_http", "a", 7, events(0, 2))
    log.append("falco_http", "a", 7, events(2, 2))
    await log.synced()
    cut_last_bytes(segments(tmp_path)[0], 7)  # a crash in the middle of the second record
    metrics = Metrics()
    with capture_logs() as logs:
        again = IntakeLog(tmp_path, metrics)
    assert ids(again) == ["e-0", "e-1"]
    assert metrics.value("detector_intake_log_corrupt_total") == 1
    assert [e["event"] for e in logs] == ["intake_log_corrupt"]
    assert again.append("falco_http", "a", 7, events(9, 1))  # appends go on after the cut
    await again.synced()
    assert ids(IntakeLog(tmp_path, Metrics())) == ["e-0", "e-1", "e-9"]


async def test_a_flipped_byte_fails_the_checksum(tmp_path: Path) -> None:
    log = IntakeLog(tmp_path, Metrics())
    log.append("falco_http", "a", 7, events(0, 2))
    await log.synced()
    flip_byte(segments(tmp_path)[0], -3)
    metrics = Metrics()
    assert ids(IntakeLog(tmp_path, metrics)) == []
    assert metrics.value("detector_intake_log_corrupt_total") == 1


async def test_full_log_refuses_when_told_to(tmp_path: Path) -> None:
    metrics = Metrics()
    log = IntakeLog(tmp_path, metrics, segment_bytes=4096, max_bytes=8192, when_full="refuse")
    accepted = 0
    while log.append("falco_http", "a", 7, events(accepted, 10)):
        accepted += 10
    await log.synced()
    assert 0 < accepted < 1000
    assert metrics.value("detector_intake_log_refused_total") == 1
    assert size_on_disk(tmp_path) <= 8192
    log.commit(accepted)  # a checkpoint covers them: room again
    assert log.append("falco_http", "a", 7, events(accepted, 10))


async def test_full_log_drops_the_oldest_and_counts_what_was_uncovered(tmp_path: Path) -> None:
    metrics = Metrics()
    log = IntakeLog(tmp_path, metrics, segment_bytes=4096, max_bytes=8192, when_full="drop_oldest")
    for n in range(0, 400, 10):
        assert log.append("falco_http", "a", 7, events(n, 10))
    await log.synced()
    dropped = metrics.value("detector_intake_log_dropped_total")
    kept = ids(IntakeLog(tmp_path, Metrics()))
    assert dropped > 0 and kept[-1] == "e-399"
    assert len(kept) + dropped == 400  # every event is either kept or counted
    assert size_on_disk(tmp_path) <= 8192


def test_the_directory_and_segments_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    log = IntakeLog(directory, Metrics())
    log.append("falco_http", "a", 7, events(0, 1))
    log.close()
    assert directory.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in segments(directory)} == {0o600}


@pytest.mark.parametrize("covered", ["", "not a number\n"])
def test_an_unreadable_legacy_covered_file_replays_everything(tmp_path: Path, covered: str) -> None:
    log = IntakeLog(tmp_path, Metrics())
    log.append("falco_http", "a", 7, events(0, 2))
    log.close()
    (tmp_path / "covered").write_text(covered)
    assert legacy_covered(tmp_path) == 0
    assert ids(IntakeLog(tmp_path, Metrics(), covered=legacy_covered(tmp_path))) == ["e-0", "e-1"]


def test_the_legacy_covered_file_is_read_for_a_version_1_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "covered").write_text("1\n")
    assert legacy_covered(tmp_path) == 1
    assert legacy_covered(tmp_path / "elsewhere") == 0
