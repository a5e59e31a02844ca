"""Workers as real processes on the real broker, a paced load played as relays do, an oracle.

* topics: events (6 partitions), chains-raw (1), state (6, compacted), fresh per test;
* workers: ``detector worker --config`` subprocesses (so SIGKILL/SIGSTOP are real);
* load: a generated stream (bench/generate.py), each Falco alert through its node's
  :class:`ContainerResolver`, batches split with the relay's own ``by_key``, sent with
  ``relay`` headers, and every relay's progress marker to every partition now and then
  — what the node and audit relays write. The last markers are an hour past the last
  event, so every open decision settles;
* oracle: one unpartitioned engine over the same events, advanced to the same point.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from bench.generate import Params, generate
from correlation.engine import Engine
from correlation.event import FALCO, Event
from correlation.rules import builtin_rules_paths, load_rules
from detector.parse import parse_line
from detector.relay import wire
from detector.relay.kafka import by_key
from detector.relay.route import ContainerResolver
from detector.worker import state

PARTITIONS = 6
HOUR_NS = 3600 * 1_000_000_000
REPO = Path(__file__).resolve().parents[3]


@dataclass
class Topics:
    events: str
    chains: str
    state: str
    group: str


@dataclass
class Cluster:
    """The topics, worker processes and their config of one test."""

    bootstrap: str
    tmp: Path
    topics: Topics = field(
        default_factory=lambda: Topics(*(f"{n}-{uuid.uuid4().hex[:8]}" for n in "ecsg"))
    )
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    max_records: int = 200  # small rounds: more transactions, more interleaving in the tests
    listening: dict[int, str] = field(default_factory=dict)  # worker index -> its /metrics

    async def create_topics(self, events: bool = True) -> None:
        """The three topics (``events=False``: an existing events topic is reused)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            compact = {"cleanup.policy": "compact"}
            topics = [
                NewTopic(self.topics.chains, 1, 1),
                NewTopic(self.topics.state, PARTITIONS, 1, topic_configs=compact),
            ]
            if events:
                topics.append(NewTopic(self.topics.events, PARTITIONS, 1))
            await admin.create_topics(topics)
        finally:
            await admin.close()

    def config_file(self, listen: str = "") -> Path:
        path = self.tmp / f"worker{listen.replace(':', '-')}.yaml"
        path.write_text(yaml.safe_dump({
            "log": {"level": "warning"},
            "worker": {
                "bootstrap_servers": [self.bootstrap],
                "topic": self.topics.events,
                "group_id": self.topics.group,
                "chains_topic": self.topics.chains,
                "state_topic": self.topics.state,
                "snapshot_interval_s": 1.0,
                "session_timeout_s": 6.0,
                "max_records": self.max_records,
                "listen": listen,
            },
        }), encoding="utf-8")  # fmt: skip
        return path

    def start_worker(self, listen: str = "") -> subprocess.Popen[bytes]:
        n = len(self.workers)
        with (self.tmp / f"worker-{n}.log").open("wb") as log:  # the child keeps its own fd
            process = subprocess.Popen(  # noqa: S603 - fixed argv
                [sys.executable, "-m", "detector.cli", "worker", "--config",
                 str(self.config_file(listen))],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )  # fmt: skip
        if listen:
            self.listening[n] = f"http://{listen}/metrics"
        self.workers.append(process)
        return process

    def live(self) -> int:
        """How many worker processes are running (SIGSTOPped ones included)."""
        return sum(process.poll() is None for process in self.workers)

    def stop_all(self) -> list[int]:
        """SIGTERM (graceful hand-over) every live worker; their exit codes."""
        for process in self.workers:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        codes = []
        for process in self.workers:
            try:
                codes.append(process.wait(timeout=30))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        return codes

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.tmp.glob("*.log"))


def stream(tmp: Path, events: int, chains: int) -> list[Event]:
    """A generated stream with ``chains`` planted chains (all six kinds), parsed."""
    out = tmp / "stream"
    generate(out, Params(events=events, pods=300, chains=chains, rate=25.0, gap_s=20.0))
    return [
        e for line in (out / "stream.jsonl").read_bytes().splitlines() for e in parse_line(line)
    ]


def oracle(events: list[Event]) -> tuple[list[str], int]:
    """Chain ids and late count of one engine over all events, advanced like the workers."""
    engine = Engine(load_rules(builtin_rules_paths()))
    ids = [c.id for e in events for c in engine.process(e)]
    ids += [c.id for c in engine.progress("", events[-1].time_ns + HOUR_NS)]
    return ids, engine.stats().late


def relay_of(event: Event) -> str:
    return f"node-{event.actor.node}" if event.source == FALCO else "audit"


def messages(events: list[Event], batch: int = 100) -> Iterator[tuple[str, str, list[Event]]]:
    """(relay, key, events) in the order relays would send them: every ``batch`` events
    of the stream (a linger) each relay sends what it has."""
    nodes: dict[str, ContainerResolver] = defaultdict(lambda: ContainerResolver(2.0, 1000, 10_000))
    pending: dict[str, list[Event]] = defaultdict(list)
    for n, event in enumerate(events, 1):
        relay = relay_of(event)
        pending[relay].extend(nodes[relay].admit(event) if event.source == FALCO else [event])
        if n % batch == 0:
            for name, resolver in nodes.items():
                pending[name].extend(resolver.expired(resolver.newest_ns))
            yield from _flush(pending)
    for name, resolver in nodes.items():
        pending[name].extend(resolver.drain())
    yield from _flush(pending)


def _flush(pending: dict[str, list[Event]]) -> Iterator[tuple[str, str, list[Event]]]:
    for relay in sorted(pending):
        for key, group in by_key(pending[relay]).items():
            yield relay, key, group
    pending.clear()


async def load(
    bootstrap: str,
    topic: str,
    events: list[Event],
    rate: float,
    on_progress: Any = None,
) -> None:
    """Produce ``events`` at about ``rate`` events/s, each message acknowledged (resent
    until it is, as a relay does); ``on_progress(fraction)`` is awaited between rounds
    (fault injection points)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        newest: dict[str, int] = {}
        started, sent, total = time.monotonic(), 0, len(events)
        round_: list[_Message] = []
        for relay, key, group in messages(events):
            round_.append((key.encode(), wire.encode(group), relay, wire.SCHEMA, None))
            newest[relay] = max(newest.get(relay, 0), max(e.time_ns for e in group))
            sent += len(group)
            if len(round_) >= 200:
                await _deliver(producer, topic, round_ + _marks(newest))
                round_ = []
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
                if on_progress is not None:
                    await on_progress(sent / total)
        end = events[-1].time_ns + HOUR_NS
        await _deliver(producer, topic, round_ + _marks(dict.fromkeys(newest, end)))
    finally:
        await producer.stop()


_Message = tuple[bytes | None, bytes, str, str, int | None]  # key, value, relay, schema, partition


def _marks(newest: dict[str, int]) -> list[_Message]:
    return [
        (None, wire.encode_progress(relay, time_ns), relay, wire.PROGRESS_SCHEMA, p)
        for relay, time_ns in newest.items()
        for p in range(PARTITIONS)
    ]


async def _deliver(producer: AIOKafkaProducer, topic: str, batch: list[_Message]) -> None:
    """Send a round and wait for every acknowledgement; what failed goes again, in order."""
    while batch:
        futures = []
        for key, value, relay, schema, partition in batch:
            headers = [("schema", schema.encode()), ("relay", relay.encode())]
            try:
                futures.append(await producer.send(topic, value, key=key, partition=partition,
                                                   headers=headers))  # fmt: skip
            except Exception:  # noqa: BLE001 - broker restarting: a relay retries too
                break
        results = await asyncio.gather(*futures, return_exceptions=True)
        failed = next((i for i, r in enumerate(results) if isinstance(r, BaseException)), None)
        done = len(futures) if failed is None else failed
        batch = batch[done:]
        if batch:
            await asyncio.sleep(0.5)


async def committed_chains(
    bootstrap: str, topic: str, want: set[str], timeout_s: float
) -> list[str]:
    """Chain ids in the read_committed chains topic (with repeats) once ``want`` are seen
    and nothing new came for 1.5 s, or at the deadline."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
        isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    ids: list[str] = []
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            got = [dict(m.headers)["chain_id"].decode() for r in batch.values() for m in r]
            ids.extend(got)
            if got:
                quiet_since = time.monotonic()
            elif want <= set(ids) and time.monotonic() - quiet_since > 1.5:
                break
    finally:
        await consumer.stop()
    return ids


async def lag(bootstrap: str, topics: Topics) -> dict[int, int]:
    """End offset minus the group's committed offset, per partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=topics.group,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(topics.events, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: ends[tp] - ((await consumer.committed(tp)) or 0) for tp in tps}
    finally:
        await consumer.stop()


async def wait_caught_up(bootstrap: str, topics: Topics, timeout_s: float) -> dict[int, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        behind = await lag(bootstrap, topics)
        if not any(behind.values()) or time.monotonic() > deadline:
            return behind
        await asyncio.sleep(0.5)


async def group_state(bootstrap: str, group: str) -> tuple[str, int]:
    """The consumer group's state (``Stable``, ``PreparingRebalance``, ...) and how many
    members it has, as the group coordinator reports them (DescribeGroups); ``Unknown``
    while no coordinator answers (a fresh broker creates its offsets topic first)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    except KafkaError:
        return "Unknown", 0
    finally:
        await admin.close()
    _error, _group, state, _type, _protocol, members, *_ = response.groups[0]
    return state, len(members)


async def wait_stable(bootstrap: str, group: str, members: int, timeout_s: float) -> str:
    """Poll until the group is ``Stable`` with ``members`` members (a rebalance completed:
    every member holds its share); the last state seen, as ``"<state>/<members>"``.

    A worker process is only a member once it started, connected and joined, which takes
    seconds on a loaded machine: the tests wait on that condition, not on a fixed time.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        state, count = await group_state(bootstrap, group)
        if (state == "Stable" and count == members) or time.monotonic() > deadline:
            return f"{state}/{count}"
        await asyncio.sleep(0.25)


async def late_in_snapshots(bootstrap: str, topics: Topics) -> int:
    """Late events counted by the partitions' engines, from their last snapshots."""
    rules = load_rules(builtin_rules_paths())
    late = 0
    for p in range(PARTITIONS):
        found = await state.read({"bootstrap_servers": bootstrap}, TopicPartition(topics.state, p))
        if found is not None:
            late += Engine.restore(rules, None, found[1]).stats().late
    return late


async def scrape(url: str) -> dict[str, float]:
    """``/metrics`` of a worker as {name{labels}: value}."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def scrape_settled(url: str, timeout_s: float) -> dict[str, float]:
    """:func:`scrape` once the worker owns a partition and each has a watermark.

    A partition assigned by a late rebalance reads 0 (no lag known, no watermark) until
    its first restore or fetch, and a member whose assignment callback has not begun yet
    owns none; the gauges describe the member, not the group, so the test waits for that
    member to settle instead of reading it mid-assignment.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        metrics = await scrape(url)
        marks = [v for k, v in metrics.items() if "partition_watermark_seconds" in k]
        if (marks and all(marks)) or time.monotonic() > deadline:
            return metrics
        await asyncio.sleep(0.5)
