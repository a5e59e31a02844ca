"""Partition snapshots in a compacted Kafka topic: chunks plus a manifest.

Partition *p* of the events topic keeps its engine snapshot in partition *p* of the
state topic. One snapshot is written inside the partition's transaction, so it is
visible (read_committed) exactly when the chains and the input offset it goes with::

    offset  key   value
    1040    c/0   chunk 0 of snapshot seq 17
    1041    c/1   chunk 1
    1042    m     Manifest(seq 17, chunks 2, first 1040, input offset 88123, bytes)

Keys repeat, so compaction keeps only the newest snapshot (plus stale ``c/<i>`` of an
older, larger one, which a manifest never points at). The manifest is the last record
of its transaction and knows where its first chunk is, so a restore reads a window at
the end of the partition for the newest manifest, then only that snapshot's chunks:
its time and memory are bounded by one snapshot, not by the topic's history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

MANIFEST_KEY: Final = b"m"
_WINDOW: Final = 64  # records read back from the end per look for the newest manifest


class StateError(RuntimeError):
    """A snapshot the manifest names cannot be read back whole."""


class Manifest(msgspec.Struct, frozen=True, array_like=True):
    """What the newest snapshot of a partition is, and where it starts."""

    seq: int
    chunks: int
    first_offset: int
    input_offset: int  # the next events-topic offset the snapshot has not seen
    size: int


class Chunk(msgspec.Struct, frozen=True, array_like=True):
    seq: int
    index: int
    data: bytes


_ENC: Final = msgspec.msgpack.Encoder()
_MANIFEST: Final = msgspec.msgpack.Decoder(Manifest)
_CHUNK: Final = msgspec.msgpack.Decoder(Chunk)


def split(data: bytes, size: int) -> list[bytes]:
    """``data`` in pieces of at most ``size`` bytes (at least one piece)."""
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


async def write(
    producer: AIOKafkaProducer,
    tp: TopicPartition,
    seq: int,
    data: bytes,
    input_offset: int,
    chunk_bytes: int,
) -> Manifest:
    """Send one snapshot into the producer's open transaction; returns its manifest."""
    pieces = split(data, chunk_bytes)
    first = -1
    for index, piece in enumerate(pieces):
        key = f"c/{index}".encode()
        sent = await producer.send(
            tp.topic, _ENC.encode(Chunk(seq, index, piece)), key=key, partition=tp.partition
        )
        metadata = await sent
        if index == 0:
            first = metadata.offset
    manifest = Manifest(seq, len(pieces), first, input_offset, len(data))
    await (await producer.send(tp.topic, _ENC.encode(manifest), key=MANIFEST_KEY,
                               partition=tp.partition))  # fmt: skip
    return manifest


async def read(options: dict[str, Any], tp: TopicPartition) -> tuple[Manifest, bytes] | None:
    """The newest committed snapshot of ``tp`` (None when there is none)."""
    consumer = AIOKafkaConsumer(
        **options, isolation_level="read_committed", enable_auto_commit=False,
        auto_offset_reset="earliest", group_id=None,
    )  # fmt: skip
    await consumer.start()
    try:
        consumer.assign([tp])
        start = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        manifest = await _newest_manifest(consumer, tp, start, end)
        if manifest is None:
            return None
        return manifest, await _chunks(consumer, tp, manifest, end)
    finally:
        await consumer.stop()


async def _newest_manifest(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int
) -> Manifest | None:
    """Look back from the end in growing windows for the last manifest record."""
    window = _WINDOW
    upper = end
    while upper > start:
        lower = max(start, upper - window)
        found = [r for r in await _records(consumer, tp, lower, upper) if r.key == MANIFEST_KEY]
        if found:
            return _MANIFEST.decode(found[-1].value)
        upper, window = lower, window * 2
    return None


async def _chunks(
    consumer: AIOKafkaConsumer, tp: TopicPartition, manifest: Manifest, end: int
) -> bytes:
    pieces: dict[int, bytes] = {}
    for record in await _records(consumer, tp, manifest.first_offset, end):
        if record.key == MANIFEST_KEY:
            continue
        chunk = _CHUNK.decode(record.value)
        if chunk.seq == manifest.seq:
            pieces[chunk.index] = chunk.data
        if len(pieces) == manifest.chunks:
            break
    if len(pieces) != manifest.chunks:
        raise StateError(
            f"{tp}: snapshot {manifest.seq} has {len(pieces)}/{manifest.chunks} chunks"
        )
    data = b"".join(pieces[i] for i in range(manifest.chunks))
    if len(data) != manifest.size:
        raise StateError(f"{tp}: snapshot {manifest.seq} is {len(data)} bytes, not {manifest.size}")
    return data


async def _records(
    consumer: AIOKafkaConsumer, tp: TopicPartition, lower: int, upper: int
) -> Sequence[Any]:
    """Committed records of ``tp`` with ``lower <= offset < upper`` (markers skipped)."""
    consumer.seek(tp, lower)
    out: list[Any] = []
    while True:
        batch = await consumer.getmany(tp, timeout_ms=1000)
        records = batch.get(tp, [])
        out.extend(r for r in records if r.offset < upper)
        position = await consumer.position(tp)
        if position >= upper or (not records and position >= await _last_stable(consumer, tp)):
            return out


async def _last_stable(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    return int((await consumer.end_offsets([tp]))[tp])
