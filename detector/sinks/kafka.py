"""Kafka sink: an idempotent aiokafka producer with ``acks=all``.

Each record becomes one message: value = the formatted record as JSON, key = the chain
``id`` (default) or its ``incident`` (so one incident stays ordered on one partition),
headers ``schema``, ``rule``, ``severity`` and ``chain_id``.

Every deadline is an ``asyncio.timeout`` block, not ``asyncio.wait_for``: on Python 3.11
``wait_for`` loses a cancellation that meets its inner call's end, and the delivery loop
that ran it would then go on retrying through a shutdown.

Failure handling: the producer is started lazily and recreated after a failure, because
an aiokafka producer whose broker vanished can keep stale connections and sequence
numbers. Every delivery has a deadline (``timeout_s``); a broker that is down makes
deliveries fail transiently, so the outbox stalls and retries: nothing is lost. Errors a
retry cannot fix (message too large, bad topic, not authorized) are permanent.

Once per chain in the topic. The outbox re-sends a record whose acknowledgement it did
not commit (a kill right after the broker's ack), and a send that timed out may have
been written all the same (the retry uses a new producer, so the idempotent producer's
own dedupe does not reach across). So before its first send, and again after every
failed one, the sink reads the last ``dedupe_tail`` messages of each partition back
(:class:`TopicTail`) and a record whose ``chain_id`` header is there is acknowledged
without being sent again. Chains another writer put in the topic count too: the
header is the chain id wherever it came from.

A producer that cannot start says only "Unable to bootstrap" (aiokafka keeps the cause in
its own log). :class:`LazyProducer` then probes the bootstrap servers once to name it -
wrong SASL credentials, an untrusted broker certificate, a refused client certificate - and
raises :class:`KafkaConnectFailed` with that reason. Wrong credentials stay *transient*:
the records wait in the outbox until someone fixes the secret, rather than being
dead-lettered by a typo. No message ever contains a password.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Final

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.conn import create_conn
from aiokafka.errors import (
    InvalidTopicError,
    KafkaConnectionError,
    KafkaError,
    MessageSizeTooLargeError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    UnsupportedSaslMechanismError,
)

from detector.sinks.base import PermanentDeliveryError, TransientDeliveryError
from detector.sinks.config import (
    KafkaConnectionConfig,
    KafkaProducerConfig,
    KafkaSinkConfig,
    resolve_secret,
)
from detector.sinks.formats import Formatter, schema_of

_PERMANENT: Final = (MessageSizeTooLargeError, InvalidTopicError, TopicAuthorizationFailedError)
_STOP_TIMEOUT_S: Final = 5.0
_PROBE_TIMEOUT_S: Final = 10.0
# The options create_conn shares with the producer (the probe must connect the same way).
_PROBE_KEYS: Final = (
    "client_id",
    "security_protocol",
    "ssl_context",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
)
log = structlog.get_logger(__name__)


class KafkaConnectFailed(KafkaConnectionError):  # type: ignore[misc]  # aiokafka is untyped
    """No bootstrap server could be used; the message names why (never a secret)."""


def producer_options(config: KafkaProducerConfig) -> dict[str, Any]:
    """aiokafka producer keyword arguments for ``config`` (security included)."""
    return {
        **connection_options(config),
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": None if config.compression == "none" else config.compression,
        "request_timeout_ms": int(config.timeout_s * 1000),
    }


def connection_options(config: KafkaConnectionConfig) -> dict[str, Any]:
    """The aiokafka keyword arguments producers and consumers share: servers, client id,
    security; secrets are resolved here, so a missing one fails at start."""
    options: dict[str, Any] = {
        "bootstrap_servers": config.bootstrap_servers,
        "client_id": config.client_id,
        "security_protocol": config.security_protocol,
    }
    if config.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = config.sasl_mechanism
        options["sasl_plain_username"] = config.sasl_username
        options["sasl_plain_password"] = resolve_secret(
            config.sasl_password,
            config.sasl_password_file,
            config.sasl_password_env,
            "sasl_password",
        )
    if config.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _tls_context(config)
    return options


def _tls_context(config: KafkaConnectionConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=config.tls_ca_file or None)
    if config.tls_cert_file:
        context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    return context


class KafkaSink:
    """Publishes records to ``config.topic``."""

    def __init__(self, config: KafkaSinkConfig, formatter: Formatter) -> None:
        self.name = config.name
        self._config = config
        self._format = formatter
        # producer_options resolves secrets now: a missing one fails at start
        self._producer = LazyProducer(producer_options(config), config.timeout_s)
        self._tail = TopicTail(config) if config.dedupe_tail else None
        # a re-sent record is skipped here, so the outbox may acknowledge a round at once
        self.resends_deduplicated = self._tail is not None

    async def deliver(self, record: dict[str, Any]) -> None:
        """Send one message and wait for the broker's acknowledgement (all replicas);
        return at once when the topic's tail already holds the chain."""
        value = orjson.dumps(self._format(record))
        key = str(record[self._config.key]).encode()
        try:
            producer = await self._producer.get()  # first: it names a connect failure
            if self._tail is not None and await self._tail.holds(str(record["id"])):
                log.info("kafka_sink_already_written", sink=self.name, chain_id=record["id"])
                return
            async with asyncio.timeout(self._config.timeout_s):
                await producer.send_and_wait(
                    self._config.topic, value, key=key, headers=self._headers(record)
                )
        except _PERMANENT as exc:
            raise PermanentDeliveryError(f"kafka refused the record: {exc!r}") from None
        except (KafkaError, TimeoutError, OSError) as exc:
            await self._producer.discard()
            if self._tail is not None:
                self._tail.stale()  # it may have been written: look again before a retry
            raise TransientDeliveryError(unavailable(exc)) from None
        if self._tail is not None:
            self._tail.add(str(record["id"]))

    def _headers(self, record: dict[str, Any]) -> list[tuple[str, bytes]]:
        return [
            ("schema", schema_of(self._config.format).encode()),
            ("chain_id", str(record["id"]).encode()),
            ("rule", str(record["rule"]).encode()),
            ("severity", str(record["severity"]).encode()),
        ]

    async def close(self) -> None:
        """Flush and stop the producer (bounded: a dead broker cannot hang shutdown)."""
        await self._producer.discard()


class TopicTail:
    """The chain ids in the last ``dedupe_tail`` messages of each partition of the topic,
    read when :meth:`holds` first needs them and again after :meth:`stale`."""

    def __init__(self, config: KafkaSinkConfig) -> None:
        self._config = config
        self._ids: set[str] | None = None

    def stale(self) -> None:
        self._ids = None

    def add(self, chain_id: str) -> None:
        if self._ids is not None:
            self._ids.add(chain_id)

    async def holds(self, chain_id: str) -> bool:
        if self._ids is None:
            async with asyncio.timeout(self._config.timeout_s):
                self._ids = await self._read()
        return chain_id in self._ids

    async def _read(self) -> set[str]:
        consumer = AIOKafkaConsumer(
            **connection_options(self._config), group_id=None, enable_auto_commit=False
        )
        try:
            await consumer.start()
            return await self._read_with(consumer)
        finally:
            await stop_quietly(consumer)

    async def _read_with(self, consumer: AIOKafkaConsumer) -> set[str]:
        topic = self._config.topic
        numbers = consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
        partitions = [TopicPartition(topic, n) for n in sorted(numbers)]
        if not partitions:
            return set()
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        left = {}
        for partition in partitions:
            first = max(starts[partition], ends[partition] - self._config.dedupe_tail)
            if first < ends[partition]:
                consumer.seek(partition, first)
                left[partition] = ends[partition]
        found: set[str] = set()
        while left:
            batch = await consumer.getmany(*left, timeout_ms=500)
            for partition, messages in batch.items():
                for message in messages:
                    chain_id = dict(message.headers or ()).get("chain_id")
                    if chain_id is not None:
                        found.add(chain_id.decode(errors="replace"))
                if await consumer.position(partition) >= left[partition]:
                    del left[partition]
        return found


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """The topic's partitions after a metadata refresh (none: the topic does not exist
    yet, so nothing can be in it)."""
    await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
    return consumer.partitions_for_topic(topic) or set()


class LazyProducer:
    """An aiokafka producer started on first use and dropped after a failure.

    Shared by the sink and the relay: both call :meth:`get` before sending and
    :meth:`discard` after a transient failure, so the next send starts a fresh producer
    instead of one with stale connections and sequence numbers.
    """

    def __init__(self, options: dict[str, Any], start_timeout_s: float) -> None:
        self._options, self._timeout_s = options, start_timeout_s
        self._producer: AIOKafkaProducer | None = None

    async def get(self) -> AIOKafkaProducer:
        """The running producer, started now (within the deadline) if there is none."""
        if self._producer is None:
            producer = AIOKafkaProducer(**self._options)
            try:
                async with asyncio.timeout(self._timeout_s):
                    await producer.start()
            except KafkaConnectionError:
                await stop_quietly(producer)
                reason = await probe(self._options, min(self._timeout_s, _PROBE_TIMEOUT_S))
                servers = ",".join(self._options["bootstrap_servers"])
                log.error("kafka_connect_failed", servers=servers, reason=reason)
                raise KafkaConnectFailed(f"cannot connect to {servers}: {reason}") from None
            except BaseException:
                await stop_quietly(producer)  # a half-started producer holds sockets
                raise
            self._producer = producer
        return self._producer

    async def discard(self) -> None:
        """Stop and forget the producer, if any; the next :meth:`get` starts a new one."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await stop_quietly(producer)


def unavailable(exc: BaseException) -> str:
    """The retry message for a failed send: our connect diagnosis, else only the error type."""
    # only our own connect failure is worded by us; other errors may quote a payload
    detail = str(exc) if isinstance(exc, KafkaConnectFailed) else type(exc).__name__
    return f"kafka unavailable: {detail}"


async def probe(options: dict[str, Any], timeout_s: float) -> str:
    """Why the bootstrap servers in ``options`` refuse a client: the first one's error."""
    connect = {key: options[key] for key in _PROBE_KEYS if key in options}
    for server in options["bootstrap_servers"]:
        host, _, port = server.rpartition(":")
        try:
            async with asyncio.timeout(timeout_s):
                conn = await create_conn(host.strip("[]"), int(port), **connect)
        except (KafkaError, OSError, TimeoutError, ValueError) as exc:
            return explain(exc, options)
        conn.close()
    return "the servers accept connections but returned no usable cluster metadata"


def explain(exc: BaseException, options: dict[str, Any]) -> str:
    """A connect error in an operator's words, with the config key to check."""
    mechanism, user = options.get("sasl_mechanism"), options.get("sasl_plain_username")
    if isinstance(exc, SaslAuthenticationFailed):
        return f"SASL {mechanism} authentication as {user!r} failed (check sasl_password)"
    if isinstance(exc, UnsupportedSaslMechanismError):
        return f"the broker does not enable SASL mechanism {mechanism} (check sasl_mechanism)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"broker certificate not trusted: {exc.verify_message} (check tls_ca_file)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if options.get("ssl_context") is not None and "closed" in str(exc):
        # Kafka closes a TLS connection without an alert when a client certificate is
        # missing or untrusted, so this is the only symptom the client sees.
        return "the broker closed the TLS connection (client certificate required or refused?)"
    return f"{type(exc).__name__}: {exc}"


async def stop_quietly(
    client: AIOKafkaProducer | AIOKafkaConsumer, timeout_s: float = _STOP_TIMEOUT_S
) -> None:
    """Stop a producer or consumer within ``timeout_s``, ignoring Kafka, socket and
    timeout errors (an ``asyncio.timeout``: it never swallows a cancellation).

    Best effort on purpose: every caller keeps what Kafka has not acknowledged (the
    outbox, the relay's queue, uncommitted offsets) and sends or reads it again.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await client.stop()
    except (KafkaError, TimeoutError, OSError):
        pass
