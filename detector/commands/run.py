"""``detector run``: the live service (sources → bounded queue → engine → sinks).

Configuration comes from ``--config FILE`` (or ``$DETECTOR_CONFIG``), then ``DETECTOR_*``
environment variables, then the flags below, each an alias of one config key (see
:data:`detector.config.FLAG_KEYS` and docs/configuration.md). ``--print-config`` shows
the effective configuration with secrets masked and exits.

In ``mode: correlate`` the engine starts from the checkpoint at ``checkpoint.path`` when
one exists (see :mod:`detector.delivery.checkpoint`), so chains open across a restart or a
``kill -9`` are still confirmed, with the same id.

Sources are built through one registry (:data:`SOURCE_BUILDERS`): each builder looks at
its part of the config and returns a source, or None when that source is off.
Exit codes: 0 after a clean SIGTERM/SIGINT shutdown, 2 for configuration or rule errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import yaml

from correlation.engine import Engine, EngineConfig
from correlation.interest import Interest
from correlation.watermarks import WatermarkConfig
from detector import config as cfg
from detector.allowlist import load_allowlist
from detector.commands import Command, register
from detector.commands._collector import quiet_collector
from detector.delivery.checkpoint import Checkpointer
from detector.delivery.intake import Intake
from detector.delivery.intake_log import IntakeLog, LogVersionError, legacy_covered
from detector.delivery.loops import Delivery
from detector.errors import UsageError
from detector.event_time import Alignment, input_disorder
from detector.incidents.service import IncidentService, RecordAnnotator
from detector.logging import configure as configure_logging
from detector.logging import get_logger
from detector.metrics import Metrics
from detector.parse import parse_falco
from detector.parse.early import EarlyReject
from detector.pipeline import Correlator, EventQueue, Output, Supervisor, Worker
from detector.preflight import checked, engine_rules
from detector.relay.settled import Settlement
from detector.relay.worker import RELAY_CHECKPOINT, NoOutput, Relay, build_relay
from detector.sinks.config import DeliveryConfig, add_arguments, apply_arguments
from detector.sources.base import Source
from detector.sources.events import EventsReceiver
from detector.sources.falco_grpc import FalcoGrpcSource
from detector.sources.falco_http import FalcoHttpReceiver
from detector.sources.files import FileTailer
from detector.sources.http_server import HttpServer, Readiness, Receiver
from detector.sources.k8s_audit import K8sAuditReceiver, audit_body_events
from detector.sources.kafka_events import KafkaEventsSource
from detector.web.pages import IncidentPages

log = get_logger("detector.run")


def configure(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--config", metavar="FILE", default=os.environ.get("DETECTOR_CONFIG"), help="YAML")
    add("--listen", metavar="HOST:PORT", help="HTTP receivers, health and metrics")
    add("--falco-grpc", metavar="ENDPOINT", help="unix:///run/falco/falco.sock or HOST:PORT")
    add("--grpc-ca", metavar="PEM", help="CA of Falco's gRPC server (TCP)")
    add("--grpc-cert", metavar="PEM", help="client certificate for Falco gRPC (TCP)")
    add("--grpc-key", metavar="PEM", help="client key for Falco gRPC (TCP)")
    add("--falco-file", metavar="PATH", help="tail a Falco JSON-lines file")
    add("--audit-file", metavar="PATH", help="tail an API server audit log")
    add("--rules", action="append", metavar="PATH", help="extra rule file/dir (repeatable)")
    add("--output", metavar="-|PATH", help="chains as JSON lines (default stdout)")
    add("--print-config", action="store_true", help="print the effective config and exit")
    add_arguments(parser)


def load_config(args: argparse.Namespace) -> cfg.Config:
    """File, environment, then the flags that were given; every problem found at once
    (:func:`detector.preflight.checked`: the files the keys name are checked too)."""
    overrides: dict[str, Any] = {
        key: getattr(args, flag)
        for flag, key in cfg.FLAG_KEYS.items()
        if getattr(args, flag, None) is not None
    }
    if args.rules:
        overrides["engine.rules"] = list(args.rules)

    def delivery_flags(config: cfg.Config) -> cfg.Config:
        try:
            sinks = DeliveryConfig(outbox=config.outbox, sinks=config.sinks)
            delivery = apply_arguments(args, sinks)
        except ValueError as exc:
            problem = cfg.Problem("delivery options", str(exc))
            raise cfg.ConfigError(str(problem), [problem]) from None
        return msgspec.structs.replace(config, outbox=delivery.outbox, sinks=delivery.sinks)

    return checked(args.config, overrides=overrides, adjust=delivery_flags)


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    if args.print_config:
        sys.stdout.write(yaml.safe_dump(cfg.masked(config), sort_keys=False))
        return 0
    configure_logging(config.log.level)
    if config.mode == "relay":  # no engine, no rules: events go to the correlator
        metrics = Metrics()
        asyncio.run(serve(config, None, metrics, build_relay_checkpointer(config, metrics)))
        return 0
    rules = engine_rules(config.engine)  # checked above; the loader's errors, if any
    engine_config = build_engine_config(config.engine)
    config = remember_long_enough(config, rules)
    metrics = Metrics()
    checkpointer = build_checkpointer(config, metrics)
    if checkpointer is None:
        engine = Engine(rules, engine_config)
    else:
        engine = checkpointer.restore(rules, engine_config)
    asyncio.run(serve(config, engine, metrics, checkpointer))
    return 0


def remember_long_enough(config: cfg.Config, rules: Sequence[Any]) -> cfg.Config:
    """``outbox.remember_delivered_s`` raised to the longest rule window plus the longest
    lateness: within that time a restored engine can decide a delivered chain again."""
    settings = config.engine
    lateness = max([settings.allowed_lateness_s, *settings.lateness_by_source.values()])
    needed = max((rule.within_ns for rule in rules), default=0) / 1e9 + lateness
    if config.outbox.remember_delivered_s >= needed:
        return config
    outbox = msgspec.structs.replace(config.outbox, remember_delivered_s=needed)
    return msgspec.structs.replace(config, outbox=outbox)


def build_engine_config(settings: cfg.EngineSettings) -> EngineConfig:
    """The engine's limits from ``engine.*``; a bad allowlist file is a UsageError (exit 2)."""
    return EngineConfig(
        lateness_ns=_ns(settings.allowed_lateness_s),
        watermarks=WatermarkConfig(
            max_skew_ns=_ns(settings.max_clock_skew_s),
            bound_floor_ns=_ns(settings.delivery_bound_floor_s),
            bound_ceiling_ns=_ns(settings.delivery_bound_ceiling_s),
            idle_timeout_ns=_ns(settings.idle_timeout_s),
        ),
        max_partials_per_key=settings.max_partials_per_key,
        max_partials_total=settings.max_partials_total,
        allowlist=load_allowlist(settings.allowlist or None),  # the loader replay uses
        max_pending=settings.max_pending,
        max_identities=settings.max_identities,
    )


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def build_relay_checkpointer(config: cfg.Config, metrics: Metrics) -> Checkpointer | None:
    """A relay's checkpoint (positions only) inside ``intake_log.path``, read now; None
    when the relay keeps no intake log."""
    settings = config.intake_log
    if not settings.enabled or not settings.path:
        return None
    checkpointer = Checkpointer(
        Path(settings.path) / RELAY_CHECKPOINT, config.checkpoint.interval_s, metrics
    )
    checkpointer.load()
    return checkpointer


def build_checkpointer(config: cfg.Config, metrics: Metrics) -> Checkpointer | None:
    """The engine's checkpointer, or None when ``checkpoint.path`` is empty (off)."""
    if not config.checkpoint.path:
        return None
    return Checkpointer(Path(config.checkpoint.path), config.checkpoint.interval_s, metrics)


async def serve(
    config: cfg.Config,
    engine: Any,
    metrics: Metrics | None = None,
    checkpointer: Checkpointer | None = None,
) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully (checkpointing ``engine``)."""
    metrics = metrics or Metrics()
    queue = EventQueue(config.buffer.max_events, metrics)
    incidents = build_incidents(config, metrics)
    output, worker = build_worker(config, engine, queue, metrics, incidents)
    if checkpointer is not None and isinstance(worker, Correlator):
        # open long-running requests travel with the engine state they were joined in
        checkpointer.attach("long_running", worker.stages)
    holder: list[Supervisor] = []

    def readiness() -> tuple[list[str], dict[str, str]]:
        not_ready = holder[0].not_ready() if holder else ["engine"]
        health = getattr(output, "health", None)  # relay mode's output has no sinks
        stopped, failing = health() if health is not None else ([], {})
        return not_ready + [f"sink:{name}" for name in stopped], failing

    early = early_reject(engine)
    intake = build_intake(config, queue, metrics, checkpointer, early)
    sources = build_sources(config, intake, metrics, readiness, early)
    if engine is not None:  # file tailers keep within max_drift_s of the others
        alignment = Alignment(engine, _ns(config.engine.max_drift_s))
        for source in sources:
            if isinstance(source, FileTailer):
                source.align = alignment.wait
    if not sources:
        raise UsageError("no source configured: give --listen, --falco-grpc or a file")
    if incidents is not None and config.incidents.pages:
        pages = IncidentPages(incidents, config.http.bearer_token)
        for source in sources:
            if isinstance(source, HttpServer):
                source.add_routes(pages.routes())
    if isinstance(worker, Relay) and checkpointer is not None and intake.logged:
        # covered = what the relay has settled (forwarded or given up), not what it took
        settlement = Settlement(intake.logs)
        intake.counted_by(settlement.logged)
        worker.keep(settlement, checkpointer)
    supervisor = Supervisor(
        sources,
        queue,
        worker,
        output,
        metrics,
        config.engine.idle_advance_s,
        config.shutdown_grace_s,
        None if checkpointer is None or engine is None else (checkpointer, engine),
    )
    holder.append(supervisor)
    if checkpointer is not None:
        if config.mode == "correlate":  # a relay's tailers save their offsets themselves
            checkpointer.followers.extend(s for s in sources if isinstance(s, FileTailer))
        if intake.logged:
            checkpointer.followers.append(intake)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, supervisor.stop.set)
    log.info(
        "detector_started",
        mode=config.mode,
        sources=[s.name for s in sources],
        rules=len(_rules(engine)),
    )
    try:
        with quiet_collector():  # start-up state frozen, young generation every 100k
            await supervisor.serve()
    finally:
        intake.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if incidents is not None:
            incidents.close()


def build_worker(
    config: cfg.Config,
    engine: Any,
    queue: EventQueue,
    metrics: Metrics,
    incidents: IncidentService | None = None,
) -> tuple[Output, Worker]:
    """Correlate mode: engine + Delivery. Relay mode: a relay and no chain output."""
    if config.mode == "relay":
        return NoOutput(), build_relay(config.relay, queue, metrics)
    output = build_output(config, metrics)
    settings = config.engine

    def disorder(source: str) -> int:
        return input_disorder(source, settings.lateness_by_source, settings.allowed_lateness_s)

    annotate = RecordAnnotator(config.cluster.name, incidents, config.incidents.public_url)
    return output, Correlator(engine, queue, output, metrics, disorder, annotate=annotate)


def build_incidents(config: cfg.Config, metrics: Metrics) -> IncidentService | None:
    """The incident store (correlate mode, ``incidents.path`` set), else None."""
    if config.mode != "correlate" or not config.incidents.path:
        return None
    return IncidentService(config.incidents, metrics)


def _rules(engine: Any) -> list[Any]:
    return list(getattr(engine, "rules", []))


def early_reject(engine: Any) -> EarlyReject | None:
    """What the parsers may reduce to time-only ticks, derived from the engine's own rules
    and allowlist (:mod:`detector.parse.early`, as ``detector replay`` does); None in
    relay mode (no engine: the correlator behind the relay decides)."""
    if engine is None:
        return None
    return EarlyReject(Interest(engine.rules, engine.config.allowlist))


# A builder gets the intake (the queue as pushed inputs see it; ``intake.queue`` itself)
# and the early reject its parsers go through (None: normalize everything).
Builder = Callable[[cfg.Config, Intake, Metrics, Readiness, EarlyReject | None], Source | None]


def _http(
    config: cfg.Config,
    intake: Intake,
    metrics: Metrics,
    ready: Readiness,
    early: EarlyReject | None,
) -> Source | None:
    if not config.http.listen:
        return None
    receivers: list[Receiver] = []
    if config.sources.falco_http.enabled:
        receivers.append(FalcoHttpReceiver(config.sources.falco_http.max_body_bytes, early))
    if config.sources.k8s_audit.enabled:
        receivers.append(K8sAuditReceiver(config.sources.k8s_audit.max_body_bytes, early))
    if config.sources.events.enabled:
        receivers.append(EventsReceiver(config.sources.events.max_body_bytes))
    return HttpServer(config.http, receivers, intake, metrics, ready)


def _file(name: str) -> Builder:
    def build(
        config: cfg.Config,
        intake: Intake,
        metrics: Metrics,
        ready: Readiness,
        early: EarlyReject | None,
    ) -> Source | None:
        file_config: cfg.FileConfig = getattr(config.sources, name)
        if not file_config.path:
            return None
        # with engine checkpoints the offset follows them (see detector.sources.files)
        follow = bool(config.checkpoint.path) and config.mode == "correlate"
        processed = (lambda: intake.queue.processed(name)) if follow else None
        return FileTailer(name, file_config, metrics, processed=processed, early=early)

    return build


def _grpc(
    config: cfg.Config,
    intake: Intake,
    metrics: Metrics,
    ready: Readiness,
    early: EarlyReject | None,
) -> Source | None:
    grpc_config = config.sources.falco_grpc
    if not grpc_config.enabled:
        return None
    # with the intake log, alerts are logged before the next request acknowledges them
    logged = intake if intake.logged else None
    parse = parse_falco if early is None else partial(parse_falco, early=early)
    return FalcoGrpcSource(grpc_config, metrics=_GrpcMetrics(metrics), parse=parse, intake=logged)


def _kafka_events(
    config: cfg.Config,
    intake: Intake,
    metrics: Metrics,
    ready: Readiness,
    early: EarlyReject | None,
) -> Source | None:
    kafka = config.sources.kafka_events
    return None if kafka is None else KafkaEventsSource(kafka, metrics)


SOURCE_BUILDERS: dict[str, Builder] = {
    "http": _http,
    "falco_grpc": _grpc,
    "falco_file": _file("falco_file"),
    "audit_file": _file("audit_file"),
    "kafka_events": _kafka_events,
}


def build_sources(
    config: cfg.Config,
    intake: Intake,
    metrics: Metrics,
    ready: Readiness,
    early: EarlyReject | None = None,
) -> list[Source]:
    """Every configured source; with an intake log, the intake itself first (it replays
    the log's tail at start). The HTTP receivers, file tailers and the Falco gRPC
    consumer parse through ``early``; the Kafka events source receives events a relay
    already normalized (nothing left to skip: the engine's own index rejects noise)."""
    built = (build(config, intake, metrics, ready, early) for build in SOURCE_BUILDERS.values())
    found: list[Source] = [source for source in built if source is not None]
    if intake.logged and found:
        found.insert(0, intake)
    return found


def build_intake(
    config: cfg.Config,
    queue: EventQueue,
    metrics: Metrics,
    checkpointer: Checkpointer | None,
    early: EarlyReject | None = None,
) -> Intake:
    """The queue behind the intake log (``intake_log.path``), which needs the checkpoint
    to say what it covers (no checkpointer, no log). The covered seq comes from the
    checkpoint read at start (the engine's; a relay's holds only positions). Audit
    webhook bodies are logged as they arrived and decoded again through ``early`` on
    replay (whether or not the receiver is still enabled: the log may hold them)."""
    settings = config.intake_log
    if checkpointer is None or not settings.enabled:
        return Intake(queue)
    # beside the checkpoint by default: one log per checkpoint, so per correlator process
    directory = Path(settings.path or config.checkpoint.path + ".intake-log")
    if checkpointer.version == 1:  # written before the checkpoint held the covered seq
        covered = legacy_covered(directory)
    else:
        covered = checkpointer.positions.get(Intake.position_key, 0)
    try:
        intake_log = IntakeLog(
            directory,
            metrics,
            settings.segment_bytes,
            settings.max_bytes,
            settings.when_full,
            covered,
        )
    except LogVersionError as exc:
        raise UsageError(f"intake_log.path: {exc}") from None
    intake = Intake(queue, intake_log)
    intake.decodes(K8sAuditReceiver.name, partial(audit_body_events, early=early))
    return intake


class _GrpcMetrics:
    """Adapts the gRPC source's callbacks to Prometheus (events are counted at the queue)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def event_in(self) -> None:
        return None

    def parse_error(self, reason: str) -> None:
        self._metrics.parse_errors.labels(source="falco_grpc", reason=reason).inc()

    def reconnect(self) -> None:
        self._metrics.reconnects.labels(source="falco_grpc").inc()


def build_output(config: cfg.Config, metrics: Metrics) -> Output:
    """The durable Delivery; with no sink configured, JSON lines to ``output``."""
    delivery_config = DeliveryConfig(outbox=config.outbox, sinks=config.effective_sinks)
    return Delivery(delivery_config, metrics)


register(Command("run", "run the live service (HTTP, gRPC and file sources)", configure, run))
