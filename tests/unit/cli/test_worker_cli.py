"""`detector worker` and `detector stitch` validate their configuration before connecting."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.cli import main


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("command", ["worker", "stitch"])
def test_a_missing_worker_section_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert main([command, "--config", _config(tmp_path, "log: {level: info}\n")]) == 2
    assert "needs a `worker:` section" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["worker", "stitch"])
def test_an_unknown_worker_key_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    text = "worker: {bootstrap_servers: ['127.0.0.1:1'], partitons: 6}\n"
    assert main([command, "--config", _config(tmp_path, text)]) == 2
    assert "partitons" in capsys.readouterr().err


def test_a_bad_rule_file_stops_the_worker_before_it_connects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text("rules: [{id: x}]\n")
    text = "worker: {bootstrap_servers: ['127.0.0.1:1']}\n"
    assert main(["worker", "--config", _config(tmp_path, text), "--rules", str(rules)]) == 2
    assert "bad.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["worker", "stitch"])
def test_files_and_variables_the_worker_section_names_are_checked_before_connecting(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    """As `detector check` reports them: one line each, exit 2 (they used to surface as
    a traceback from the TLS context once the member connected)."""
    ca = tmp_path / "missing-ca.pem"
    monkeypatch.delenv("LCD_TEST_UNSET_PASSWORD", raising=False)
    text = (
        "worker: {bootstrap_servers: ['127.0.0.1:1'], security_protocol: SSL,"
        f" tls_ca_file: {ca}, sasl_password_env: LCD_TEST_UNSET_PASSWORD}}\n"
    )
    assert main([command, "--config", _config(tmp_path, text)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "worker.sasl_password_env: LCD_TEST_UNSET_PASSWORD: environment variable is not set",
        f"worker.tls_ca_file: {ca}: no such file",
    ]
    assert captured.out == ""
