"""Config keys added by the checkpoint wiring and the Kafka connection split."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector import config as cfg
from detector.sinks.config import KafkaConnectionConfig, KafkaProducerConfig, KafkaSinkConfig


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "detector.yaml"
    path.write_text(text)
    return str(path)


def test_checkpoint_is_on_by_default_next_to_the_outbox() -> None:
    config = cfg.load(environ={})
    assert config.checkpoint.path == "var/engine.ckpt"
    assert Path(config.checkpoint.path).parent == Path(config.outbox.path).parent
    assert config.checkpoint.interval_s == 30.0


def test_checkpoint_can_be_turned_off_and_tuned_from_the_environment() -> None:
    config = cfg.load(
        environ={"DETECTOR_CHECKPOINT__PATH": "", "DETECTOR_CHECKPOINT__INTERVAL_S": "5"}
    )
    assert config.checkpoint.path == "" and config.checkpoint.interval_s == 5.0


def test_checkpoint_interval_must_be_positive() -> None:
    with pytest.raises(cfg.ConfigError, match="checkpoint.interval_s: "):
        cfg.load(environ={"DETECTOR_CHECKPOINT__INTERVAL_S": "0"})


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("relay", "key"),
        ("relay", "min_severity"),
        ("relay", "rules_include"),
        ("sources", "format"),
        ("sources", "name"),
        ("sources", "compression"),  # a consumer decompresses whatever it gets
    ],
)
def test_reused_kafka_structs_reject_keys_that_are_not_theirs(
    tmp_path: Path, where: str, key: str
) -> None:
    section = "relay: {kafka: " if where == "relay" else "sources: {kafka_events: "
    text = f"{section}{{bootstrap_servers: ['k:9092'], {key}: x}}}}\n"
    with pytest.raises(cfg.ConfigError, match=f"\\.{key}: .*: unknown config key"):
        cfg.load(write(tmp_path, text), environ={})


def test_reused_kafka_structs_share_the_connection_keys(tmp_path: Path) -> None:
    text = (
        "mode: relay\n"
        "relay: {kafka: {bootstrap_servers: ['k:9093'], security_protocol: SSL,"
        " tls_ca_file: /ca.pem, compression: gzip}}\n"
        "sources: {kafka_events: {bootstrap_servers: ['k:9093'], client_id: w1}}\n"
    )
    config = cfg.load(write(tmp_path, text), environ={})
    relay, events = config.relay.kafka, config.sources.kafka_events
    assert relay is not None and events is not None
    assert isinstance(relay, KafkaProducerConfig) and not isinstance(relay, KafkaSinkConfig)
    assert isinstance(events, KafkaConnectionConfig) and not isinstance(events, KafkaProducerConfig)
    assert (relay.security_protocol, relay.tls_ca_file, relay.compression) == (
        "SSL",
        "/ca.pem",
        "gzip",
    )
    assert events.client_id == "w1" and relay.client_id == "lateral-chain-detector-relay"


def test_missing_bootstrap_servers_names_the_section(tmp_path: Path) -> None:
    text = "sources: {kafka_events: {topic: t}}\n"
    with pytest.raises(cfg.ConfigError, match="sources.kafka_events needs bootstrap_servers"):
        cfg.load(write(tmp_path, text), environ={})


def test_key_table_has_no_sink_only_keys_outside_sinks() -> None:
    keys = {row[0] for row in cfg.reference_rows()}
    for prefix in ("relay.kafka.", "sources.kafka_events."):
        assert not {prefix + k for k in ("name", "format", "key", "min_severity")} & keys
        assert prefix + "security_protocol" in keys
