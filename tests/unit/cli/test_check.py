"""``detector check``, ``detector run`` and ``run --print-config`` on broken configurations.

Each case is a real ``detector`` process: stderr must be exactly the expected lines (one
per problem, key and path first), stdout empty, exit 2, and never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from correlation.rules import builtin_rules_paths, load_rules
from tests.integration.falco_grpc.certs import Pki, make_pki

COMMANDS = {
    "check": ["check"],
    "run": ["run"],
    "print-config": ["run", "--print-config"],
}


def detector(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    return subprocess.run(
        [sys.executable, "-m", "detector.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**clean, **(env or {})},
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _tls(pki: Pki, **changes: str) -> str:
    files = {
        "cert_file": str(pki.server_cert),
        "key_file": str(pki.server_key),
        "client_ca_file": str(pki.ca),
        **changes,
    }
    inner = ", ".join(f"{key}: {value}" for key, value in files.items())
    return f"http: {{listen: '127.0.0.1:0', tls: {{{inner}}}}}\n"


Case = Callable[[Path, Pki], tuple[str, list[str]]]


def missing_tls_cert(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    cert = tmp / "missing.crt"
    return _tls(pki, cert_file=str(cert)), [f"http.tls.cert_file: {cert}: no such file"]


def missing_tls_key(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    key = tmp / "missing.key"
    return _tls(pki, key_file=str(key)), [f"http.tls.key_file: {key}: no such file"]


def missing_ca_file(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    ca = tmp / "missing-ca.crt"
    return _tls(pki, client_ca_file=str(ca)), [f"http.tls.client_ca_file: {ca}: no such file"]


def ca_file_not_pem(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    ca = tmp / "ca.crt"
    ca.write_text("this is not a certificate\n")
    line = f"http.tls.client_ca_file: {ca}: not a PEM CA bundle: "
    return _tls(pki, client_ca_file=str(ca)), [line]


def cert_and_key_do_not_match(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    line = (
        f"http.tls.cert_file: {pki.server_cert}: does not load as a PEM certificate with "
        f"key_file {pki.client_key}: "
    )
    return _tls(pki, key_file=str(pki.client_key)), [line]


def missing_secret_file(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    secret = tmp / "hook-secret"
    text = f"sinks: [{{type: webhook, url: 'https://soc.example/hook', secret_file: {secret}}}]\n"
    return text, [f"sinks[0].secret_file: {secret}: no such file"]


def empty_secret_file(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    secret = tmp / "hook-secret"
    secret.write_text("\n")
    text = f"sinks: [{{type: webhook, url: 'https://soc.example/hook', secret_file: {secret}}}]\n"
    return text, [f"sinks[0].secret_file: {secret}: is empty"]


def slack_without_url(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    text = "sinks: [{type: file, path: '-'}, {type: slack}]\n"
    return text, ["sinks[1].webhook_url: an http(s) URL is required (slack sink)"]


def slack_url_variable_unset(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    text = "sinks: [{type: slack, webhook_url_env: NO_SUCH_SLACK_URL}]\n"
    return text, ["sinks[0].webhook_url_env: NO_SUCH_SLACK_URL: environment variable is not set"]


def kafka_password_file_missing(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    secret = tmp / "kafka-password"
    text = (
        "sinks: [{type: kafka, bootstrap_servers: ['k:9093'], security_protocol: SASL_SSL, "
        f"sasl_mechanism: PLAIN, sasl_username: d, sasl_password_file: {secret}}}]\n"
    )
    return text, [f"sinks[0].sasl_password_file: {secret}: no such file"]


def grpc_tcp_ca_missing(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    ca = tmp / "falco-ca.crt"
    text = (
        f"sources: {{falco_grpc: {{endpoint: 'falco:5060', ca: {ca}, "
        f"cert: {pki.client_cert}, key: {pki.client_key}}}}}\n"
    )
    return text, [f"sources.falco_grpc.ca: {ca}: no such file"]


def bad_rule_file(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    rules = tmp / "mine.yaml"
    rules.write_text("rules:\n  - id: Not Valid\n")
    return f"engine: {{rules: [{rules}]}}\n", [f"engine.rules: {rules}:"]


def bad_allowlist(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    allow = tmp / "allow.yaml"
    allow.write_text("namespace: [ci]\n")
    line = f"engine.allowlist: {allow}: not a valid allowlist: "
    return f"engine: {{allowlist: {allow}}}\n", [line]


def unknown_key(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    return "http: {listn: x}\n", ["http.listn: {config}: unknown config key"]


def outbox_not_creatable(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    blocker = tmp / "not-a-dir"
    blocker.write_text("")
    path = blocker / "outbox.sqlite3"
    return f"outbox: {{path: {path}}}\n", [f"outbox.path: {path}: {blocker} is not a directory"]


def slack_threads_not_creatable(tmp: Path, pki: Pki) -> tuple[str, list[str]]:
    """The default file beside the outbox is checked like the outbox itself."""
    (tmp / "state").mkdir()
    blocker = tmp / "state" / "slack-soc.threads"
    blocker.mkdir()  # a directory where the file would go
    sink = "{type: slack, name: soc, bot_token: xoxb-1, channel: '#soc'}"
    text = f"outbox: {{path: {tmp / 'state' / 'outbox.sqlite3'}}}\nsinks: [{sink}]\n"
    return text, [f"sinks[0].threads_path: {blocker}: is a directory"]


CASES: list[Case] = [
    missing_tls_cert,
    missing_tls_key,
    missing_ca_file,
    ca_file_not_pem,
    cert_and_key_do_not_match,
    missing_secret_file,
    empty_secret_file,
    slack_without_url,
    slack_url_variable_unset,
    kafka_password_file_missing,
    grpc_tcp_ca_missing,
    bad_rule_file,
    bad_allowlist,
    unknown_key,
    outbox_not_creatable,
    slack_threads_not_creatable,
]


def _expect(done: subprocess.CompletedProcess[str], want: list[str]) -> None:
    assert "Traceback" not in done.stderr
    assert (done.returncode, done.stdout) == (2, "")
    got = done.stderr.splitlines()
    assert len(got) == len(want), done.stderr
    for line, expected in zip(got, want, strict=True):
        # a line ending in ": " is completed by a library's own reason (ssl, msgspec, rules)
        assert line.startswith(expected) if expected.endswith(": ") else line == expected


def _write(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "detector.yaml"
    config.write_text(text)
    return config


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_check_reports_each_broken_config_in_one_line(tmp_path: Path, pki: Pki, case: Case) -> None:
    text, want = case(tmp_path, pki)
    config = _write(tmp_path, text)
    want = [line.replace("{config}", str(config)) for line in want]
    if case is bad_rule_file:  # the loader's own location and message follow the key
        done = detector("check", "--config", str(config))
        assert (done.returncode, done.stdout) == (2, "") and "Traceback" not in done.stderr
        assert all(line.startswith(want[0]) for line in done.stderr.splitlines())
        return
    _expect(detector("check", "--config", str(config)), want)


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_run_and_print_config_fail_the_same_way(tmp_path: Path, pki: Pki, command: str) -> None:
    cert, secret = tmp_path / "gone.crt", tmp_path / "gone-secret"
    text = _tls(pki, cert_file=str(cert)) + (
        f"sinks: [{{type: slack}}, {{type: webhook, url: 'https://x/', secret_file: {secret}}}]\n"
    )
    config = _write(tmp_path, text)
    want = [
        f"http.tls.cert_file: {cert}: no such file",
        f"sinks[1].secret_file: {secret}: no such file",
        "sinks[0].webhook_url: an http(s) URL is required (slack sink)",
    ]
    _expect(detector(*COMMANDS[command], "--config", str(config)), want)


def test_structure_errors_of_several_sections_come_together(tmp_path: Path) -> None:
    text = "http: {listn: x}\nbuffer: {max_events: 0}\nsinks: [{type: webhook, url: ftp://x}]\n"
    config = _write(tmp_path, text)
    _expect(
        detector("check", "--config", str(config)),
        [
            f"http.listn: {config}: unknown config key",
            f"buffer.max_events: {config}: Expected `int` >= 1",
            f"sinks[0].url: {config}: Expected `str` matching regex '^https?://'",
        ],
    )


def test_environment_problems_name_the_variable(tmp_path: Path) -> None:
    done = detector("check", env={"DETECTOR_HTTP__LISTNE": "x", "DETECTOR_BUFFER__MAX_EVENTS": "0"})
    _expect(
        done,
        [
            "http.listne: environment variable DETECTOR_HTTP__LISTNE: unknown config key",
            "buffer.max_events: environment variable DETECTOR_BUFFER__MAX_EVENTS: "
            "Expected `int` >= 1",
        ],
    )


def test_a_good_config_passes_with_one_line(tmp_path: Path, pki: Pki) -> None:
    secret = tmp_path / "hook-secret"
    secret.write_text("s3cret\n")
    text = _tls(pki) + (
        f"sinks: [{{type: webhook, url: 'https://soc.example/hook', secret_file: {secret}}},"
        " {type: slack, webhook_url_env: SLACK_URL}]\n"
        f"outbox: {{path: {tmp_path / 'var' / 'outbox.sqlite3'}}}\n"
    )
    config = _write(tmp_path, text)
    done = detector("check", "--config", str(config), env={"SLACK_URL": "https://hooks.slack/x"})
    assert (done.returncode, done.stderr) == (0, "")
    rules = len(load_rules(builtin_rules_paths()))
    assert done.stdout == f"ok: {config}: mode correlate, {rules} rules, sinks: webhook, slack\n"
    assert not (tmp_path / "var").exists()  # check creates nothing


def test_a_worker_section_is_named_on_the_line(tmp_path: Path) -> None:
    config = _write(tmp_path, "worker: {bootstrap_servers: ['127.0.0.1:1'], group_id: g1}\n")
    done = detector("check", "--config", str(config))
    assert (done.returncode, done.stderr) == (0, "")
    rules = len(load_rules(builtin_rules_paths()))
    assert done.stdout == (
        f"ok: {config}: mode correlate, {rules} rules, sinks: output;"
        " worker: group g1, topic detector-events\n"
    )


def test_check_takes_rules_like_run(tmp_path: Path) -> None:
    rules = tmp_path / "missing-rules.yaml"
    done = detector("check", "--rules", str(rules))
    _expect(done, [f"engine.rules: {rules}:0: no such rule file or directory"])


def test_run_refuses_a_taken_listen_address_in_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        env = {
            "DETECTOR_OUTBOX__PATH": str(tmp_path / "outbox.sqlite3"),
            "DETECTOR_CHECKPOINT__PATH": "",
        }
        done = detector("run", "--listen", listen, "--output", str(tmp_path / "c.jsonl"), env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"http.listen: {listen}: cannot listen: ")
