"""``detector stitch``: the stage after the workers — incidents across partitions, sinks.

Configured like ``detector worker`` (the ``worker:`` section names the chains topic and
the group; the stitcher's group is ``<group_id>.stitcher``) plus the ``outbox:`` and
``sinks:`` of ``detector run`` (no sink: JSON lines to ``output``, as there). Run two
for failover: the chains topic has one partition, so one is active and the other takes
over. SIGTERM: stop reading, deliver
what the outbox holds within ``shutdown_grace_s``, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from typing import Final

from detector.commands import Command, register
from detector.commands.run import build_engine_config, build_output
from detector.errors import UsageError
from detector.logging import configure as configure_logging
from detector.metrics import Metrics
from detector.pipeline import Output
from detector.preflight import checked
from detector.worker.stitcher import Stitcher

# What the stitcher uses of the file it shares with the workers: the `worker:` section's
# Kafka files and variables, the outbox and the sinks (it loads no rules).
SECTIONS: Final = frozenset({"worker", "log", "outbox", "sinks", "output"})


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", default=os.environ.get("DETECTOR_CONFIG"), help="YAML"
    )


def run(args: argparse.Namespace) -> int:
    config = checked(args.config, sections=SECTIONS)  # as `detector check` (exit 2)
    if config.worker is None:
        raise UsageError("detector stitch needs a `worker:` section (bootstrap_servers, topics)")
    configure_logging(config.log.level)
    limits = build_engine_config(config.engine)
    delivery = build_output(config, Metrics())
    stitcher = Stitcher(
        config.worker, delivery, limits.incident_window_ns, limits.max_incident_entities
    )
    asyncio.run(serve(stitcher, delivery, config.shutdown_grace_s))
    return 0


async def serve(stitcher: Stitcher, delivery: Output, grace_s: float) -> None:
    """Stitch until SIGTERM/SIGINT, then drain the outbox within the grace period."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    deliver = asyncio.create_task(delivery.run(), name="delivery")
    stitch = asyncio.create_task(stitcher.run(), name="stitcher")
    await asyncio.wait(
        [stitch, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
    )
    stitch.cancel()
    await asyncio.gather(stitch, return_exceptions=True)
    await delivery.close(grace_s)
    await asyncio.gather(deliver, return_exceptions=True)


register(Command("stitch", "incidents across worker partitions, then the sinks", configure, run))
