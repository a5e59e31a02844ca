"""Sink/outbox configuration: defaults, validation messages, secrets, flags."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from detector.sinks.config import (
    MASK,
    DeliveryConfig,
    FileSinkConfig,
    add_arguments,
    apply_arguments,
    decode,
    masked,
    resolve_secret,
)
from detector.sinks.kafka import producer_options

BOT = {"type": "slack", "bot_token": "xoxb-1", "channel": "#soc"}


def test_defaults_to_stdout_when_nothing_is_configured() -> None:
    config = decode({})
    assert config.sinks == []
    assert config.effective_sinks == [FileSinkConfig(name="stdout")]
    assert config.outbox.path == "var/outbox.sqlite3"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sinks": [{"type": "carrier-pigeon"}]}, "$.sinks[0].type"),
        ({"sinks": [{"type": "file", "colour": "red"}]}, "unknown field `colour`"),
        ({"sinks": [{"type": "kafka"}]}, "kafka sink needs bootstrap_servers"),
        ({"sinks": [{"type": "webhook", "url": "ftp://x"}]}, "$.sinks[0].url"),
        ({"sinks": [{"type": "file", "min_severity": "urgent"}]}, "$.sinks[0].min_severity"),
        ({"outbox": {"max_records": 0}}, "$.outbox.max_records"),
        ({"sinks": [{"type": "file"}, {"type": "file", "name": "file"}]}, "sinks[1].name"),
        (
            {"outbox": {"path": "/s/o.db"}, "sinks": [{**BOT, "threads_path": "/s/../s/o.db"}]},
            "sinks[0].threads_path '/s/../s/o.db' is also outbox.path",
        ),
        (
            {
                "sinks": [
                    {**BOT, "threads_path": "t.db"},
                    {**BOT, "name": "b", "threads_path": "./t.db"},
                ]
            },
            "sinks[1].threads_path './t.db' is also sinks[0].threads_path",
        ),
    ],
)
def test_bad_config_names_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("$", r"\$").replace("[", r"\[")):
        decode(data)


def test_secrets_are_masked_in_repr_and_printing() -> None:
    config = decode(
        {
            "sinks": [
                {"type": "slack", "webhook_url": "https://hooks.example/T/B/abc"},
                {"type": "webhook", "url": "https://x.example/", "secret": "hunter2"},
            ]
        }
    )
    shown = repr(config) + str(masked(config))
    assert "hunter2" not in shown and "abc" not in shown
    assert masked(config)["sinks"][1]["secret"] == MASK


def test_secret_from_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s"
    path.write_text("from-file\n")
    monkeypatch.setenv("HOOK_SECRET", "from-env")
    assert resolve_secret("", str(path), "", "secret") == "from-file"
    assert resolve_secret("", "", "HOOK_SECRET", "secret") == "from-env"
    with pytest.raises(ValueError, match="secret_env: environment variable NOPE"):
        resolve_secret("", "", "NOPE", "secret")
    with pytest.raises(ValueError, match="give only one"):
        resolve_secret("x", str(path), "", "secret")


def test_flags_add_and_update_sinks(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--kafka-bootstrap=k1:9092,k2:9092",
            "--kafka-topic=soc",
            "--webhook-url=https://soc.example/hook",
            f"--webhook-secret-file={tmp_path / 'secret'}",
            "--outbox=/data/outbox.db",
        ]
    )
    base = decode({"sinks": [{"type": "kafka", "bootstrap_servers": ["old:1"], "key": "incident"}]})
    config = apply_arguments(args, base)
    assert isinstance(config, DeliveryConfig)
    kafka, hook = config.sinks
    assert kafka.bootstrap_servers == ["k1:9092", "k2:9092"]  # type: ignore[union-attr]
    assert kafka.topic == "soc" and kafka.key == "incident"  # type: ignore[union-attr]
    assert hook.url == "https://soc.example/hook"  # type: ignore[union-attr]
    assert config.outbox.path == "/data/outbox.db"


def test_kafka_topic_without_kafka_is_an_error() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(ValueError, match="--kafka-topic needs --kafka-bootstrap"):
        apply_arguments(parser.parse_args(["--kafka-topic=x"]), decode({}))


def test_kafka_producer_options_for_sasl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_PW", "pw")
    config = decode(
        {
            "sinks": [
                {
                    "type": "kafka",
                    "bootstrap_servers": ["k:9093"],
                    "security_protocol": "SASL_SSL",
                    "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_username": "detector",
                    "sasl_password_env": "KAFKA_PW",
                    "compression": "gzip",
                }
            ]
        }
    )
    options = producer_options(config.sinks[0])  # type: ignore[arg-type]
    assert options["acks"] == "all" and options["enable_idempotence"] is True
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_password"] == "pw"
    assert options["compression_type"] == "gzip"
    assert options["ssl_context"] is not None


def test_slack_threads_default_beside_the_outbox_and_follow_the_outbox_flag() -> None:
    bot = {"type": "slack", "bot_token": "xoxb-1", "channel": "#soc"}
    sinks = [bot, {**bot, "name": "mine", "threads_path": "/state/t.db"}, {"type": "slack"}]
    config = decode({"outbox": {"path": "/var/lib/lmd/outbox.sqlite3"}, "sinks": sinks})
    paths = [s.threads_path for s in config.sinks]  # type: ignore[union-attr]
    assert paths == ["/var/lib/lmd/slack-slack.threads", "/state/t.db", ""]  # webhook: none
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    moved = apply_arguments(parser.parse_args(["--outbox=/data/outbox.db"]), config)
    paths = [s.threads_path for s in moved.sinks]  # type: ignore[union-attr]
    assert paths == ["/data/slack-slack.threads", "/state/t.db", ""]
