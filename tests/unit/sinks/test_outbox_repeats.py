"""Once per sink across restarts: the outbox remembers what each sink acknowledged."""

from __future__ import annotations

from pathlib import Path

from detector.delivery.outbox import Outbox
from detector.sinks.config import OutboxConfig


async def test_an_acknowledged_id_is_not_owed_to_that_sink_again(tmp_path: Path) -> None:
    config = OutboxConfig(path=str(tmp_path / "o.sqlite3"))
    outbox = Outbox(config)
    await outbox.add("lmc-1", b"{}", ["slack", "kafka"])
    [row] = await outbox.due("slack", 10)
    await outbox.ack("slack", [row.seq])
    await outbox.close()

    repeats: list[tuple[str, str]] = []
    restarted = Outbox(config, on_repeat=repeats.extend)  # a new process, same file
    await restarted.add("lmc-1", b"{}", ["slack", "kafka"])  # decided again after a restore
    assert repeats == [("lmc-1", "slack")]
    assert await restarted.pending_counts() == {"kafka": 1}  # still owed where not acked
    [row] = await restarted.due("kafka", 10)
    await restarted.ack("kafka", [row.seq])
    await restarted.add("lmc-1", b"{}", ["slack", "kafka"])
    assert repeats[1:] == [("lmc-1", "slack"), ("lmc-1", "kafka")]
    assert await restarted.pending_counts() == {}
    await restarted.add("lmc-2", b"{}", ["slack"])  # another id is delivered as usual
    assert await restarted.pending_counts() == {"slack": 1}
    await restarted.close()


async def test_the_memory_expires_after_remember_delivered_s(tmp_path: Path) -> None:
    now = [1000.0]
    config = OutboxConfig(path=str(tmp_path / "o.sqlite3"), remember_delivered_s=60)
    outbox = Outbox(config, clock=lambda: now[0])
    await outbox.add("lmc-1", b"{}", ["slack"])
    [row] = await outbox.due("slack", 10)
    await outbox.ack("slack", [row.seq])
    now[0] += 30
    await outbox.expire_old()
    await outbox.add("lmc-1", b"{}", ["slack"])
    assert await outbox.pending_counts() == {}  # still remembered
    now[0] += 60
    await outbox.expire_old()
    await outbox.add("lmc-1", b"{}", ["slack"])
    assert await outbox.pending_counts() == {"slack": 1}  # forgotten: owed again
    await outbox.close()
