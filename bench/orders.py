"""The same stream in other arrival orders: disordered like real captures, and shuffled.

``generate.py`` writes ``stream.jsonl`` in event-time order. Real inputs are not: audit
events reach a log file or a webhook batch after the request they describe, and batches
from several API servers interleave, while Falco alerts come soon after the syscall.
From the ordered stream (same lines, same truth) this module writes:

``stream-disordered.jsonl``
    every audit line delayed by a uniform 0–:data:`AUDIT_DELAY_S` s of event time, Falco
    lines on time, written in arrival order: audit lines are up to 30 s out of order
    among themselves and against the alerts. Streamed through a heap that holds only
    the lines still in flight (≈ 30 s of events).
``stream-shuffled.jsonl``
    a uniform random permutation of all lines (no order at all), shuffled out of core:
    each line goes to one of several bucket files at random, then each bucket is
    shuffled in memory and appended (together a uniform permutation).

Both are seeded, so the same dataset always gives the same bytes.
"""

from __future__ import annotations

import heapq
import random
from pathlib import Path
from typing import Final

import orjson

from bench.dataset import chunks, time_ns

ORDERED: Final = "ordered"
ORDERS: Final = (ORDERED, "disordered", "shuffled")
AUDIT_DELAY_S: Final = 30.0
BUCKET_BYTES: Final = 64 << 20  # per in-memory shuffle of the out-of-core pass


def stream_name(order: str) -> str:
    return "stream.jsonl" if order == ORDERED else f"stream-{order}.jsonl"


def ensure_order(dataset: Path, order: str, seed: int = 7) -> Path:
    """The dataset's stream in ``order``, written from the ordered one if missing."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; known: {', '.join(ORDERS)}")
    path = dataset / stream_name(order)
    if not path.exists():
        ordered = dataset / stream_name(ORDERED)
        partial = path.with_suffix(".partial")
        writer = disorder if order == "disordered" else shuffle
        writer(ordered, partial, random.Random(seed))
        partial.replace(path)
    return path


def _arrival(line: bytes, rng: random.Random) -> tuple[int, int]:
    doc = orjson.loads(line)
    if "auditID" in doc:
        sent = time_ns(doc.get("requestReceivedTimestamp") or doc["stageTimestamp"])
        return sent, sent + int(rng.uniform(0, AUDIT_DELAY_S) * 1e9)
    sent = time_ns(doc["time"])
    return sent, sent


def disorder(ordered: Path, out: Path, rng: random.Random) -> None:
    """Write ``ordered``'s lines in arrival order (audit delayed, see the module docstring)."""
    heap: list[tuple[int, int, bytes]] = []
    seq = 0
    with out.open("wb", buffering=1 << 20) as handle:
        for chunk in chunks(ordered):
            for line in chunk:
                sent, arrives = _arrival(line, rng)
                heapq.heappush(heap, (arrives, seq, line))
                seq += 1
                # every later line is sent at or after ``sent``: what arrives by then is final
                while heap[0][0] <= sent:
                    handle.write(heapq.heappop(heap)[2])
        while heap:
            handle.write(heapq.heappop(heap)[2])


def shuffle(ordered: Path, out: Path, rng: random.Random) -> None:
    """Write a uniform random permutation of ``ordered``'s lines, out of core."""
    count = max(1, -(-ordered.stat().st_size // BUCKET_BYTES))
    buckets = [out.with_name(f"{out.name}.{i}") for i in range(count)]
    handles = [b.open("wb", buffering=1 << 20) for b in buckets]
    try:
        for chunk in chunks(ordered):
            for line in chunk:
                handles[rng.randrange(count)].write(line)
    finally:
        for handle in handles:
            handle.close()
    with out.open("wb", buffering=1 << 20) as handle:
        for bucket in buckets:
            lines = bucket.read_bytes().splitlines(keepends=True)
            rng.shuffle(lines)
            handle.writelines(lines)
            bucket.unlink()
