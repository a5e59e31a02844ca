"""Throughput of ``detector worker``: one worker and three, over the same preloaded topic.

    nice .venv/bin/python -m bench.scaleout --events 100000 --workers 1,3 --max-records 500

Starts a broker (scripts/kafka/broker.py), generates a stream (bench/generate.py, 24
planted chains), writes it once as the relays would (tests/integration/scaleout/
harness.py: node-side resolution, namespace keys, progress markers) to a 6-partition
topic, then for each worker count starts that many ``detector worker`` processes in a
fresh group and times until the group's committed offsets reach the end offsets. The
time includes process start and the group join; events/s counts the events in the
topic (copies included). Prints one line per run, and checks every chain came out once.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from tests.integration.conftest import _load_broker_module
from tests.integration.scaleout import harness


async def _run(
    bootstrap: str, tmp: Path, events_topic: str, workers: int, want: set[str], records: int
) -> str:
    cluster = harness.Cluster(bootstrap, Path(tempfile.mkdtemp(dir=tmp)), max_records=records)
    cluster.topics.events = events_topic
    await cluster.create_topics(events=False)
    started = time.monotonic()
    for _ in range(workers):
        cluster.start_worker()
    try:
        behind = await harness.wait_caught_up(bootstrap, cluster.topics, 600)
        elapsed = time.monotonic() - started
        found = await harness.committed_chains(bootstrap, cluster.topics.chains, want, 30)
    finally:
        cluster.stop_all()
    ok = sorted(found) == sorted(want) and not any(behind.values())
    return f"{workers} worker(s): caught up in {elapsed:.1f} s, chains {'ok' if ok else 'WRONG'}"


async def main_async(events: int, counts: list[int], records: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    broker = _load_broker_module().KafkaBroker(tmp / "kafka")
    broker.start()
    try:
        stream = harness.stream(tmp, events, 24)
        want, _ = harness.oracle(stream)
        cluster = harness.Cluster(broker.bootstrap, tmp)
        await cluster.create_topics()
        await harness.load(broker.bootstrap, cluster.topics.events, stream, rate=1e9)
        copies = sum(len(group) for _, _, group in harness.messages(stream))
        for workers in counts:
            line = await _run(
                broker.bootstrap, tmp, cluster.topics.events, workers, set(want), records
            )
            seconds = float(line.split("caught up in ")[1].split(" s")[0])
            print(f"{line}; {copies / seconds:,.0f} events/s ({copies} events)", flush=True)
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", default="1,3")
    parser.add_argument("--max-records", type=int, default=500, help="worker.max_records")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    asyncio.run(main_async(args.events, counts, args.max_records))


if __name__ == "__main__":
    main()
