"""``detector check [--config FILE] [--rules PATH...]``: validate without starting.

Loads everything ``detector run`` would load at start — the config keys (file, then
``DETECTOR_*`` variables), every file a key names (certificates and keys, CA bundles,
secret files, rule YAML, the allowlist), the variables ``*_env`` keys name, and every
sink as it would be built — and reports each problem on its own line on stderr, key
first (see :mod:`detector.preflight`), exit 2. Nothing is started, bound or connected.
With no problem it prints one line on stdout and exits 0. ``detector worker`` and
``detector stitch`` run the same checks at their start, each on the sections it uses
(their ``SECTIONS``); a ``worker:`` section is named on that line.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from detector.commands import Command, register
from detector.preflight import checked, engine_rules


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", default=os.environ.get("DETECTOR_CONFIG"),
        help="YAML config (default: $DETECTOR_CONFIG; none = defaults + environment)",
    )  # fmt: skip
    parser.add_argument(
        "--rules", action="append", metavar="PATH",
        help="extra rule file/dir, as `detector run --rules` (repeatable)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {"engine.rules": list(args.rules)} if args.rules else {}
    config = checked(args.config, overrides=overrides)  # ConfigError: the CLI prints, exit 2
    if config.mode == "relay":  # no engine and no sinks: events go to the correlator
        print(f"ok: {args.config or 'defaults'}: mode relay via {config.relay.transport}")
        return 0
    rules = engine_rules(config.engine)
    sinks = ", ".join(sink.name for sink in config.effective_sinks)  # named at decoding
    worker = config.worker  # `detector worker` and `detector stitch` read the same file
    joins = f"; worker: group {worker.group_id}, topic {worker.topic}" if worker else ""
    name = args.config or "defaults"
    print(f"ok: {name}: mode correlate, {len(rules)} rules, sinks: {sinks}{joins}")
    return 0


register(Command("check", "validate the configuration, its files and rules; start nothing",
                 configure, run))  # fmt: skip
