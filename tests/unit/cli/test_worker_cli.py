"""`detector worker` and `detector stitch` validate their configuration before connecting."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.cli import main
from detector.commands import stitch, worker
from detector.config import ConfigError
from detector.preflight import checked


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


def test_each_command_checks_only_what_it_uses_of_a_shared_file(tmp_path: Path) -> None:
    """The scale-out ConfigMap gives workers and the stitcher one file: the outbox is the
    stitcher's (a worker pod has no volume for it), the rules are the workers'."""
    (tmp_path / "a-file").write_text("")  # so the outbox cannot be created under it
    outbox, rules = tmp_path / "a-file" / "outbox.sqlite3", tmp_path / "missing-rules.yaml"
    text = (
        "worker: {bootstrap_servers: ['127.0.0.1:1']}\n"
        f"outbox: {{path: {outbox}}}\n"
        f"engine: {{rules: [{rules}]}}\n"
    )
    path = _config(tmp_path, text)
    with pytest.raises(ConfigError) as worker_problems:
        checked(path, sections=worker.SECTIONS)
    assert [p.key for p in worker_problems.value.problems] == ["engine.rules"]
    with pytest.raises(ConfigError) as stitch_problems:
        checked(path, sections=stitch.SECTIONS)
    assert [p.key for p in stitch_problems.value.problems] == ["outbox.path"]
    with pytest.raises(ConfigError) as all_problems:  # `detector check` and `run`
        checked(path)
    assert sorted(p.key for p in all_problems.value.problems) == ["engine.rules", "outbox.path"]
