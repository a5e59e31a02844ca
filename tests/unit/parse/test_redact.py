"""Credentials typed on command lines never leave the parser; benign lines are unchanged."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from correlation.chain import Chain, ChainStep, to_record
from correlation.event import Event
from detector.cli import main
from detector.parse import parse_audit, parse_falco
from detector.parse.redact import MARK, redact
from tests.unit.parse.test_falco import ALERT

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLWJ5dGVz"
AKID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

# (attacker command line as Falco renders it, the secrets that must not survive)
ATTACKS: list[tuple[str, tuple[str, ...]]] = [
    (f"curl -H Authorization: Bearer {JWT} http://169.254.169.254/", (JWT,)),
    (f"curl -s -H 'Authorization: Bearer {JWT}' https://10.96.0.1/api", (JWT,)),
    ("curl -H Proxy-Authorization: Basic dXNlcjpodW50ZXIy http://x/", ("dXNlcjpodW50ZXIy",)),
    (
        "curl -H X-aws-ec2-metadata-token: AQAEAFwN8m3sLq0tV9== http://169.254.169.254/latest/",
        ("AQAEAFwN8m3sLq0tV9",),
    ),
    ("wget --header=Authorization: Bearer s3cr3t-t0k3n -O- http://x/", ("s3cr3t-t0k3n",)),
    ("wget --http-password=hunter2pw http://x/", ("hunter2pw",)),
    (f"kubectl --token={JWT} get secrets -A", (JWT,)),
    ("kubectl --token opaque-token-value-42 -n kube-system get pods", ("opaque-token-value-42",)),
    (f"AWS_ACCESS_KEY_ID={AKID} AWS_SECRET_ACCESS_KEY={AWS_SECRET} aws s3 ls", (AKID, AWS_SECRET)),
    (f"aws configure set aws_secret_access_key {AWS_SECRET}", (AWS_SECRET,)),
    ("env AWS_SESSION_TOKEN=FwoGZXIvYXdzEJr//sess aws sts get-caller-identity", ("FwoGZXIvYXdz",)),
    (
        "python3 -c import requests;requests.get('https://k/api',"
        "headers={'Authorization':'Bearer pyT0kenLiteral'})",
        ("pyT0kenLiteral",),
    ),
    ("python -c token = 'ghp_abcdef1234567890'; print(token)", ("ghp_abcdef1234567890",)),
    (f"sh -c echo {JWT} > /tmp/t", (JWT,)),
    ("curl http://svc/login?user=a&password=hunter2pw&x=1", ("hunter2pw",)),
    ("curl 'http://svc/cb?access_token=at-123456789&state=1'", ("at-123456789",)),
    ("curl https://admin:hunter2pw@10.0.0.9/", ("hunter2pw",)),
    ("curl -u admin:hunter2pw http://10.0.0.9:8080/", ("hunter2pw",)),
    ("mysql -u root -pS3cretPw -h db shop", ("S3cretPw",)),
    ("sshpass -p hunter2pw ssh root@10.0.0.5", ("hunter2pw",)),
    ("psql postgresql://app:pgS3cret@db:5432/app", ("pgS3cret",)),
    ("vault login -method=token token=hvs.CAESIJ0", ("hvs.CAESIJ0",)),
    ("curl -H X-Api-Key: k-9f8e7d6c http://x/", ("k-9f8e7d6c",)),
    ("curl -H Cookie: session=sess-abc123 http://x/", ("sess-abc123",)),
]

BENIGN = [
    "nmap -sT -p 1-1024 10.128.0.0/24",
    "sh -c id;cat /var/run/secrets/kubernetes.io/serviceaccount/token",
    "curl -X PUT -H X-aws-ec2-metadata-token-ttl-seconds: 21600 http://169.254.169.254/latest/api/token",
    "curl -H Metadata-Flavor: Google http://metadata.google.internal/computeMetadata/v1/",
    "curl -H Metadata: true http://169.254.169.254/metadata/instance?api-version=2021-02-01",
    "mysql -u root -p shop",
    "mysql --password -h db",
    "mkdir -p /tmp/x && ls -pa",
    "docker run -u 1000:1000 alpine",
    "sort --key=2 file",
    "grep -r aws_secret_access_key /root/.aws",
    "cat /etc/passwd",
    "kubectl create token builder -n ci",
    "10.128.2.127:51292->169.254.169.254:80",
    "/api/v1/namespaces/catalog-1/secrets/render-config",
    "/api/v1/namespaces/ci/serviceaccounts/builder/token",
]


def _falco(cmdline: str) -> Event:
    doc: dict[str, Any] = copy.deepcopy(ALERT)
    name, _, args = cmdline.partition(" ")
    doc["output_fields"].update(
        {"proc.name": name, "proc.cmdline": cmdline, "proc.args": args, "fd.name": cmdline}
    )
    return parse_falco(doc)


def _audit_exec(command: str) -> Event:
    query = "&".join(f"command={part}" for part in command.split(" "))
    uri = f"/api/v1/namespaces/pay/pods/api-0/exec?{query}&container=app&stdout=true"
    return parse_audit(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "auditID": "a-1",
            "stage": "ResponseStarted",
            "requestURI": uri,
            "verb": "create",
            "user": {"username": "system:serviceaccount:shop:frontend"},
            "sourceIPs": ["10.0.1.7"],
            "objectRef": {
                "resource": "pods",
                "namespace": "pay",
                "name": "api-0",
                "subresource": "exec",
            },
            "responseStatus": {"code": 101},
            "requestReceivedTimestamp": "2026-11-27T01:02:03.000001Z",
        }
    )


def _everything(event: Event) -> str:
    """The Event as it travels (relay, checkpoints) and as a chain record step."""
    chain = Chain(
        id="c",
        incident="i",
        rule="r",
        title="t",
        severity="high",
        techniques=(),
        steps=(ChainStep(step="s", event=event),),
        entities={},
    )
    return msgspec.json.encode(event).decode() + json.dumps(to_record(chain))


@pytest.mark.parametrize(("command", "secrets"), ATTACKS)
def test_no_secret_survives_a_falco_alert(command: str, secrets: tuple[str, ...]) -> None:
    event = _falco(command)
    travelled = _everything(event)
    for secret in secrets:
        assert secret not in travelled
    assert MARK in event.fields["proc.cmdline"]
    assert MARK in event.summary


@pytest.mark.parametrize(("command", "secrets"), ATTACKS)
def test_no_secret_survives_an_exec_request(command: str, secrets: tuple[str, ...]) -> None:
    event = _audit_exec(command.replace("&", "%26"))
    travelled = _everything(event)
    for secret in secrets:
        assert secret not in travelled
    assert MARK in event.fields["exec.command"]


@pytest.mark.parametrize("command", BENIGN)
def test_benign_lines_are_unchanged(command: str) -> None:
    assert redact(command) == command
    fields = _falco(command).fields
    assert fields["proc.cmdline"] == command
    assert fields.get("proc.args", "") == command.partition(" ")[2]


def test_the_rest_of_the_line_stays_readable() -> None:
    assert redact(f"curl -H Authorization: Bearer {JWT} http://169.254.169.254/") == (
        "curl -H Authorization: Bearer [REDACTED] http://169.254.169.254/"
    )
    assert redact("kubectl --token=abc123def get pods") == "kubectl --token=[REDACTED] get pods"
    # a tool-specific flag counts only for its own pipeline segment
    assert redact("mysql -pS3cret db; mkdir -p /x") == "mysql -p[REDACTED] db; mkdir -p /x"


def test_a_secret_past_the_field_limit_is_redacted_before_the_cut() -> None:
    command = "x" * 1000 + f" --token={JWT}"
    event = _falco(command)
    assert JWT[:20] not in event.fields["proc.cmdline"]


def test_redaction_does_not_split_one_alert_into_two_ids() -> None:
    # http_output and gRPC deliver the same alert: one id, computed after redaction
    doc: dict[str, Any] = copy.deepcopy(ALERT)
    doc["output_fields"]["proc.cmdline"] = f"curl -H Authorization: Bearer {JWT} http://x/"
    grpc = copy.deepcopy(doc)
    grpc["output_fields"] = {k: str(v) for k, v in doc["output_fields"].items() if v is not None}
    grpc["output_fields"].update({"container.privileged": "false"})
    assert parse_falco(doc).id == parse_falco(grpc).id


def test_replay_end_to_end_keeps_the_token_out_of_records_and_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # internal-fanout: one pod, ten internal endpoints in 60 s, each a curl with a token
    lines = []
    for i in range(10):
        doc: dict[str, Any] = copy.deepcopy(ALERT)
        doc.update(rule="LMD Tool Connected to Cluster Internal Address")
        doc["time"] = f"2026-11-27T01:00:{10 + i:02d}.000000001Z"
        doc["output_fields"].update(
            {
                "fd.sip": f"10.9.0.{i}",
                "fd.sport": 80,
                "proc.name": "curl",
                "proc.cmdline": f"curl -H Authorization: Bearer {JWT} http://10.9.0.{i}/",
            }
        )
        lines.append(json.dumps(doc))
    source = tmp_path / "alerts.jsonl"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "chains.jsonl"
    assert main(["replay", "--output", str(out), str(source)]) == 0
    text = out.read_text()
    (record,) = [json.loads(line) for line in text.splitlines()]
    assert record["rule"] == "internal-fanout"
    assert JWT not in text and JWT not in capsys.readouterr().err
    assert all("Bearer [REDACTED]" in step["summary"] for step in record["steps"])


def test_a_proxy_path_is_redacted_and_a_plain_api_path_kept() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    proxied = f"/api/v1/namespaces/pay/services/api:80/proxy/login/token={jwt}"
    plain = "/api/v1/namespaces/pay/secrets/db-token"
    for uri, kept in ((proxied, False), (plain, True)):
        event = parse_audit(
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "auditID": "a-2",
                "stage": "ResponseComplete",
                "requestURI": uri,
                "verb": "get",
                "user": {"username": "system:serviceaccount:shop:frontend"},
                "sourceIPs": ["10.0.1.7"],
                "responseStatus": {"code": 200},
                "requestReceivedTimestamp": "2026-11-27T01:02:03.000001Z",
            }
        )
        assert (event.fields["request_uri"] == uri) is kept
        assert jwt not in msgspec.json.encode(event).decode()
