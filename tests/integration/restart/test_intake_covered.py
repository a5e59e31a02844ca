"""The intake log's covered seq lives in the checkpoint file, moves past holes, and an
older checkpoint (version 1, with the ``covered`` side file) still starts.

Real parts throughout: the engine with the built-in rules, the checkpoint file, the
intake log's segments on disk, the queue and the intake the HTTP receivers use.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from correlation.engine import Engine, EngineConfig
from correlation.event import Event
from correlation.rules import builtin_rules_paths, load_rules
from detector import config as cfg
from detector.commands.run import build_intake
from detector.delivery.checkpoint import Checkpointer, encode_v1, unpack
from detector.delivery.intake import Intake
from detector.delivery.intake_log import IntakeLog
from detector.metrics import Metrics
from detector.pipeline import EventQueue
from tests.integration.restart.test_intake_log import events, segments

RULES = load_rules(builtin_rules_paths())


async def fill(directory: Path, batches: int, size: int = 10) -> None:
    """``batches`` batches of ``size`` events, fsync'd, as the receivers append them."""
    log = IntakeLog(directory, Metrics(), segment_bytes=4096)
    for n in range(0, batches * size, size):
        assert log.append("falco_http", "falco_http@10.0.0.1", 7, events(n, size))
    await log.synced()
    log.close()


async def replay_and_process(intake: Intake, queue: EventQueue) -> list[str]:
    """The ids of what the intake's replay queued (see :func:`replayed`)."""
    return [event.id for event in await replayed(intake, queue)]


async def replayed(intake: Intake, queue: EventQueue) -> list[Event]:
    """Run the intake's replay and take every queued event as the engine task does."""
    replay = asyncio.create_task(intake.run(queue.emitter("unused")))
    seen: list[Event] = []
    try:
        async with asyncio.timeout(10):
            while not intake.ready() or len(queue):
                try:
                    seen.append(queue.get_nowait())
                    queue.done()
                except asyncio.QueueEmpty:
                    await asyncio.sleep(0.01)
    finally:
        replay.cancel()
        await asyncio.gather(replay, return_exceptions=True)
    return seen


def corrupt_middle(segment: Path) -> None:
    """Flip a byte in the middle of the segment: the records from there on fail the CRC."""
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))


async def test_the_checkpoint_file_holds_the_covered_seq(tmp_path: Path) -> None:
    await fill(tmp_path / "log", batches=5)
    queue = EventQueue(1000, Metrics())
    intake = Intake(queue, IntakeLog(tmp_path / "log", Metrics()))
    assert await replay_and_process(intake, queue) == [f"e-{n}" for n in range(50)]
    checkpointer = Checkpointer(tmp_path / "engine.ckpt")
    checkpointer.followers.append(intake)
    checkpointer.save(Engine(RULES, EngineConfig()))

    assert unpack((tmp_path / "engine.ckpt").read_bytes()).positions == {"intake_log": 50}
    assert not (tmp_path / "log" / "covered").exists()  # no side file to disagree with it
    restored = Checkpointer(tmp_path / "engine.ckpt")
    restored.restore(RULES, EngineConfig())
    assert (restored.version, restored.positions) == (2, {"intake_log": 50})


async def test_a_corrupt_middle_segment_does_not_hold_the_covered_seq_back(tmp_path: Path) -> None:
    """The events after the cut in a middle segment are gone (counted, logged); the
    covered seq must still reach the log's end, or every restart replays the newest
    events again and the segments after the hole are never deleted."""
    directory = tmp_path / "log"
    await fill(directory, batches=30)
    middle = segments(directory)[1]
    corrupt_middle(middle)
    metrics = Metrics()
    with capture_logs() as logs:
        intake_log = IntakeLog(directory, metrics, segment_bytes=4096)
        queue = EventQueue(1000, Metrics())
        intake = Intake(queue, intake_log)
        seen = await replay_and_process(intake, queue)
    assert metrics.value("detector_intake_log_corrupt_total") == 1
    assert "intake_log_hole_skipped" in [entry["event"] for entry in logs]
    assert 0 < len(seen) < 300 and seen[-1] == "e-299"

    covered = intake.capture()
    assert covered == intake_log.next_seq == 300  # past the hole, at the log's end
    intake.commit(covered)
    assert middle not in segments(directory)  # the cut segment is deleted with the others
    assert list(IntakeLog(directory, Metrics(), covered=covered).tail()) == []


async def test_a_version_1_checkpoint_takes_the_covered_side_file(tmp_path: Path) -> None:
    """A checkpoint from before positions moved into it: the engine state loads and the
    intake log starts from the ``covered`` file that release wrote."""
    checkpoint = tmp_path / "engine.ckpt"
    checkpoint.write_bytes(encode_v1(Engine(RULES, EngineConfig()).snapshot()))
    directory = tmp_path / "engine.ckpt.intake-log"
    await fill(directory, batches=3)
    (directory / "covered").write_text("20\n")
    config = cfg.load(environ={}, overrides={"checkpoint.path": str(checkpoint)})
    checkpointer = Checkpointer(checkpoint)
    checkpointer.restore(RULES, EngineConfig())
    assert checkpointer.version == 1 and checkpointer.positions == {}
    with capture_logs() as logs:
        intake = build_intake(config, EventQueue(1000, Metrics()), Metrics(), checkpointer)
    assert "intake_log_covered_migrated" in [entry["event"] for entry in logs]
    queue = intake.queue
    assert await replay_and_process(intake, queue) == [f"e-{n}" for n in range(20, 30)]
    intake.close()


async def test_without_a_checkpoint_the_whole_log_is_replayed(tmp_path: Path) -> None:
    """An old side file without the checkpoint it belonged to covers nothing: the engine
    starts empty, so every logged event is replayed."""
    checkpoint = tmp_path / "engine.ckpt"
    directory = tmp_path / "engine.ckpt.intake-log"
    await fill(directory, batches=2)
    (directory / "covered").write_text("15\n")
    config = cfg.load(environ={}, overrides={"checkpoint.path": str(checkpoint)})
    checkpointer = Checkpointer(checkpoint)
    checkpointer.restore(RULES, EngineConfig())
    intake = build_intake(config, EventQueue(1000, Metrics()), Metrics(), checkpointer)
    assert await replay_and_process(intake, intake.queue) == [f"e-{n}" for n in range(20)]
    intake.close()
