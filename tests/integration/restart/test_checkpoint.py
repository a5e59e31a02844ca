"""Checkpoint files with the real engine and a real filesystem (no doubles)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from correlation.engine import Engine, EngineConfig
from correlation.rules import builtin_rules_paths, load_rules
from correlation.testing import audit_event, falco_event
from detector.delivery.checkpoint import Checkpointer, CheckpointError, decode, encode
from detector.metrics import Metrics

RULES = load_rules(builtin_rules_paths())
CONFIG = EngineConfig()
RECON = falco_event("LMD Network Scanner Launched in Pod", 0, pod="p", namespace="shop")
PIVOT = audit_event("list", "secrets", 120, sa="shop:web", pod="p", namespace="billing")


def _chain_ids(engine: Engine) -> list[str]:
    chains = engine.process(PIVOT) + engine.flush()
    return [c.id for c in chains if c.rule == "recon-token-pivot"]


def test_chain_survives_save_and_restore_with_same_id(tmp_path: Path) -> None:
    uninterrupted = Engine(RULES, CONFIG)
    uninterrupted.process(RECON)
    expected = _chain_ids(uninterrupted)
    assert len(expected) == 1

    before = Engine(RULES, CONFIG)
    before.process(RECON)
    saver = Checkpointer(tmp_path / "engine.ckpt", interval_s=30)
    size = saver.save(before)
    assert size > 0 and saver.stats.saves == 1 and saver.stats.last_bytes == size

    after = Checkpointer(tmp_path / "engine.ckpt").restore(RULES, CONFIG)
    assert _chain_ids(after) == expected


def test_no_checkpoint_starts_fresh(tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path / "missing.ckpt")
    assert checkpointer.load() is None
    engine = checkpointer.restore(RULES, CONFIG)
    assert _chain_ids(engine) == []  # no recon step was restored


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: b[:-3], "truncated"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]), "bad_checksum"),
        (lambda b: b"NOTACKPT" + b[8:], "bad_magic"),
        (lambda b: b[:5], "truncated"),
    ],
)
def test_damaged_file_is_set_aside_and_counted(
    tmp_path: Path, damage: Callable[[bytes], bytes], reason: str
) -> None:
    path = tmp_path / "engine.ckpt"
    engine = Engine(RULES, CONFIG)
    engine.process(RECON)
    Checkpointer(path).save(engine)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointError) as info:
        decode(path.read_bytes())
    assert info.value.reason == reason
    checkpointer = Checkpointer(path)
    with capture_logs() as logs:
        assert checkpointer.load() is None
    assert checkpointer.stats.corrupt == 1
    assert not path.exists() and (tmp_path / "engine.ckpt.corrupt").exists()
    assert logs[0]["event"] == "checkpoint_unusable" and logs[0]["reason"] == reason


def test_snapshot_the_engine_refuses_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "engine.ckpt"
    path.write_bytes(encode(b"\x00not msgpack of an engine"))
    checkpointer = Checkpointer(path)
    engine = checkpointer.restore(RULES, CONFIG)
    assert isinstance(engine, Engine)
    assert checkpointer.stats.corrupt == 1 and (tmp_path / "engine.ckpt.corrupt").exists()


def test_save_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "state" / "engine.ckpt"
    checkpointer = Checkpointer(path)
    engine = Engine(RULES, CONFIG)
    checkpointer.save(engine)
    first = path.read_bytes()
    engine.process(RECON)
    checkpointer.save(engine)
    assert path.read_bytes() != first
    assert decode(path.read_bytes()) == engine.snapshot()
    assert [p.name for p in path.parent.iterdir()] == ["engine.ckpt"]


async def test_run_checkpoints_periodically(tmp_path: Path) -> None:
    path = tmp_path / "engine.ckpt"
    checkpointer = Checkpointer(path, interval_s=0.05)
    engine = Engine(RULES, CONFIG)
    engine.process(RECON)
    task = asyncio.create_task(checkpointer.run(engine))
    try:
        for _ in range(100):
            await asyncio.sleep(0.02)
            if checkpointer.stats.saves >= 2:
                break
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert checkpointer.stats.saves >= 2
    assert decode(path.read_bytes()) == engine.snapshot()


def test_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval"):
        Checkpointer(tmp_path / "x", interval_s=0)


def test_saves_and_failures_are_exported_as_metrics(tmp_path: Path) -> None:
    metrics = Metrics()
    engine = Engine(RULES, CONFIG)
    engine.process(RECON)
    checkpointer = Checkpointer(tmp_path / "engine.ckpt", metrics=metrics)
    size = checkpointer.save(engine)
    assert metrics.value("detector_checkpoint_saves_total") == 1
    assert metrics.value("detector_checkpoint_bytes") == size > 0
    assert metrics.value("detector_checkpoint_duration_seconds_count") == 1

    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the checkpoint directory should be")
    failing = Checkpointer(blocked / "engine.ckpt", metrics=metrics)
    with capture_logs() as logs:
        assert failing.try_save(engine) is False
    assert metrics.value("detector_checkpoint_failures_total", {"reason": "write"}) == 1
    assert failing.stats.failures == 1 and logs[0]["event"] == "checkpoint_write_failed"


def test_unusable_file_at_start_is_counted_by_reason(tmp_path: Path) -> None:
    metrics = Metrics()
    path = tmp_path / "engine.ckpt"
    path.write_bytes(b"garbage")
    assert Checkpointer(path, metrics=metrics).load() is None
    assert metrics.value("detector_checkpoint_failures_total", {"reason": "truncated"}) == 1
