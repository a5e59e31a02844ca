"""Live intake: audit events per CPU second of ``detector run`` behind ``POST /k8s-audit``.

    nice -n 10 python -m bench.live_intake [--events 200000] [--batch 250] [--clients 4]
                                           [--rounds 5] [--log off,on] [--profile DIR]

Starts the real service (``python -m detector.cli run``: HTTP server, receivers, queue,
engine with the shipped rules, checkpoint, delivery) on loopback, once per round and
intake-log setting, and posts ``--events`` audit events as ``EventList`` batches of
``--batch`` items from ``--clients`` concurrent aiohttp clients, each on its own
connection, as fast as they are answered (a 429 or 503 is retried after 10 ms, and
counted).

The traffic is the benchmark's cluster noise (:mod:`bench.noise`, written through
:mod:`synthetic`): kubelets, controllers, applications with bound tokens, Prometheus,
people and CI, stamped with event times of now (a pushed input's events are judged by
the receiving clock, so old ones would be late and cheap). Its first ``--warmup``
events are posted before the measurement starts.

Measured per run: the server process's CPU time (user + system, every thread, from
``/proc``) from the first timed POST until the engine has taken the last event
(``detector_events_in_total`` complete and ``detector_queue_depth`` 0, polled every
0.2 s), divided by the events: CPU µs per event, and its inverse, events per CPU second
(= per core), and the part of it spent in the kernel (socket I/O, the log's writes and
fsyncs). Wall-clock events/s is printed too, but the clients share the machine's
cores with the server, so it is not the figure to compare; how much they took over the
same span (this process's CPU time over the wall time, in cores) is printed beside it.
``--log on`` is the default service (intake write-ahead log, one fsync per batch group,
before the 2xx);
``--log off`` sets ``intake_log.enabled: false`` with the same checkpoint. Runs of the
two settings alternate; medians over ``--rounds``.

``--profile DIR`` runs the server under pyinstrument instead (one round per setting;
its CPU figures then include the profiler) and writes DIR/<setting>.txt.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.cluster import Cluster
from bench.noise import Noise
from synthetic import audit
from synthetic.times import micros
from tests.integration.support import free_port, wait_ready  # run from a checkout

JSON = {"Content-Type": "application/json"}
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One server run: what it cost and what it said."""

    log: str
    events: int
    cpu_s: float
    sys_s: float  # of cpu_s, in the kernel (socket, log writes, fsync)
    wall_s: float
    refused: int
    late: float
    clients_s: float = 0.0  # CPU of this process (the clients) over the same span

    @property
    def client_cores(self) -> float:
        """How much of the machine the clients took meanwhile (cores)."""
        return self.clients_s / self.wall_s

    @property
    def us_per_event(self) -> float:
        return self.cpu_s / self.events * 1e6

    @property
    def per_cpu_s(self) -> float:
        return self.events / self.cpu_s

    @property
    def per_wall_s(self) -> float:
        return self.events / self.wall_s


def noise_docs(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` audit events of the cluster noise (no Falco alerts)."""
    rng = random.Random(seed)
    stream = Noise(Cluster(rng, 300, 12), rng, falco_ratio=0.0).stream(0, 1_000)
    return [doc for _, (_, doc) in zip(range(count), stream, strict=False)]


# Stand-ins for the two timestamps, as long as real ones: a body is stamped as it is sent.
RECEIVED, STAGE = micros(946_684_800 * 10**9), micros(946_684_800 * 10**9 + 1_000)


def bodies(docs: list[dict[str, Any]], batch: int) -> list[bytes]:
    """The docs as EventList bodies of ``batch`` items, with stand-in timestamps."""
    for doc in docs:
        doc["requestReceivedTimestamp"], doc["stageTimestamp"] = RECEIVED, STAGE
    items = [docs[first : first + batch] for first in range(0, len(docs), batch)]
    return [orjson.dumps(audit.event_list(part)) for part in items]


def stamped(body: bytes) -> bytes:
    """``body`` with event times of now: received 200 ms ago, stage reached 1 ms later
    (as the API server's webhook batches arrive; a constant delay, so none is late)."""
    now = time.time_ns() - 200_000_000
    body = body.replace(RECEIVED.encode(), micros(now).encode())
    return body.replace(STAGE.encode(), micros(now + 1_000_000).encode())


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user + system, system) CPU time of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user, system = int(fields[11]) / _TICK, int(fields[12]) / _TICK  # utime, stime (14, 15)
    return user + system, system


class Server:
    """``detector run`` in a temporary directory, with or without the intake log."""

    def __init__(self, log: str, profile: Path | None) -> None:
        self.log, self.profile = log, profile
        self.tmp = Path(tempfile.mkdtemp(prefix="live-intake-", dir=os.environ.get("TMPDIR")))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
        env |= {
            "DETECTOR_OUTBOX__PATH": str(self.tmp / "outbox.sqlite3"),
            "DETECTOR_CHECKPOINT__PATH": str(self.tmp / "engine.ckpt"),
            "DETECTOR_INTAKE_LOG__ENABLED": "true" if self.log == "on" else "false",
            "DETECTOR_LOG__LEVEL": "error",
        }
        command = [sys.executable]
        if self.profile is not None:
            self.profile.mkdir(parents=True, exist_ok=True)
            out = self.profile / f"{self.log}.txt"
            command += ["-m", "pyinstrument", "--show-all", "-o", str(out)]
        command += ["-m", "detector.cli", "run", "--listen", f"127.0.0.1:{self.port}",
                    "--output", str(self.tmp / "chains.jsonl")]  # fmt: skip
        stderr = (self.tmp / "detector.log").open("wb")
        self.process = await asyncio.create_subprocess_exec(*command, env=env, stderr=stderr)
        stderr.close()
        await wait_ready(self.url, 30.0)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


async def post_all(url: str, batches: list[bytes], clients: int) -> int:
    """Post every batch (``clients`` at a time, one connection each); the refusals seen
    (429, or 503 with Retry-After, each retried after 10 ms)."""
    refused = 0

    async def client(mine: list[bytes]) -> None:
        nonlocal refused
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            for body in mine:
                while True:
                    sent = stamped(body)
                    async with session.post(url, data=sent, headers=JSON) as response:
                        answer = await response.read()
                        if response.status == 200:
                            break
                        if response.status not in (429, 503):  # both say: retry later
                            raise RuntimeError(f"POST answered {response.status}: {answer!r}")
                    refused += 1
                    await asyncio.sleep(0.01)

    await asyncio.gather(*(client(batches[i::clients]) for i in range(clients)))
    return refused


async def metric_values(url: str) -> dict[str, float]:
    """The service's counters this bench reads (summed over labels)."""
    names = ("detector_events_in_total", "detector_queue_depth",
             "detector_engine_late_events_total")  # fmt: skip
    found = dict.fromkeys(names, 0.0)
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        for line in (await response.text()).splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in found:
                found[name] += float(line.rsplit(" ", 1)[1])
    return found


async def drained(url: str, expected: int) -> dict[str, float]:
    """Wait until the engine has taken ``expected`` events; the counters then."""
    while True:
        values = await metric_values(url)
        if values["detector_events_in_total"] >= expected and not values["detector_queue_depth"]:
            return values
        await asyncio.sleep(0.2)


async def one_run(args: argparse.Namespace, docs: list[dict[str, Any]], log: str) -> Run:
    async with Server(log, args.profile) as server:
        url = server.url + "/k8s-audit"
        warm, timed = docs[: args.warmup], docs[args.warmup :]
        await post_all(url, bodies(warm, args.batch), args.clients)
        await drained(server.url, len(warm))
        batches = bodies(timed, args.batch)
        (cpu, system), wall = cpu_seconds(server.pid), time.perf_counter()
        clients = time.process_time()
        refused = await post_all(url, batches, args.clients)
        values = await drained(server.url, len(docs))
        (cpu_end, system_end), wall = cpu_seconds(server.pid), time.perf_counter() - wall
        clients = time.process_time() - clients
        late = values["detector_engine_late_events_total"]
        return Run(
            log, len(timed), cpu_end - cpu, system_end - system, wall, refused, late, clients
        )


def rounds(args: argparse.Namespace) -> Iterator[str]:
    for _ in range(1 if args.profile else args.rounds):
        yield from args.log


async def main_async(args: argparse.Namespace) -> None:
    docs = noise_docs(args.warmup + args.events)
    runs: list[Run] = []
    for log in rounds(args):
        run = await one_run(args, docs, log)
        runs.append(run)
        print(
            f"log {log:3}: {run.per_cpu_s:9,.0f} events/CPU-s  {run.us_per_event:5.1f} µs/event "
            f"(kernel {run.sys_s / run.events * 1e6:4.1f})  "
            f"{run.per_wall_s:9,.0f} events/s wall  refused {run.refused}  late {run.late:.0f}  "
            f"clients {run.client_cores:.2f} cores",
            flush=True,
        )
    print(f"batch {args.batch}, {args.clients} clients, {args.events:,} events per run")
    for log in args.log:
        mine = [r for r in runs if r.log == log]
        per_cpu = statistics.median(r.per_cpu_s for r in mine)
        us = statistics.median(r.us_per_event for r in mine)
        wall = statistics.median(r.per_wall_s for r in mine)
        print(
            f"median log {log:3}: {per_cpu:9,.0f} events/CPU-s  {us:5.1f} µs/event  "
            f"{wall:9,.0f} events/s wall  ({len(mine)} runs)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="timed events per run")
    parser.add_argument("--warmup", type=int, default=20_000, help="events before timing")
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--log", type=lambda s: s.split(","), default=["off", "on"])
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    if not set(args.log) <= {"off", "on"}:
        parser.error("--log: off, on or off,on")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
