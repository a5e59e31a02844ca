"""``detector worker``: one member of the correlation workers' consumer group.

Configured like ``detector run`` (``--config FILE``, ``DETECTOR_*`` variables): the
``engine:`` section sets every partition's engine, ``worker:`` the group and topics;
before anything connects, the files and variables its ``worker:`` section names and the
rules are checked as ``detector check`` checks them (exit 2; :data:`SECTIONS`).
SIGTERM/SIGINT: every owned partition commits a last snapshot with its offset, then
the member leaves the group (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Callable
from typing import Final

import msgspec
from aiohttp import web

from correlation.engine import Engine, EngineConfig
from correlation.rules.model import ChainRule
from detector import config as cfg
from detector.commands import Command, register
from detector.commands.run import build_engine_config
from detector.errors import UsageError
from detector.logging import configure as configure_logging
from detector.logging import get_logger
from detector.metrics import CONTENT_TYPE
from detector.preflight import checked, engine_rules
from detector.worker.member import Member
from detector.worker.metrics import registry_for, render

log = get_logger("detector.worker")
# What a worker uses of the file it shares with `detector stitch` (and often `run`): its
# files, variables and rules are checked as `detector check` checks them; the outbox and
# sinks are the stitcher's (a worker pod has no volume for them).
SECTIONS: Final = frozenset({"worker", "engine", "log"})


def configure(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--config", metavar="FILE", default=os.environ.get("DETECTOR_CONFIG"), help="YAML")
    add("--rules", action="append", metavar="PATH", help="extra rule file/dir (repeatable)")


def run(args: argparse.Namespace) -> int:
    overrides = {"engine.rules": list(args.rules)} if args.rules else {}
    config = checked(args.config, overrides=overrides, sections=SECTIONS)  # exit 2
    if config.worker is None:
        raise UsageError("detector worker needs a `worker:` section (bootstrap_servers, topics)")
    rules = engine_rules(config.engine)
    configure_logging(config.log.level)  # only once the start is sure: it is process-wide
    member = Member(config.worker, engines(rules, partition_engine_config(config)))
    asyncio.run(serve(member))
    return 0


def partition_engine_config(config: cfg.Config) -> EngineConfig:
    """``engine.*`` with the relays' idle timeout of ``worker.relay_idle_s``."""
    assert config.worker is not None  # noqa: S101 - run() checked it
    engine = build_engine_config(config.engine)
    idle_ns = int(config.worker.relay_idle_s * 1e9)
    watermarks = msgspec.structs.replace(engine.watermarks, idle_timeout_ns=idle_ns)
    return msgspec.structs.replace(engine, watermarks=watermarks)


def engines(rules: list[ChainRule], config: EngineConfig) -> Callable[[bytes | None], Engine]:
    """A fresh engine, or one restored from snapshot bytes."""

    def make(data: bytes | None) -> Engine:
        return Engine(rules, config) if data is None else Engine.restore(rules, config, data)

    return make


async def serve(member: Member) -> None:
    """Run the member until SIGTERM/SIGINT, then hand its partitions over cleanly."""
    runner = await _http(member) if member.config.listen else None
    try:
        await _serve(member)
    finally:
        if runner is not None:
            await runner.cleanup()


async def _http(member: Member) -> web.AppRunner:
    """``/healthz`` (the member's loop is alive) and ``/metrics`` on ``worker.listen``."""
    registry = registry_for(member)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok" if member.running else "stopped",
                            status=200 if member.running else 503)  # fmt: skip

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=render(registry), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = cfg.split_listen(member.config.listen)
    await web.TCPSite(runner, host, port).start()
    return runner


async def _serve(member: Member) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(member.run(), name="worker")
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # a crash: raise it
    await member.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    log.info("worker_stopped", aborts=member.aborts)


register(Command("worker", "one correlation worker of a Kafka consumer group", configure, run))
