"""The detector config files shipped in the manifests load with the real config loader.

`detector.config.load` rejects unknown keys, so this fails the moment a manifest uses a
key the service does not accept (or the service renames one the manifests rely on).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from detector.config import Config, ConfigError, load

KUBE = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"


def _files() -> dict[str, str]:
    configmap = yaml.safe_load((KUBE / "configmap-detector.yaml").read_text())
    data = configmap["data"]
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("name", sorted(_files()))
def test_shipped_config_loads(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(_files()[name])
    config = load(str(path), environ={})
    assert isinstance(config, Config)
    assert config.http.listen


def test_sidecar_listens_where_falco_posts(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.yaml"
    path.write_text(_files()["sidecar.yaml"])
    config = load(str(path), environ={})
    assert config.http.listen.endswith(":8765")
    assert config.sources.falco_http.enabled and not config.sources.k8s_audit.enabled


def test_sidecar_relays_to_the_correlator_service(tmp_path: Path) -> None:
    """Relay mode, to the Service name in the TLS certificate's SANs, with its token."""
    path = tmp_path / "sidecar.yaml"
    path.write_text(_files()["sidecar.yaml"])
    config = load(str(path), environ={"DETECTOR_RELAY__HTTP__BEARER_TOKEN": "t0ken"})
    assert config.mode == "relay" and config.relay.transport == "http"
    assert config.relay.http.endpoint == "https://detector-audit.falco.svc:8443/events"
    assert config.relay.http.ca_file and config.relay.http.bearer_token == "t0ken"
    assert not config.sinks and not config.sources.events.enabled
    correlator = tmp_path / "audit-receiver.yaml"
    correlator.write_text(_files()["audit-receiver.yaml"])
    central = load(str(correlator), environ={})
    assert central.mode == "correlate" and central.sources.events.enabled


def test_audit_receiver_serves_tls_from_the_mounted_secret(tmp_path: Path) -> None:
    path = tmp_path / "audit-receiver.yaml"
    path.write_text(_files()["audit-receiver.yaml"])
    config = load(str(path), environ={"DETECTOR_HTTP__BEARER_TOKEN": "t0ken"})
    assert config.http.tls.cert_file.startswith("/etc/detector/tls/")
    assert config.http.bearer_token == "t0ken"
    assert config.sources.k8s_audit.enabled


@pytest.mark.parametrize("name", ["audit-receiver.yaml"])  # the sidecar relays: no sinks
def test_commented_sink_examples_load_too(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `#>` lines users uncomment must use real keys, like the active ones."""
    text = _files()[name]
    assert "#>" in text
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.invalid/T/B/x")
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    path = tmp_path / name
    path.write_text(text.replace("#>", ""))
    config = load(str(path), environ={})
    kinds = sorted(type(sink).__name__ for sink in config.sinks)
    assert kinds == ["FileSinkConfig", "KafkaSinkConfig", "SlackSinkConfig", "WebhookSinkConfig"]


def test_unknown_key_would_be_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(_files()["sidecar.yaml"] + "no_such_key: 1\n")
    with pytest.raises(ConfigError):
        load(str(path), environ={})
