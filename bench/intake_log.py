"""What the intake log costs live: audit events/s through ``POST /k8s-audit``, with and without.

One process: the real HTTP server and receivers on loopback, the queue drained by a task
that only counts (so the engine's cost does not hide the log's), ``--clients`` aiohttp
clients posting EventLists of ``--batch`` events as fast as they are answered. Rounds
alternate off / on; the log directory is on the same disk as the working directory::

    python -m bench.intake_log --events 100000 --batch 250 --clients 8 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import msgspec
import orjson

from detector.config import HttpConfig
from detector.delivery.intake import Intake
from detector.delivery.intake_log import IntakeLog
from detector.metrics import Metrics
from detector.pipeline import EventQueue
from detector.sources.http_server import HttpServer
from detector.sources.k8s_audit import K8sAuditReceiver, audit_body_events


def _batch(start: int, size: int) -> bytes:
    items = [
        {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": f"00000000-0000-0000-0000-{n:012d}", "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/shop/pods", "verb": "list",
            "user": {"username": "system:serviceaccount:shop:web"},
            "sourceIPs": ["10.0.0.7"], "objectRef": {"resource": "pods", "namespace": "shop"},
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": "2026-03-01T10:00:00.000000Z",
            "stageTimestamp": "2026-03-01T10:00:00.001000Z",
        }
        for n in range(start, start + size)
    ]  # fmt: skip
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})


async def _round(args: argparse.Namespace, log_dir: Path | None) -> float:
    metrics = Metrics()
    queue = EventQueue(100_000, metrics)
    intake_log = IntakeLog(log_dir, metrics) if log_dir is not None else None
    intake = Intake(queue, intake_log)
    intake.decodes(K8sAuditReceiver.name, audit_body_events)  # bodies logged, as in the service
    config = msgspec.structs.replace(HttpConfig(), listen="127.0.0.1:0")
    server = HttpServer(config, [K8sAuditReceiver(16 << 20)], intake, metrics)
    sources = [asyncio.create_task(server.run(queue.emitter("unused")))]
    if intake_log is not None:
        sources.append(asyncio.create_task(intake.run(queue.emitter(intake.name))))

    async def drain() -> None:
        while True:
            await queue.get()
            queue.done()

    drainer = asyncio.create_task(drain())
    while not server.ready() or not intake.ready():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    bodies = [_batch(n, args.batch) for n in range(0, args.events, args.batch)]
    url = f"http://127.0.0.1:{server.port}/k8s-audit"
    headers = {"Content-Type": "application/json"}

    async def client(mine: list[bytes], session: aiohttp.ClientSession) -> None:
        for body in mine:
            while True:
                async with session.post(url, data=body, headers=headers) as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.01)

    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        await asyncio.gather(
            *(client(bodies[i :: args.clients], session) for i in range(args.clients))
        )
        elapsed = time.perf_counter() - start
    for task in [*sources, drainer]:
        task.cancel()
    await asyncio.gather(*sources, drainer, return_exceptions=True)
    intake.close()
    return args.events / elapsed


async def _main(args: argparse.Namespace) -> None:
    off: list[float] = []
    on: list[float] = []
    for _ in range(args.rounds):
        off.append(await _round(args, None))
        with tempfile.TemporaryDirectory(dir=".") as directory:
            on.append(await _round(args, Path(directory)))
    print(
        f"without log: {statistics.median(off):,.0f} events/s  (rounds {[round(x) for x in off]})"
    )
    print(f"with log:    {statistics.median(on):,.0f} events/s  (rounds {[round(x) for x in on]})")
    print(f"cost: {1 - statistics.median(on) / statistics.median(off):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
