"""``detector run`` keeps the cyclic GC out of the way while it serves, and gives it back.

The real service in-process: while it serves, what existed at start-up is frozen and the
young generation is collected every ``GC_YOUNG`` allocations; once it has stopped, the
process (here: pytest) has its own thresholds and no frozen objects back.
"""

from __future__ import annotations

import gc
from pathlib import Path

from detector import config as cfg
from detector.commands._collector import GC_YOUNG
from detector.metrics import Metrics
from tests.integration.support import free_port, serving, shipped_engine


async def test_the_service_freezes_its_start_up_state_and_thaws_it_when_it_stops(
    tmp_path: Path,
) -> None:
    before = gc.get_threshold()
    overrides = {
        "http.listen": f"127.0.0.1:{free_port()}",
        "output": str(tmp_path / "chains.jsonl"),
        "outbox.path": str(tmp_path / "outbox.sqlite3"),
        "checkpoint.path": "",
    }
    config = cfg.load(environ={}, overrides=overrides)
    async with serving(config, shipped_engine(), Metrics()):
        assert gc.get_threshold() == (GC_YOUNG, *before[1:])
        assert gc.get_freeze_count() > 1000  # modules, rules, the engine: not walked again
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)
