"""Live chain latency: traffic played against ``detector run`` as it happens.

    python -m bench.live_latency [--duration 120] [--audit-rate 1000] [--chains-every 1.5]

Starts ``detector run`` (HTTP receivers on loopback, chains to a file) and plays, with
event times = now:

* audit noise at ``--audit-rate`` events/s, one EventList POST every 50 ms from the
  "API server" (127.0.0.1);
* Falco noise from three "nodes", each its own sender address (127.0.0.2-4, so each is
  its own input), 10 alerts/s each, one alert per POST as ``http_output`` sends them;
* every ``--chains-every`` seconds one planted attack, the six chain kinds in turn
  (bench/plant.py, steps 0.5 s apart), each step posted at its own time by the node of
  its pod or the API server.

Latency of a chain = the moment its record appears in the output file (polled every
5 ms) minus the moment the POST carrying its last evidence event returned. Prints the
distribution per rule and overall (p50, p90, p99, max) and the detector's own
``detector_chain_latency_seconds`` view. A benchmark, not a test: numbers depend on the
machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.cluster import Cluster
from bench.noise import Noise
from bench.plant import KINDS, Planter
from correlation.chain import rfc3339
from tests.integration.support import free_port, wait_ready  # run from a checkout

NODES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
JSON = {"Content-Type": "application/json"}
S = 1_000_000_000


class Player:
    """The senders: one session per source address, and when each evidence POST returned."""

    def __init__(self, url: str, cluster: Cluster, rng: random.Random) -> None:
        self.url, self.cluster, self.rng = url, cluster, rng
        self.sessions: dict[str, aiohttp.ClientSession] = {}
        self.returned: dict[int, float] = {}  # evidence time (µs) -> when its POST returned (s)
        self.posts = 0
        self.events = {"audit": 0, "falco": 0}

    async def __aenter__(self) -> Player:
        for address in ("127.0.0.1", *NODES):
            connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=8)
            self.sessions[address] = aiohttp.ClientSession(connector=connector)
        return self

    async def __aexit__(self, *_: object) -> None:
        for session in self.sessions.values():
            await session.close()

    async def post(self, address: str, path: str, doc: Any) -> None:
        session = self.sessions[address]
        async with session.post(self.url + path, data=orjson.dumps(doc), headers=JSON) as r:
            await r.read()
            if r.status != 200:
                print(f"POST {path} from {address}: {r.status}", file=sys.stderr)
        self.posts += 1

    async def audit(self, docs: list[dict[str, Any]]) -> None:
        body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": docs}
        await self.post("127.0.0.1", "/k8s-audit", body)
        self.events["audit"] += len(docs)

    async def falco(self, doc: dict[str, Any]) -> None:
        await self.post(self.node_of(doc), "/falco", doc)
        self.events["falco"] += 1

    def node_of(self, doc: dict[str, Any]) -> str:
        name = str(doc.get("output_fields", {}).get("k8s.pod.name", ""))
        return NODES[sum(name.encode()) % len(NODES)]


async def audit_noise(player: Player, rate: float, until: float) -> None:
    noise = Noise(player.cluster, random.Random(1), falco_ratio=0.0)
    per_post = max(1, int(rate / 20))
    while time.time() < until:
        now = time.time_ns()
        docs = [noise_doc(noise, now - (per_post - i) * S // int(rate)) for i in range(per_post)]
        await player.audit(docs)
        await asyncio.sleep(max(0.0, 0.05 - (time.time_ns() - now) / S))


def noise_doc(noise: Noise, time_ns: int) -> dict[str, Any]:
    return next(noise.stream(time_ns - 1, 1))[1]


async def falco_noise(player: Player, node: str, until: float) -> None:
    noise = Noise(player.cluster, random.Random(hash(node) & 0xFFFF), falco_ratio=1.0)
    while time.time() < until:
        doc = noise_doc(noise, time.time_ns())
        await player.post(node, "/falco", doc)
        player.events["falco"] += 1
        await asyncio.sleep(0.1)


async def attacks(player: Player, every_s: float, gap_s: float, until: float) -> int:
    planter = Planter(player.cluster, player.rng, gap_s)
    planted, tasks = 0, []
    while time.time() + 4 * gap_s < until:
        start = time.time_ns() + S // 10
        docs, _ = planter.plant(KINDS[planted % len(KINDS)], start, planted // len(KINDS))
        tasks.append(asyncio.create_task(play_chain(player, docs)))
        planted += 1
        await asyncio.sleep(every_s)
    await asyncio.gather(*tasks)
    return planted


async def play_chain(player: Player, docs: list[tuple[int, dict[str, Any]]]) -> None:
    """Post each step when its time comes, stamped with that time."""
    for time_ns, doc in sorted(docs, key=lambda item: item[0]):
        await asyncio.sleep(max(0.0, (time_ns - time.time_ns()) / S))
        if "rule" in doc:
            await player.falco(doc)
        else:
            await player.audit([doc])
        player.returned[time_ns // 1000] = time.time()  # records carry µs


Seen = dict[str, tuple[float, dict[str, Any]]]  # chain id -> (when seen, record)


def read_new(output: Path, offset: int, seen: Seen) -> int:
    """Record the complete lines after ``offset`` with the time they were seen."""
    if not output.exists():
        return offset
    with output.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    now = time.time()
    for line in data[:end].splitlines():
        record = orjson.loads(line)
        seen.setdefault(record["id"], (now, record))
    return offset + end


async def watch(output: Path, seen: Seen, stop: asyncio.Event) -> None:
    offset = 0
    while not stop.is_set():
        offset = read_new(output, offset, seen)  # a local file, read in microseconds
        await asyncio.sleep(0.005)


def last_evidence_us(record: dict[str, Any]) -> int:
    from detector.parse.timestamps import rfc3339_ns

    return max(rfc3339_ns(step["time"]) for step in record["steps"]) // 1000


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(seen: Seen, returned: dict[int, float]) -> list[str]:
    by_rule: dict[str, list[float]] = {}
    missing = 0
    for when, record in seen.values():
        posted = returned.get(last_evidence_us(record))
        if posted is None:
            missing += 1  # a chain of noise alone would show here (none expected)
            continue
        by_rule.setdefault(record["rule"], []).append(when - posted)
    every = [v for values in by_rule.values() for v in values]
    lines = [f"{'rule':24} {'chains':>6} {'p50 s':>7} {'p90 s':>7} {'p99 s':>7} {'max s':>7}"]
    for rule, values in sorted(by_rule.items()) + [("all", every)]:
        if values:
            lines.append(
                f"{rule:24} {len(values):6d} {statistics.median(values):7.3f} "
                f"{quantile(values, 0.9):7.3f} {quantile(values, 0.99):7.3f} {max(values):7.3f}"
            )
    if missing:
        lines.append(f"chains whose last evidence was not a planted step: {missing}")
    return lines


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="live-latency-"))
    port, output = free_port(), tmp / "chains.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    env |= {
        "DETECTOR_OUTBOX__PATH": str(tmp / "outbox.sqlite3"),
        "DETECTOR_CHECKPOINT__PATH": "",
        "DETECTOR_LOG__LEVEL": "info",
    }
    log = (tmp / "detector.log").open("wb")
    detector = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "detector.cli", "run", "--listen", f"127.0.0.1:{port}",
        "--output", str(output), env=env, stderr=log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url)
        rng = random.Random(7)
        cluster = Cluster(rng, 300, 12)
        seen: Seen = {}
        stop = asyncio.Event()
        until = time.time() + args.duration
        async with Player(url, cluster, rng) as player:
            watcher = asyncio.create_task(watch(output, seen, stop))
            background = [
                asyncio.create_task(audit_noise(player, args.audit_rate, until)),
                *(asyncio.create_task(falco_noise(player, node, until)) for node in NODES),
            ]
            planted = await attacks(player, args.chains_every, args.gap, until)
            await asyncio.gather(*background)
            await asyncio.sleep(3)  # the last chains
            stop.set()
            await watcher
            async with player.sessions["127.0.0.1"].get(url + "/metrics") as response:
                metrics = await response.text()
        rates = ", ".join(f"{k} {v / args.duration:,.0f}/s" for k, v in player.events.items())
        ended = rfc3339(time.time_ns())
        print(f"ended {ended}; {args.duration:.0f} s, {player.posts:,} POSTs, {rates}")
        print(f"planted {planted} chains, confirmed {len(seen)}")
        print("\n".join(report(seen, player.returned)))
        print(engine_view(metrics))
    finally:
        if detector.returncode is None:
            detector.send_signal(signal.SIGTERM)
            await detector.wait()
        log.close()
        print(f"detector log: {tmp / 'detector.log'}")
    return 0


def engine_view(metrics: str) -> str:
    """The detector's own histogram: event time of the last evidence to emission."""
    found = [
        line
        for line in metrics.splitlines()
        if line.startswith("detector_chain_latency_seconds_bucket")
        or line.startswith("detector_engine_late_events_total")
    ]
    return "detector metrics:\n  " + "\n  ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.live_latency")
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--audit-rate", type=float, default=1000.0)
    parser.add_argument("--chains-every", type=float, default=1.5)
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between a chain's steps")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
