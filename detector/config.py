"""The whole ``detector run`` configuration: typed structs, loading, overrides, masking.

One YAML file maps onto :class:`Config`; unknown keys are rejected. Every key can be
overridden by an environment variable named after its path, upper-cased, with ``__``
between levels and the ``DETECTOR_`` prefix::

    sources.falco_http.max_body_bytes  <->  DETECTOR_SOURCES__FALCO_HTTP__MAX_BODY_BYTES

Values from the environment (and from CLI flags, which are aliases of config keys) are
read as YAML scalars, so ``10``, ``true`` and ``[a, b]`` mean what they look like.
Precedence: defaults < file < environment < flags. Validation happens once, at start,
and a failure names the key and the reason.

Exceptions::

    detector.errors.UsageError
     └── ConfigError       bad file, bad key or bad value; message names the key
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
import yaml

from correlation.state import EngineConfig
from detector.errors import UsageError
from detector.incidents.config import ClusterConfig, IncidentsConfig
from detector.relay.config import RelayConfig
from detector.sinks.config import MASK as MASK
from detector.sinks.config import (
    SECRET_FIELDS,
    ConfigStruct,
    DeliveryConfig,
    FileSinkConfig,
    OutboxConfig,
    SinkConfig,
    doc,
)
from detector.sinks.config import masked as _masked
from detector.sources.falco_grpc import FalcoGrpcConfig
from detector.sources.kafka_events import KafkaEventsConfig
from detector.worker.config import WorkerConfig

ENV_PREFIX: Final = "DETECTOR_"
# One list of credential keys for the whole config (kept with the sink structs, whose
# repr masks them too); printed configs show MASK instead of their values.
SECRET_KEYS: Final = SECRET_FIELDS
# The engine's own defaults, so the caps are defined in one place (correlation.state).
_ENGINE: Final = EngineConfig()


class ConfigError(UsageError):
    """The configuration cannot be used; ``problems`` has one :class:`Problem` per mistake."""

    problems: Sequence[Problem]


class TlsConfig(ConfigStruct):
    """Server-side TLS for the HTTP receivers (all three empty = plain HTTP)."""

    cert_file: Annotated[str, doc("PEM server certificate; enables TLS")] = ""
    key_file: Annotated[str, doc("PEM private key of cert_file")] = ""
    client_ca_file: Annotated[str, doc("PEM CA; when set, clients must present a cert")] = ""

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file must be set together")
        if self.client_ca_file and not self.cert_file:
            raise ValueError("client_ca_file (mTLS) needs cert_file and key_file")


class HttpConfig(ConfigStruct):
    """The one HTTP port: receivers, health, readiness and metrics."""

    listen: Annotated[str, doc("HOST:PORT for the receivers; empty = no HTTP server")] = ""
    health_listen: Annotated[
        str,
        doc(
            "HOST:PORT of a plain-HTTP listener with only /healthz, /readyz and /metrics "
            "(for probes that cannot present a client certificate under mTLS); empty = off"
        ),
    ] = ""
    bearer_token: Annotated[str, doc("required `Authorization: Bearer` on POSTs; secret")] = ""
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)
    retry_after_s: Annotated[int, doc("Retry-After sent with 429/503", ge=1)] = 1
    max_inflight_bytes: Annotated[
        int,
        doc(
            "request body bytes being read or decoded at once, all POSTs; beyond it 503 "
            "over_budget + Retry-After. At least every receiver's max_body_bytes",
            ge=1024,
        ),
    ] = 64 << 20
    # Timeouts and connection caps: what an idle or slow client can hold, and for how long.
    header_timeout_s: Annotated[
        float, doc("seconds from a request's first byte to its complete headers", gt=0)
    ] = 10.0
    body_timeout_s: Annotated[float, doc("seconds to receive a whole body; else 408", gt=0)] = 60.0
    body_chunk_timeout_s: Annotated[
        float, doc("seconds a body may stall between two reads; else 408", gt=0)
    ] = 10.0
    idle_timeout_s: Annotated[
        float, doc("seconds a connection may wait for its (next) request before it is closed", gt=0)
    ] = 30.0
    max_connections: Annotated[
        int,
        doc("open connections, all peers; more are closed at once (keep below the fd limit)", ge=1),
    ] = 1000
    max_connections_per_peer: Annotated[
        int, doc("open connections from one IP address; more are closed at once", ge=1)
    ] = 64

    def __post_init__(self) -> None:
        if self.listen:
            split_listen(self.listen)
        if self.health_listen:
            split_listen(self.health_listen)
        if self.max_connections_per_peer > self.max_connections:
            raise ValueError("max_connections_per_peer must not exceed max_connections")


class ReceiverConfig(ConfigStruct):
    """One POST endpoint."""

    enabled: Annotated[bool, doc("serve this endpoint")] = True
    max_body_bytes: Annotated[int, doc("bigger bodies get 413, unread", ge=1024)] = 1 << 20


class AuditReceiverConfig(ReceiverConfig):
    """The API server's audit webhook; batches of up to 400 events."""

    max_body_bytes: Annotated[int, doc("bigger bodies get 413, unread", ge=1024)] = 16 << 20


class EventsReceiverConfig(AuditReceiverConfig):
    """``POST /events``: normalized event batches from relay-mode sidecars."""


class FileConfig(ConfigStruct):
    """A tailed JSON-lines file (Falco file_output or the API server's audit log)."""

    path: Annotated[str, doc("file to tail; empty = off")] = ""
    state_file: Annotated[str, doc("where the read offset is kept; default PATH.offset")] = ""
    poll_interval_s: Annotated[float, doc("how often to look for new lines", gt=0)] = 0.5
    start_at: Annotated[str, doc("without saved state: `beginning` or `end`")] = "beginning"
    max_line_bytes: Annotated[int, doc("longer lines are skipped and counted", ge=1024)] = 1 << 20

    def __post_init__(self) -> None:
        if self.start_at not in ("beginning", "end"):
            raise ValueError("start_at must be `beginning` or `end`")


class SourcesConfig(ConfigStruct):
    """Where events come from."""

    falco_http: ReceiverConfig = msgspec.field(default_factory=ReceiverConfig)
    k8s_audit: AuditReceiverConfig = msgspec.field(default_factory=AuditReceiverConfig)
    falco_file: FileConfig = msgspec.field(default_factory=FileConfig)
    audit_file: FileConfig = msgspec.field(default_factory=FileConfig)
    falco_grpc: FalcoGrpcConfig = msgspec.field(default_factory=FalcoGrpcConfig)
    events: EventsReceiverConfig = msgspec.field(default_factory=EventsReceiverConfig)
    kafka_events: KafkaEventsConfig | None = None


class BufferConfig(ConfigStruct):
    """The bounded queue between all sources and the engine."""

    max_events: Annotated[int, doc("queue capacity in events; full = 429", ge=1)] = 10_000


class EngineSettings(ConfigStruct):
    """Rules and the event-time clock."""

    rules: Annotated[list[str], doc("extra rule files or directories")] = []
    builtin_rules: Annotated[bool, doc("load the shipped rule files")] = True
    idle_advance_s: Annotated[
        float, doc("wall-clock period of watermark advance (chain latency adds up to this)", gt=0)
    ] = 0.1
    allowed_lateness_s: Annotated[
        float, doc("disorder bound within one input whose source has no lateness_by_source", ge=0)
    ] = 60.0
    lateness_by_source: Annotated[
        dict[str, float], doc("disorder bound within one input, by source (falco, k8s_audit)")
    ] = msgspec.field(default_factory=lambda: {"falco": 5.0, "k8s_audit": 30.0})
    max_clock_skew_s: Annotated[
        float, doc("events stamped further ahead of the clock do not move event time", gt=0)
    ] = 60.0
    delivery_bound_floor_s: Annotated[
        float, doc("pushed inputs: learned delivery delay at least this", ge=0)
    ] = 0.25
    delivery_bound_ceiling_s: Annotated[
        float, doc("pushed inputs: learned delivery delay at most this", gt=0)
    ] = 60.0
    idle_timeout_s: Annotated[
        float, doc("a pulled input at its end this long stops holding the others back", gt=0)
    ] = 5.0
    max_drift_s: Annotated[
        float, doc("a file tailer this far ahead of the watermark pauses (alignment)", gt=0)
    ] = 60.0
    allowlist: Annotated[
        str, doc("global allowlist YAML (format of `detector replay --allowlist`); empty = none")
    ] = ""
    max_partials_per_key: Annotated[
        int, doc("buffered step events per rule, step and join key; oldest evicted", ge=1)
    ] = _ENGINE.max_partials_per_key
    max_partials_total: Annotated[
        int, doc("buffered step events in all rules; oldest evicted", ge=1)
    ] = _ENGINE.max_partials_total
    max_pending: Annotated[
        int, doc("container-only Falco alerts held for their pod; oldest released", ge=1)
    ] = _ENGINE.max_pending
    max_identities: Annotated[
        int, doc("container and IP -> pod bindings kept; oldest forgotten", ge=1)
    ] = _ENGINE.max_identities


class CheckpointConfig(ConfigStruct):
    """Engine state snapshots that survive restarts (``mode: correlate`` only)."""

    # On by default, next to the outbox: a restart that silently forgets every open
    # partial match would miss the chains spanning it.
    path: Annotated[str, doc("checkpoint file; empty = off")] = "var/engine.ckpt"
    interval_s: Annotated[float, doc("seconds between checkpoints", gt=0)] = 30.0


class IntakeLogConfig(ConfigStruct):
    """The write-ahead log of pushed events (HTTP receivers, Falco gRPC), fsync'd before
    they are acknowledged.

    ``mode: correlate``: used when ``checkpoint.path`` is set; the checkpoint says how much
    of the log it covers, and a restart replays the rest. ``mode: relay``: used when
    ``path`` is set (relays often run on a read-only root, so there is no default); the
    position of what was forwarded is kept in ``relay.ckpt`` inside that directory."""

    enabled: Annotated[bool, doc("log pushed batches before answering them")] = True
    path: Annotated[
        str, doc("directory of the segments; empty = beside the checkpoint, CHECKPOINT.intake-log")
    ] = ""
    segment_bytes: Annotated[int, doc("a segment is closed at this size", ge=4096)] = 16 << 20
    max_bytes: Annotated[int, doc("segments on disk at most; see when_full", ge=4096)] = 1 << 30
    when_full: Annotated[
        Literal["refuse", "drop_oldest"],
        doc("`refuse` (503 + Retry-After) or `drop_oldest` (counted) when max_bytes is reached"),
    ] = "refuse"

    def __post_init__(self) -> None:
        if self.max_bytes < self.segment_bytes:
            raise ValueError("max_bytes must be at least segment_bytes")


class LogConfig(ConfigStruct):
    """Structured JSON logs on stderr."""

    level: Annotated[str, doc("debug, info, warning or error")] = "info"

    def __post_init__(self) -> None:
        if self.level not in ("debug", "info", "warning", "error"):
            raise ValueError("level must be debug, info, warning or error")


class Config(ConfigStruct):
    """Everything ``detector run`` needs."""

    mode: Annotated[
        Literal["correlate", "relay"],
        doc("`correlate` here, or `relay` normalized events to a correlator (see `relay`)"),
    ] = "correlate"
    relay: RelayConfig = msgspec.field(default_factory=RelayConfig)
    cluster: ClusterConfig = msgspec.field(default_factory=ClusterConfig)
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    sources: SourcesConfig = msgspec.field(default_factory=SourcesConfig)
    buffer: BufferConfig = msgspec.field(default_factory=BufferConfig)
    engine: EngineSettings = msgspec.field(default_factory=EngineSettings)
    checkpoint: CheckpointConfig = msgspec.field(default_factory=CheckpointConfig)
    intake_log: IntakeLogConfig = msgspec.field(default_factory=IntakeLogConfig)
    output: Annotated[
        str, doc("chains as JSON lines when `sinks` is empty: `-` = stdout, or a file path")
    ] = "-"
    outbox: OutboxConfig = msgspec.field(default_factory=OutboxConfig)
    incidents: IncidentsConfig = msgspec.field(default_factory=IncidentsConfig)
    sinks: Annotated[
        list[SinkConfig], doc("Kafka/webhook/Slack/file sinks, see docs/sinks.md")
    ] = []
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    # `detector worker` and `detector stitch`: consumer group and topics (docs/scale-out.md)
    worker: WorkerConfig | None = None
    shutdown_grace_s: Annotated[float, doc("SIGTERM: time to drain and flush", gt=0)] = 10.0

    def __post_init__(self) -> None:
        # Sink names and the Slack threads' default file, as `run` will use them (and so
        # `check` looks at the same files).
        DeliveryConfig(outbox=self.outbox, sinks=self.sinks)
        if self.mode == "relay" and not self.relay.transport:
            raise ValueError("mode relay needs relay.http.endpoint or relay.kafka")
        if self.relay.http.endpoint and self.relay.kafka is not None:
            raise ValueError("relay: give relay.http.endpoint or relay.kafka, not both")
        biggest = max(r.max_body_bytes for r in self._receivers())
        if self.http.max_inflight_bytes < biggest:
            raise ValueError(
                f"http.max_inflight_bytes ({self.http.max_inflight_bytes}) must be at least "
                f"the largest enabled max_body_bytes ({biggest})"
            )

    @property
    def effective_sinks(self) -> list[SinkConfig]:
        """The configured sinks, or JSON lines to ``output`` when there is none."""
        return list(self.sinks) or [FileSinkConfig(name="output", path=self.output)]

    def _receivers(self) -> list[ReceiverConfig]:
        found = [self.sources.falco_http, self.sources.k8s_audit, self.sources.events]
        return [r for r in found if r.enabled] or [ReceiverConfig(max_body_bytes=1024)]


# Top-level key -> its type, to decode the sections one by one (see collect()).
_FIELDS: Final[dict[str, Any]] = {f.encode_name: f.type for f in msgspec.structs.fields(Config)}

# CLI flag -> config key. Flags are aliases only; the config key is the truth.
FLAG_KEYS: Final[dict[str, str]] = {
    "listen": "http.listen",
    "falco_file": "sources.falco_file.path",
    "audit_file": "sources.audit_file.path",
    "output": "output",
    "falco_grpc": "sources.falco_grpc.endpoint",
    "grpc_ca": "sources.falco_grpc.ca",
    "grpc_cert": "sources.falco_grpc.cert",
    "grpc_key": "sources.falco_grpc.key",
}
# Keys whose struct (owned elsewhere) carries no msgspec description.
_EXTRA_DOCS: Final = {
    "sources.falco_grpc.endpoint": "Falco gRPC (<= 0.43): unix:///run/falco/falco.sock or "
    "HOST:PORT (mTLS); empty = off",
    "sources.falco_grpc.ca": "PEM CA of Falco's gRPC server certificate (TCP)",
    "sources.falco_grpc.cert": "PEM client certificate (TCP)",
    "sources.falco_grpc.key": "PEM client key of `cert` (TCP); path only, never logged",
    "sources.falco_grpc.server_name": "TLS name to verify instead of the endpoint host",
    "sources.falco_grpc.mode": "`sub` (stream, keep alive) or `get` (one drain)",
    "sources.falco_grpc.keepalive_s": "request period while alerts flow",
    "sources.falco_grpc.keepalive_idle_s": "request period when idle",
    "sources.falco_grpc.backoff_initial_s": "first reconnect delay (jittered, doubles)",
    "sources.falco_grpc.backoff_max_s": "longest reconnect delay",
    "sources.falco_grpc.connect_timeout_s": "deadline of the version call at connect",
}


def split_listen(listen: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (``[::1]:80`` for IPv6) → ``(host, port)``; ValueError when malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen must be HOST:PORT, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - explicit "all interfaces"


class Problem(msgspec.Struct, frozen=True):
    """One thing wrong with the configuration: the key, where it came from, and why.

    Printed as one line, ``key: where: message`` (``where`` is the config file, the
    environment variable or the file a key names; left out when there is none).
    """

    key: str
    message: str
    where: str = ""

    def __str__(self) -> str:
        middle = f"{self.where}: " if self.where else ""
        return f"{self.key}: {middle}{self.message}"


def load(
    path: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the file (optional), apply environment then ``overrides`` (key path → value).

    :class:`ConfigError` lists every problem found, one per line (see :func:`collect`).
    """
    config, problems = collect(path, environ, overrides)
    if config is None or problems:
        raise ConfigError("\n".join(map(str, problems)), problems)
    return config


def collect(
    path: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[Config | None, list[Problem]]:
    """The config and every problem of its structure (keys, types, values) at once.

    msgspec stops at the first error, so when the whole fails each top-level section is
    decoded alone too: one bad key per section is reported, not only the first one.
    """
    problems: list[Problem] = []
    raw = _read_file(path, problems) if path else {}
    origins: dict[str, str] = {}
    for key, value in _env_overrides(os.environ if environ is None else environ):
        _set_path(raw, key, value, f"environment variable {_env_name(key)}", problems, origins)
    for key, value in (overrides or {}).items():
        _set_path(raw, key, value, f"option for {key}", problems, origins)
    try:
        config = msgspec.convert(raw, Config, strict=False)
    except msgspec.ValidationError as exc:
        first = _problem(str(exc), "", path or "", origins)
        found = [p for name in raw if (p := _section_problem(raw, name, path or "", origins))]
        return None, problems + (found or [first])
    return (None, problems) if problems else (config, [])


def _section_problem(
    raw: dict[str, Any], name: str, path: str, origins: dict[str, str]
) -> Problem | None:
    field = _FIELDS.get(name)
    if field is None:
        return Problem(name, "unknown config key", path)
    try:
        msgspec.convert(raw[name], field, strict=False)
    except msgspec.ValidationError as exc:
        return _problem(str(exc), name, path, origins)
    return None


def _problem(message: str, section: str, path: str, origins: dict[str, str]) -> Problem:
    """msgspec's ``... - at `$.a.b``` → ``Problem("a.b", ...)``, with where the value came from."""
    text, sep, where = message.rpartition(" - at `$")
    if not sep:
        text, where = message, ""
    inner = where.rstrip("`").lstrip(".")
    key = ".".join(part for part in (section, inner) if part).replace(".[", "[")
    origin = next((o for k, o in origins.items() if key == k or key.startswith(k + ".")), path)
    if text.startswith("Object contains unknown field"):
        unknown = text.rpartition(" ")[2].strip("`")
        return Problem(f"{key}.{unknown}" if key else unknown, "unknown config key", origin)
    return Problem(key or "(top level)", text, origin)


def _read_file(path: str, problems: list[Problem]) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        problems.append(Problem("--config", f"cannot read config file: {exc.strerror}", path))
        return {}
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())  # one line: PyYAML's message spans several
        problems.append(Problem("--config", f"not valid YAML: {message}", path))
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(Problem("--config", "must hold a mapping at the top level", path))
        return {}
    return data


def _env_name(key: str) -> str:
    return ENV_PREFIX + key.replace(".", "__").upper()


def _env_overrides(environ: Mapping[str, str]) -> Iterator[tuple[str, Any]]:
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        yield key, _scalar(environ[name])


def _scalar(text: str) -> Any:
    """A string from the environment or a flag, read the way YAML would read it."""
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def _set_path(
    raw: dict[str, Any],
    key: str,
    value: Any,
    origin: str,
    problems: list[Problem],
    origins: dict[str, str],
) -> None:
    """Set ``raw[a][b][c] = value`` for ``"a.b.c"``; refuse keys Config does not have."""
    if key not in known_keys():
        problems.append(Problem(key, "unknown config key", origin))
        return
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            problems.append(Problem(part, "must be a mapping", origin))
            return
        node = child
    node[leaf] = value
    origins[key] = origin


def known_keys() -> frozenset[str]:
    """Every settable dotted key (leaves and sections)."""
    return frozenset(row[0] for row in reference_rows(include_sections=True))


def reference_rows(include_sections: bool = False) -> list[tuple[str, str, str, str]]:
    """``(key, type, default, description)`` for every key, walking the structs."""
    rows: list[tuple[str, str, str, str]] = []
    _walk(msgspec.inspect.type_info(Config), "", rows, include_sections)
    return rows


def _walk(info: Any, prefix: str, rows: list[tuple[str, str, str, str]], sections: bool) -> None:
    for field in info.fields:
        key = prefix + field.encode_name
        ftype = field.type
        if isinstance(ftype, msgspec.inspect.UnionType):  # "X | None" sections
            ftype = next(t for t in ftype.types if not isinstance(t, msgspec.inspect.NoneType))
        if isinstance(ftype, msgspec.inspect.StructType):
            if sections:
                rows.append((key, "section", "", (ftype.cls.__doc__ or "").strip()))
            _walk(ftype, key + ".", rows, sections)
            continue
        kind, default, text = _describe(field)
        rows.append((key, kind, default, text or _EXTRA_DOCS.get(key, "")))


def _describe(field: Any) -> tuple[str, str, str]:
    ftype, text = field.type, ""
    if isinstance(ftype, msgspec.inspect.Metadata):
        text = (ftype.extra_json_schema or {}).get("description", "")
        ftype = ftype.type
    default = field.default_factory() if field.default_factory is not msgspec.NODEFAULT else None
    if default is None:
        default = field.default
    shown = MASK if field.name in SECRET_KEYS and default else default
    return type(ftype).__name__.removesuffix("Type").lower(), _json(shown), text


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def masked(config: Config) -> dict[str, Any]:
    """The effective config as plain data, credentials replaced by :data:`MASK`."""
    return _masked(config)


def render_reference() -> str:
    """The Markdown table of every key (docs/configuration.md embeds it verbatim)."""
    lines = ["| key | environment variable | type | default | meaning |", "|---|---|---|---|---|"]
    for key, kind, default, text in reference_rows():
        lines.append(f"| `{key}` | `{_env_name(key)}` | {kind} | `{default}` | {text} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m detector.config > the table in docs/configuration.md
    print(render_reference(), end="")
