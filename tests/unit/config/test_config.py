"""The service config: file, environment, flags, validation messages, masking, docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector import config as cfg


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "detector.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_without_a_file() -> None:
    config = cfg.load(environ={})
    assert config.http.listen == ""
    assert config.buffer.max_events == 10_000
    assert config.sources.falco_http.max_body_bytes == 1 << 20
    assert config.output == "-"


def test_file_values_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "http: {listen: '127.0.0.1:8080'}\n"
        "sources:\n  audit_file: {path: /var/log/audit.log, start_at: end}\n"
        "buffer: {max_events: 500}\n",
    )
    config = cfg.load(path, environ={})
    assert config.http.listen == "127.0.0.1:8080"
    assert config.sources.audit_file.start_at == "end"
    assert config.buffer.max_events == 500


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http: {listn: x}\n", "http.listn: {path}: unknown config key"),
        ("buffer: {max_events: 0}\n", "buffer.max_events: {path}: Expected `int` >= 1"),
        ("http: {listen: nonsense}\n", "http: {path}: listen must be HOST:PORT"),
        ("sources: {falco_file: {start_at: middle}}\n", "sources.falco_file: {path}: start_at"),
        ("http: {tls: {cert_file: a.pem}}\n", "http.tls: {path}: cert_file and key_file"),
        ("- a\n- b\n", "--config: {path}: must hold a mapping"),
        ("http: [\n", "--config: {path}: not valid YAML"),
    ],
)
def test_bad_files_name_the_key_and_why(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(cfg.ConfigError) as raised:
        cfg.load(path := write(tmp_path, text), environ={})
    assert str(raised.value).startswith(message.format(path=path))
    assert "\n" not in str(raised.value)  # one problem, one line


def test_every_bad_section_is_reported_at_once(tmp_path: Path) -> None:
    text = "http: {listn: x}\nbuffer: {max_events: 0}\nsinks: [{type: webhook, url: ftp://x}]\n"
    path = write(tmp_path, text)
    with pytest.raises(cfg.ConfigError) as raised:
        cfg.load(path, environ={"DETECTOR_NOPE": "1"})
    assert str(raised.value).splitlines() == [
        "nope: environment variable DETECTOR_NOPE: unknown config key",
        f"http.listn: {path}: unknown config key",
        f"buffer.max_events: {path}: Expected `int` >= 1",
        f"sinks[0].url: {path}: Expected `str` matching regex '^https?://'",
    ]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match="cannot read config file"):
        cfg.load(str(tmp_path / "absent.yaml"), environ={})


def test_environment_overrides_file_with_typed_values(tmp_path: Path) -> None:
    path = write(tmp_path, "sources: {falco_http: {max_body_bytes: 4096}}\n")
    environ = {
        "DETECTOR_SOURCES__FALCO_HTTP__MAX_BODY_BYTES": "8192",
        "DETECTOR_SOURCES__K8S_AUDIT__ENABLED": "false",
        "DETECTOR_ENGINE__RULES": "[/etc/a.yaml, /etc/b.yaml]",
        "DETECTOR_SHUTDOWN_GRACE_S": "2.5",
        "UNRELATED": "x",
    }
    config = cfg.load(path, environ=environ)
    assert config.sources.falco_http.max_body_bytes == 8192
    assert config.sources.k8s_audit.enabled is False
    assert config.engine.rules == ["/etc/a.yaml", "/etc/b.yaml"]
    assert config.shutdown_grace_s == 2.5


def test_unknown_environment_key_names_the_variable() -> None:
    with pytest.raises(
        cfg.ConfigError,
        match="http.listne: environment variable DETECTOR_HTTP__LISTNE: unknown config key",
    ):
        cfg.load(environ={"DETECTOR_HTTP__LISTNE": "x"})


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(
        cfg.ConfigError,
        match="buffer.max_events: environment variable DETECTOR_BUFFER__MAX_EVENTS: ",
    ):
        cfg.load(environ={"DETECTOR_BUFFER__MAX_EVENTS": "lots"})


def test_flags_win_over_environment_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "http: {listen: '0.0.0.0:1'}\n")
    config = cfg.load(
        path,
        environ={"DETECTOR_HTTP__LISTEN": "0.0.0.0:2"},
        overrides={"http.listen": "127.0.0.1:3", "sources.falco_grpc.endpoint": "unix:///x.sock"},
    )
    assert config.http.listen == "127.0.0.1:3"
    assert config.sources.falco_grpc.endpoint == "unix:///x.sock"


def test_every_flag_is_an_alias_of_a_real_key() -> None:
    assert set(cfg.FLAG_KEYS.values()) <= cfg.known_keys()


def test_masked_config_hides_secrets_and_keeps_paths() -> None:
    config = cfg.load(
        environ={
            "DETECTOR_HTTP__BEARER_TOKEN": "tok-123",
            "DETECTOR_SINKS": "[{type: slack, webhook_url: 'https://hooks.example/T/B/X'}]",
            "DETECTOR_SOURCES__FALCO_GRPC__KEY": "/etc/falco/client.key",
        }
    )
    shown = cfg.masked(config)
    assert shown["http"]["bearer_token"] == cfg.MASK
    assert shown["sinks"][0]["webhook_url"] == cfg.MASK
    assert shown["sources"]["falco_grpc"]["key"] == "/etc/falco/client.key"
    assert "tok-123" not in repr(shown) and "hooks.example" not in repr(shown)


def test_split_listen() -> None:
    assert cfg.split_listen("127.0.0.1:80") == ("127.0.0.1", 80)
    assert cfg.split_listen("[::1]:8080") == ("::1", 8080)
    assert cfg.split_listen(":9") == ("0.0.0.0", 9)
    with pytest.raises(ValueError, match="HOST:PORT"):
        cfg.split_listen("localhost")


def test_configuration_doc_lists_every_key() -> None:
    doc = Path(__file__).parents[3] / "docs" / "configuration.md"
    assert cfg.render_reference() in doc.read_text(), (
        "docs/configuration.md is stale: paste `python -m detector.config` output into it"
    )
