"""Webhook header values that look like credentials are masked wherever a config is shown."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from detector.logging import REDACTED, get_logger, is_secret_name, redact_secrets
from detector.sinks.config import MASK, DeliveryConfig, WebhookSinkConfig, decode, masked

HEADERS = {
    "Authorization": "Bearer SECRET-auth-1",
    "X-Api-Key": "SECRET-key-2",
    "X-Vault-Token": "SECRET-token-3",
    "Cookie": "session=SECRET-cookie-4",
    "X-Hub-Signature": "SECRET-sig-5",
    "Private-Token": "SECRET-token-6",
    "X-Team": "soc",
    "Accept": "application/json",
}


def _config() -> DeliveryConfig:
    return decode({"sinks": [{"type": "webhook", "url": "https://soc/h", "headers": HEADERS}]})


def test_repr_and_masked_hide_secret_headers_and_keep_the_others() -> None:
    config = _config()
    shown = masked(config)["sinks"][0]["headers"]
    assert shown["X-Team"] == "soc" and shown["Accept"] == "application/json"
    assert all(shown[name] == MASK for name in HEADERS if name not in ("X-Team", "Accept"))
    for text in (repr(config), repr(config.sinks[0]), str(shown)):
        assert "SECRET" not in text
    # the real values are still what the sink sends
    assert isinstance(config.sinks[0], WebhookSinkConfig)
    assert config.sinks[0].headers["Authorization"] == "Bearer SECRET-auth-1"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("Authorization", True),
        ("proxy-authorization", True),
        ("X-Auth-Token", True),
        ("x-api-key", True),
        ("Ocp-Apim-Subscription-Key", True),
        ("X-Amz-Security-Token", True),
        ("Set-Cookie", True),
        ("X-Signature", True),
        ("access_key", True),
        ("sasl_password", True),
        ("X-Team", False),
        ("Content-Type", False),
        ("monkey", False),
        ("Keyboard-Layout", False),
        ("key_file", False),
        ("tls_key_file", False),
    ],
)
def test_one_secret_name_rule(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_logs_use_the_same_rule_for_a_headers_mapping() -> None:
    with capture_logs(processors=[redact_secrets]) as logs:
        get_logger("test").info("sent", headers=dict(HEADERS), detail="with Bearer SECRET-7x")
    assert "SECRET" not in repr(logs)
    assert logs[0]["headers"]["X-Api-Key"] == REDACTED
    assert logs[0]["headers"]["X-Team"] == "soc"
