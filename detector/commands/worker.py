"""``detector worker``: one member of the correlation workers' consumer group.

Configured like ``detector run`` (``--config FILE``, ``DETECTOR_*`` variables): the
``engine:`` section sets every partition's engine, ``worker:`` the group and topics;
the configuration and the rules are validated before anything connects (exit 2).
SIGTERM/SIGINT: every owned partition commits a last snapshot with its offset, then
the member leaves the group (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from correlation.engine import Engine, EngineConfig
from correlation.errors import RuleError
from correlation.rules import builtin_rules_paths, load_rules
from correlation.rules.model import ChainRule
from detector import config as cfg
from detector.commands import Command, register
from detector.commands.run import build_engine_config
from detector.errors import UsageError
from detector.logging import configure as configure_logging
from detector.logging import get_logger
from detector.worker.member import Member

log = get_logger("detector.worker")


def configure(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--config", metavar="FILE", default=os.environ.get("DETECTOR_CONFIG"), help="YAML")
    add("--rules", action="append", metavar="PATH", help="extra rule file/dir (repeatable)")


def run(args: argparse.Namespace) -> int:
    overrides = {"engine.rules": list(args.rules)} if args.rules else {}
    config = cfg.load(args.config, overrides=overrides)
    if config.worker is None:
        raise UsageError("detector worker needs a `worker:` section (bootstrap_servers, topics)")
    configure_logging(config.log.level)
    paths: list[str | Path] = [*config.engine.rules]
    if config.engine.builtin_rules:
        paths[:0] = builtin_rules_paths()
    try:
        rules = load_rules(paths)
    except RuleError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return 2
    member = Member(config.worker, engines(rules, build_engine_config(config.engine)))
    asyncio.run(serve(member))
    return 0


def engines(rules: list[ChainRule], config: EngineConfig) -> Callable[[bytes | None], Engine]:
    """A fresh engine, or one restored from snapshot bytes."""

    def make(data: bytes | None) -> Engine:
        return Engine(rules, config) if data is None else Engine.restore(rules, config, data)

    return make


async def serve(member: Member) -> None:
    """Run the member until SIGTERM/SIGINT, then hand its partitions over cleanly."""
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
