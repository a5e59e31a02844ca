"""CPU cost of the replay's reorder buffer per event, on ordered and disordered streams.

    python -m bench.reorder_cost [--events 200000] [--module PATH]

Streams of bare events (only the buffer is measured, not parsing): *ordered* (time order),
*disordered* (97 % of events up to 30 s late at 250 events/s, as audit logs and webhook
batches are: displaced by up to 7,500 positions, within the 10,000-event buffer) and
*late-beyond-buffer* (a tenth of the events up to an hour late: more than the buffer
holds, what makes the replay sort a file on disk). Batches of 1,090 events, as the replay
hands them over. ``--module`` loads another ``_reorder.py`` (e.g. an older commit's,
``git show REV:detector/commands/_reorder.py > /tmp/old.py``) to compare. Prints one line
per stream: µs per event, best of 5.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import time
from pathlib import Path
from typing import Any

from correlation.event import Event

BATCH = 1_090
RATE = 250  # events per second of event time
S = 1_000_000_000


def streams(count: int) -> dict[str, list[Event]]:
    rng = random.Random(7)
    base = [n * S // RATE for n in range(count)]

    def late(share: float, max_s: float) -> list[Event]:
        keyed = [
            (t + (int(rng.uniform(0, max_s) * S) if rng.random() < share else 0), t) for t in base
        ]
        keyed.sort()
        return [Event(time_ns=t, source="k8s_audit", id=str(n)) for n, (_, t) in enumerate(keyed)]

    return {
        "ordered": [Event(time_ns=t, source="k8s_audit", id=str(n)) for n, t in enumerate(base)],
        "disordered": late(0.97, 30.0),
        "late-beyond-buffer": late(0.1, 3600.0),
    }


def cost(reorder_type: Any, events: list[Event]) -> float:
    """Best of five: µs per event to push every batch and drain."""
    best = float("inf")
    for _ in range(5):
        buffer = reorder_type(10_000)
        start = time.process_time()
        for at in range(0, len(events), BATCH):
            buffer.push(events[at : at + BATCH])
        buffer.drain()
        best = min(best, time.process_time() - start)
    return best / len(events) * 1e6


def load(module: Path | None) -> Any:
    if module is None:
        from detector.commands._reorder import Reorder

        return Reorder
    spec = importlib.util.spec_from_file_location("reorder_under_test", module)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded.Reorder


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reorder_cost")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--module", type=Path, default=None)
    args = parser.parse_args()
    reorder_type = load(args.module)
    for name, events in streams(args.events).items():
        print(f"{name:20} {cost(reorder_type, events):6.2f} µs/event")


if __name__ == "__main__":
    main()
