"""The ``relay:`` part of the configuration (used when ``mode: relay``).

Exactly one transport is configured: ``relay.http.endpoint`` (the correlator's
``POST /events``) or ``relay.kafka`` (a topic keyed by the correlation identity). The
batch and retry settings apply to both. The Kafka transport takes the connection and
security keys every Kafka client here shares
(:class:`detector.sinks.config.KafkaConnectionConfig`: ``bootstrap_servers``,
``security_protocol``, SASL and TLS, secrets resolved the same way), the producer's
``compression`` (:class:`~detector.sinks.config.KafkaProducerConfig`) and its own
``topic``. There is no ``key`` option: the message keys are the partition keys of
:func:`detector.relay.route.partition_keys`. ``relay_id`` names this relay as an input
of every worker's watermark (its events and progress markers carry it); it must be
unique and stable per relay (the node name for a node relay).
"""

from __future__ import annotations

import os
import socket
from typing import Annotated, ClassVar

import msgspec

from detector.sinks.config import ConfigStruct, KafkaProducerConfig, doc


class RelayHttpConfig(ConfigStruct):
    """Forward to the correlator's ``POST /events`` (same token/mTLS as its receivers)."""

    endpoint: Annotated[
        str, doc("correlator URL, e.g. https://detector-audit:8443/events; empty = off")
    ] = ""
    bearer_token: Annotated[str, doc("sent as `Authorization: Bearer`; secret")] = ""
    ca_file: Annotated[str, doc("PEM CA of the correlator's certificate")] = ""
    cert_file: Annotated[str, doc("PEM client certificate (mTLS)")] = ""
    key_file: Annotated[str, doc("PEM key of cert_file")] = ""
    timeout_s: Annotated[float, doc("one request's deadline", gt=0)] = 10.0

    def __post_init__(self) -> None:
        if self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise ValueError("endpoint must be an http(s) URL")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file must be set together")


class RelayKafkaConfig(KafkaProducerConfig):
    """Produce event batches to a topic keyed by namespace (see :mod:`detector.relay.route`)."""

    role: ClassVar[str] = "relay.kafka"

    client_id: Annotated[str, doc("client id the brokers log and apply quotas to")] = (
        "lateral-chain-detector-relay"
    )
    topic: Annotated[str, doc("topic of normalized events", min_length=1)] = "detector-events"
    relay_id: Annotated[
        str, doc("this relay's unique, stable name (node name); empty = $NODE_NAME, else host")
    ] = ""
    progress_interval_s: Annotated[
        float, doc("a progress marker to every partition this often", gt=0)
    ] = 1.0
    resolve_hold_s: Annotated[
        float, doc("a container-only Falco alert waits this long for its pod", ge=0)
    ] = 2.0
    max_held: Annotated[int, doc("container-only alerts waiting at most", ge=1)] = 10_000
    max_bindings: Annotated[int, doc("container/IP -> pod bindings kept", ge=1)] = 100_000

    @property
    def name(self) -> str:
        """``relay_id``, else ``$NODE_NAME``, else the host name."""
        return self.relay_id or os.environ.get("NODE_NAME") or socket.gethostname()


class RelayConfig(ConfigStruct):
    """Relay mode: batch, forward, retry; the bounded queue is ``buffer.max_events``."""

    http: RelayHttpConfig = msgspec.field(default_factory=RelayHttpConfig)
    kafka: RelayKafkaConfig | None = None
    max_batch_events: Annotated[int, doc("events per batch at most", ge=1)] = 500
    max_batch_bytes: Annotated[int, doc("encoded batch size at most (split above)", ge=1024)] = (
        4 << 20
    )
    linger_s: Annotated[float, doc("wait this long for a batch to fill", ge=0)] = 0.2
    backoff_initial_s: Annotated[float, doc("first retry delay (jittered, doubles)", gt=0)] = 0.5
    backoff_max_s: Annotated[float, doc("longest retry delay; caps Retry-After too", gt=0)] = 30.0

    def __post_init__(self) -> None:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")

    @property
    def transport(self) -> str:
        """``"http"``, ``"kafka"``, or ``""`` when none is configured."""
        if self.kafka is not None:
            return "kafka"
        return "http" if self.http.endpoint else ""
