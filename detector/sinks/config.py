"""The ``outbox:`` and ``sinks:`` parts of the service configuration.

Every struct rejects unknown keys and is validated once, at start; a failure names the key.
``sinks`` is a list whose items are told apart by ``type:`` (msgspec tagged union), e.g.::

    outbox: {path: var/outbox.sqlite3, max_records: 100000}
    sinks:
      - {type: kafka, bootstrap_servers: [kafka:9092], topic: chains, key: incident}
      - {type: webhook, url: https://soc.example/hook, secret_file: /run/secrets/hook}
      - {type: slack, webhook_url_env: SLACK_WEBHOOK_URL, min_severity: high}

Secrets (``secret``, ``sasl_password``, Slack's ``webhook_url``) may be given inline, as
``<name>_file`` (a file's content, trailing newline stripped) or ``<name>_env`` (an
environment variable's name). :func:`masked` and every struct's ``repr`` print them as
:data:`MASK`, and so are the values of webhook ``headers`` whose name looks like a
credential (``Authorization``, ``X-Api-Key``, ``*token*``, ``Cookie``, ``*signature*``:
:func:`detector.logging.is_secret_name`, the same rule the logs use). The ``detector run``
flags map onto these keys through :func:`add_arguments` and :func:`apply_arguments`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal

import msgspec

from detector.logging import is_secret_name

MASK: Final = "********"
# Every credential key of the configuration (sinks, receivers, relay): masked when printed.
SECRET_FIELDS: Final = frozenset(
    {"secret", "sasl_password", "webhook_url", "bearer_token", "password", "token", "bot_token"}
)
# ``threads_path`` (Slack): keep the thread map in memory only.
MEMORY: Final = "memory"
Severity = Literal["info", "low", "medium", "high", "critical"]
Format = Literal["chain-v1", "ocsf"]


def doc(text: str, **constraints: Any) -> msgspec.Meta:
    """A field's description (shown in the generated key table) and its constraints."""
    return msgspec.Meta(description=text, **constraints)


class ConfigStruct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Unknown keys are rejected; secrets are masked in ``repr``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({masked(self)!r})"


class RetryConfig(ConfigStruct):
    """Backoff between delivery attempts of one sink (exponential, with jitter)."""

    initial_s: Annotated[float, doc("first wait after a failure", gt=0)] = 1.0
    max_s: Annotated[float, doc("longest wait between attempts", gt=0)] = 300.0
    multiplier: Annotated[float, doc("growth factor per consecutive failure", ge=1)] = 2.0
    jitter: Annotated[float, doc("random +/- fraction of each wait", ge=0, le=1)] = 0.2


class OutboxConfig(ConfigStruct):
    """The durable local store every chain passes through before delivery."""

    path: Annotated[str, doc("SQLite file (WAL mode); created with its directory")] = (
        "var/outbox.sqlite3"
    )
    max_records: Annotated[int, doc("oldest records expire beyond this count", gt=0)] = 100_000
    max_age_s: Annotated[float, doc("undelivered records expire after this age", gt=0)] = (
        7 * 86400.0
    )
    max_dead_letters: Annotated[int, doc("dead-letter rows kept (oldest pruned)", gt=0)] = 10_000
    max_pending_submits: Annotated[int, doc("submits waiting for a commit", gt=0)] = 1024
    batch_size: Annotated[int, doc("records read per delivery round", gt=0)] = 100
    remember_delivered_s: Annotated[
        float,
        doc(
            "a chain id acknowledged by a sink is not delivered to it again for this long; "
            "`detector run` raises it to the longest rule window + lateness",
            gt=0,
        ),
    ] = 86400.0
    retry: RetryConfig = msgspec.field(default_factory=RetryConfig)


# Shared by _SinkBase and KafkaSinkConfig (which cannot inherit both bases: msgspec
# Structs are slotted, and two bases with fields have conflicting layouts).
SinkName = Annotated[str, doc("unique sink name (outbox state is keyed by it)")]
SinkFormat = Annotated[Format, doc("record format: chain-v1 or ocsf")]
MinSeverity = Annotated[Severity, doc("deliver only chains at or above")]
RulesInclude = Annotated[list[str], doc("rule-name globs to deliver (empty = all)")]
RulesExclude = Annotated[list[str], doc("rule-name globs never delivered")]


class _SinkBase(ConfigStruct, tag_field="type"):
    """Options every sink shares: its name, record format and routing."""

    name: SinkName = ""
    format: SinkFormat = "chain-v1"
    min_severity: MinSeverity = "info"
    rules_include: RulesInclude = []
    rules_exclude: RulesExclude = []


class KafkaConnectionConfig(ConfigStruct):
    """Where the Kafka cluster is and how to authenticate: the keys the Kafka sink,
    ``relay.kafka`` and ``sources.kafka_events`` share (see docs/sinks.md, security)."""

    # Names the struct in validation errors ("kafka sink needs bootstrap_servers").
    role: ClassVar[str] = "kafka"

    bootstrap_servers: Annotated[list[str], doc("HOST:PORT list")] = []
    client_id: Annotated[str, doc("client id the brokers log and apply quotas to")] = (
        "lateral-chain-detector"
    )
    security_protocol: Annotated[
        Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], doc("listener protocol")
    ] = "PLAINTEXT"
    sasl_mechanism: Annotated[
        Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], doc("with SASL_* protocols")
    ] = ""
    sasl_username: Annotated[str, doc("SASL user")] = ""
    sasl_password: Annotated[str, doc("SASL password (prefer _file / _env); secret")] = ""
    sasl_password_file: Annotated[str, doc("file holding the SASL password")] = ""
    sasl_password_env: Annotated[str, doc("environment variable holding it")] = ""
    tls_ca_file: Annotated[str, doc("PEM CA bundle (default: system CAs)")] = ""
    tls_cert_file: Annotated[str, doc("PEM client certificate (mTLS)")] = ""
    tls_key_file: Annotated[str, doc("PEM key of tls_cert_file")] = ""
    timeout_s: Annotated[float, doc("deadline of a connect or one send", gt=0)] = 30.0

    def __post_init__(self) -> None:
        if not self.bootstrap_servers:
            raise ValueError(f"{self.role} needs bootstrap_servers")
        sasl = self.security_protocol.startswith("SASL")
        if sasl and not (self.sasl_mechanism and self.sasl_username):
            raise ValueError("SASL_* security_protocol needs sasl_mechanism and sasl_username")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file go together")


class KafkaProducerConfig(KafkaConnectionConfig):
    """The connection plus what only a producer needs (the sink and ``relay.kafka``)."""

    compression: Annotated[Literal["none", "gzip"], doc("batch compression")] = "none"


class KafkaSinkConfig(KafkaProducerConfig, tag_field="type", tag="kafka"):
    """Apache Kafka producer (aiokafka): acks=all, idempotent."""

    role: ClassVar[str] = "kafka sink"

    name: SinkName = ""
    format: SinkFormat = "chain-v1"
    min_severity: MinSeverity = "info"
    rules_include: RulesInclude = []
    rules_exclude: RulesExclude = []
    topic: Annotated[str, doc("topic name", min_length=1)] = "lateral-movement-chains"
    key: Annotated[Literal["id", "incident"], doc("message key: chain id or incident")] = "id"
    dedupe_tail: Annotated[
        int,
        doc(
            "messages per partition read back at start and after a failed send, whose "
            "chain ids are not written again; 0 = off",
            ge=0,
            le=100_000,
        ),
    ] = 1000


class WebhookSinkConfig(_SinkBase, tag="webhook"):
    """JSON POST of each record, signed with HMAC-SHA256 when a secret is set."""

    url: Annotated[str, doc("http(s) URL", pattern="^https?://")] = "http://localhost/"
    method: Literal["POST", "PUT"] = "POST"
    headers: Annotated[dict[str, str], doc("extra request headers")] = {}
    timeout_s: Annotated[float, doc("one request's deadline", gt=0)] = 10.0
    secret: Annotated[str, doc("HMAC key (prefer secret_file / secret_env)")] = ""
    secret_file: str = ""
    secret_env: str = ""
    tls_ca_file: Annotated[str, doc("PEM CA bundle for https (default: system CAs)")] = ""


class SlackSinkConfig(_SinkBase, tag="slack"):
    """Slack: an incoming webhook (one message per chain), or a bot token posting with
    ``chat.postMessage`` (one thread per incident, its first message kept up to date)."""

    webhook_url: Annotated[str, doc("incoming-webhook URL (a secret)")] = ""
    webhook_url_file: str = ""
    webhook_url_env: str = ""
    bot_token: Annotated[str, doc("bot token (xoxb-…) for chat.postMessage; a secret")] = ""
    bot_token_file: str = ""
    bot_token_env: str = ""
    channel: Annotated[str, doc("channel id or name the bot posts to (with bot_token)")] = ""
    api_url: Annotated[str, doc("Slack Web API base URL", pattern="^https?://")] = (
        "https://slack.com/api"
    )
    link_template: Annotated[
        str, doc("link button; {id} and {incident} filled in (default: the record's url)")
    ] = ""
    min_interval_s: Annotated[float, doc("at most one post per interval", ge=0)] = 1.0
    timeout_s: Annotated[float, doc("one request's deadline", gt=0)] = 10.0
    max_threads: Annotated[int, doc("incidents whose thread is remembered (bot)", ge=1)] = 10_000
    threads_path: Annotated[
        str,
        doc(
            "SQLite file of the incident threads (bot), kept across restarts; empty = "
            "`slack-<name>.threads` in the outbox's directory, `memory` = not kept"
        ),
    ] = ""

    def __post_init__(self) -> None:
        webhook = any((self.webhook_url, self.webhook_url_file, self.webhook_url_env))
        # neither: the sink itself says webhook_url is required (a webhook is the default)
        if webhook and self.bot:
            raise ValueError("bot_token: give webhook_url or bot_token, not both")
        if self.bot and not self.channel:
            raise ValueError("channel: bot_token needs a channel to post to")

    @property
    def bot(self) -> bool:
        """Bot-token mode (threads), not an incoming webhook."""
        return any((self.bot_token, self.bot_token_file, self.bot_token_env))


class FileSinkConfig(_SinkBase, tag="file"):
    """JSON lines on stdout (``path: "-"``) or appended to a file."""

    path: Annotated[str, doc("`-` = stdout, else a file appended to")] = "-"
    fsync: Annotated[bool, doc("fsync after every record")] = False


SinkConfig = KafkaSinkConfig | WebhookSinkConfig | SlackSinkConfig | FileSinkConfig


class DeliveryConfig(ConfigStruct):
    """What :class:`detector.delivery.loops.Delivery` needs: the outbox and the sinks."""

    outbox: OutboxConfig = msgspec.field(default_factory=OutboxConfig)
    sinks: list[SinkConfig] = []

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for i, sink in enumerate(self.sinks):
            if not sink.name:
                kind = sink_type(sink)
                sink.name = kind if kind not in seen else f"{kind}-{i}"
            if sink.name in seen:
                raise ValueError(f"sinks[{i}].name {sink.name!r} is used twice")
            seen.add(sink.name)
            if isinstance(sink, SlackSinkConfig) and sink.bot and not sink.threads_path:
                sink.threads_path = default_threads_path(self.outbox.path, sink.name)
        self._check_thread_files()

    def _check_thread_files(self) -> None:
        """One file per Slack bot sink: two sinks sharing one would reply in each other's
        threads (another channel's ``ts``), and the outbox's file is the outbox's."""
        taken = {os.path.abspath(self.outbox.path): "outbox.path"}
        for i, sink in enumerate(self.sinks):
            if not isinstance(sink, SlackSinkConfig) or not sink.bot:
                continue
            if sink.threads_path == MEMORY:
                continue
            path = os.path.abspath(sink.threads_path)  # "a/../b" is "b"
            if path in taken:
                raise ValueError(
                    f"sinks[{i}].threads_path {sink.threads_path!r} is also {taken[path]}"
                )
            taken[path] = f"sinks[{i}].threads_path"

    @property
    def effective_sinks(self) -> list[SinkConfig]:
        """The configured sinks, or stdout JSON lines when none is configured."""
        return list(self.sinks) or [FileSinkConfig(name="stdout")]


def default_threads_path(outbox_path: str, sink_name: str) -> str:
    """Where a Slack bot sink keeps its threads unless ``threads_path`` says: by the outbox."""
    return str(Path(outbox_path).with_name(f"slack-{sink_name}.threads"))


def sink_type(config: SinkConfig) -> str:
    """The ``type:`` tag of a sink config (``"kafka"``, ``"webhook"`` ...)."""
    return str(type(config).__struct_config__.tag)


def resolve_secret(inline: str, file: str, env: str, key: str) -> str:
    """The secret from ``<key>`` / ``<key>_file`` / ``<key>_env``; ValueError names the key."""
    if sum(map(bool, (inline, file, env))) > 1:
        raise ValueError(f"{key}: give only one of {key}, {key}_file, {key}_env")
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"{key}_file: cannot read {file}: {exc.strerror}") from None
    if env:
        if env not in os.environ:
            raise ValueError(f"{key}_env: environment variable {env} is not set")
        return os.environ[env]
    return inline


def decode(data: dict[str, Any]) -> DeliveryConfig:
    """``{"outbox": ..., "sinks": [...]}`` → DeliveryConfig; ValueError names the bad key."""
    try:
        return msgspec.convert(data, DeliveryConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from None


def masked(config: msgspec.Struct) -> dict[str, Any]:
    """Plain data for printing, with every secret replaced by :data:`MASK`."""
    data: dict[str, Any] = _mask(msgspec.to_builtins(config))
    return data


def _mask(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _mask_value(k, v) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask(v) for v in node]
    return node


def _mask_value(key: str, value: Any) -> Any:
    if key in SECRET_FIELDS and value:
        return MASK
    if key == "headers" and isinstance(value, dict):
        # Header names are the user's choice, so they are judged by name, not listed.
        return {name: MASK if is_secret_name(name) and v else v for name, v in value.items()}
    return _mask(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The common-case delivery flags of ``detector run`` (each also a config key)."""
    group = parser.add_argument_group("delivery")
    group.add_argument("--kafka-bootstrap", metavar="HOST:PORT", help="enable the Kafka sink")
    group.add_argument("--kafka-topic", metavar="NAME", help="Kafka topic (with the above)")
    group.add_argument("--webhook-url", metavar="URL", help="enable the webhook sink")
    group.add_argument("--webhook-secret-file", metavar="PATH", help="HMAC key for the webhook")
    group.add_argument("--slack-webhook-url", metavar="URL", help="enable the Slack sink")
    group.add_argument("--outbox", metavar="PATH", help="outbox SQLite file (outbox.path)")


def apply_arguments(args: argparse.Namespace, config: DeliveryConfig) -> DeliveryConfig:
    """A new config with the flags applied: each flag adds or updates one sink."""
    raw = msgspec.to_builtins(config)
    if args.outbox:
        for sink in raw["sinks"]:  # a default filled in from the old path moves with it
            if sink.get("threads_path") == default_threads_path(
                raw["outbox"]["path"], sink["name"]
            ):
                sink["threads_path"] = ""
        raw["outbox"]["path"] = args.outbox
    if args.kafka_bootstrap:
        kafka = _sink(raw, "kafka")
        kafka["bootstrap_servers"] = args.kafka_bootstrap.split(",")
    if args.kafka_topic:
        if not args.kafka_bootstrap and not _has(raw, "kafka"):
            raise ValueError("--kafka-topic needs --kafka-bootstrap (or a kafka sink)")
        _sink(raw, "kafka")["topic"] = args.kafka_topic
    if args.webhook_url:
        _sink(raw, "webhook")["url"] = args.webhook_url
    if args.webhook_secret_file:
        hook = _sink(raw, "webhook")
        hook["secret"], hook["secret_env"] = "", ""
        hook["secret_file"] = args.webhook_secret_file
    if args.slack_webhook_url:
        _sink(raw, "slack")["webhook_url"] = args.slack_webhook_url
    return decode(raw)


def _has(raw: dict[str, Any], kind: str) -> bool:
    return any(s["type"] == kind for s in raw["sinks"])


def _sink(raw: dict[str, Any], kind: str) -> dict[str, Any]:
    """The first sink of ``kind`` in the raw config, appended when there is none."""
    for sink in raw["sinks"]:
        if sink["type"] == kind:
            sink_data: dict[str, Any] = sink
            return sink_data
    raw["sinks"].append({"type": kind})
    new: dict[str, Any] = raw["sinks"][-1]
    return new
