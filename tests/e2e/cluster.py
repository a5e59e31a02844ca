"""The e2e tier's control plane on loopback: etcd, kube-apiserver and two ``detector run``.

* **etcd**: Debian's ``etcd-server`` (``scripts/kube/ensure-etcd.sh``).
* **kube-apiserver**: built from the Go module proxy and cached by version
  (``scripts/kube/build-apiserver.sh``), started with the *shipped*
  ``deploy/kubernetes/api-server/audit-policy.yaml``, a webhook kubeconfig of the shipped
  shape (TLS with a CA, bearer token from a file) and the shipped batch flags except
  ``--audit-webhook-batch-max-wait`` (1 s instead of 5 s, to keep the tier fast), plus
  ``--audit-log-path`` (JSON lines).
* **detector "webhook"**: ``detector run`` receiving the audit webhook and Falco alerts
  over TLS with a bearer token.
* **detector "logfile"**: ``detector run --audit-file`` tailing the API server's audit log,
  Falco alerts over the same kind of TLS endpoint.

Each part that cannot start fails the session with its reason (and the tail of its log).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from tests.e2e.kube import Kube
from tests.e2e.kubelet import StandInKubelet
from tests.e2e.pki import Authority, Pair, service_account_keys

REPO = Path(__file__).resolve().parents[2]
API_SERVER_DIR = REPO / "deploy" / "kubernetes" / "api-server"
SHIPPED_POLICY = API_SERVER_DIR / "audit-policy.yaml"
SHIPPED_WEBHOOK = API_SERVER_DIR / "audit-webhook-kubeconfig.yaml"
SHIPPED_FLAGS = API_SERVER_DIR / "kube-apiserver-flags.txt"
LATENESS_S = 2.0  # the detectors' disorder bound within an input, every source
# pushed inputs (the webhook, Falco's POSTs) progress with the clock minus their learned
# delivery delay, at least this: generous, so a loaded machine's slow batches are not late
DELIVERY_FLOOR_S = 5.0
STREAM_S = DELIVERY_FLOOR_S + LATENESS_S + 2  # the exec outlasts both: unfolded, it is late
BATCH_MAX_WAIT = "1s"


class StartError(Exception):
    """A part of the control plane did not start; the message says which and why."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def _process(
    name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` with its output in ``log``; terminated (then killed) at the block's end."""
    handle: IO[bytes] = log.open("wb")
    try:
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env)
    except OSError as exc:
        handle.close()
        raise StartError(f"{name}: cannot start {argv[0]}: {exc}") from None
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        handle.close()


def _wait(
    name: str, process: subprocess.Popen[bytes], log: Path, probe: Any, limit_s: float
) -> None:
    """Poll ``probe()`` (True = up) until ``limit_s``; StartError with the log tail if not."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartError(f"{name} exited with {process.returncode}:\n{_tail(log)}")
        if probe():
            return
        time.sleep(0.1)
    raise StartError(f"{name} not ready after {limit_s:.0f}s:\n{_tail(log)}")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _ensure(script: str) -> str:
    """Run a scripts/kube helper; its last stdout line (a path), or StartError."""
    done = subprocess.run(
        [str(REPO / "scripts" / "kube" / script)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise StartError(
            f"scripts/kube/{script} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


@dataclass
class Detector:
    """One ``detector run`` child: where to POST Falco alerts, where its chains go."""

    name: str
    port: int
    output: Path
    log: Path

    @property
    def falco_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/falco"


@dataclass
class Cluster:
    """Handles for the scenarios: API clients, the detectors, the stand-in kubelet."""

    admin: Kube
    ca: Path
    token: str  # the detectors' bearer token (Falco's http_output sends it too)
    webhook: Detector
    logfile: Detector
    audit_log: Path
    kubelet: StandInKubelet
    kubelet_node: str
    workdir: Path


def _detector_config(
    name: str, port: int, tls: Pair, token: str, workdir: Path, audit_file: Path | None
) -> Path:
    config: dict[str, Any] = {
        "http": {
            "listen": f"127.0.0.1:{port}",
            "bearer_token": token,
            "tls": {"cert_file": str(tls.cert), "key_file": str(tls.key)},
        },
        "engine": {
            "allowed_lateness_s": LATENESS_S,
            "lateness_by_source": {"falco": LATENESS_S, "k8s_audit": LATENESS_S},
            "delivery_bound_floor_s": DELIVERY_FLOOR_S,
            "idle_advance_s": 0.2,
        },
        "checkpoint": {"path": str(workdir / f"{name}.ckpt"), "interval_s": 5},
        "outbox": {"path": str(workdir / f"{name}-outbox.sqlite3")},
        "output": str(workdir / f"{name}-chains.jsonl"),
        "log": {"level": "info"},
    }
    if audit_file is not None:
        config["sources"] = {"audit_file": {"path": str(audit_file), "poll_interval_s": 0.2}}
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _webhook_kubeconfig(port: int, ca: Path, token_file: Path, workdir: Path) -> Path:
    """The shipped kubeconfig with this session's address, CA and token file."""
    config = yaml.safe_load(SHIPPED_WEBHOOK.read_text())
    cluster = config["clusters"][0]["cluster"]
    cluster["server"] = f"https://127.0.0.1:{port}/k8s-audit"
    cluster["certificate-authority"] = str(ca)
    config["users"][0]["user"]["tokenFile"] = str(token_file)
    path = workdir / "audit-webhook-kubeconfig.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _shipped_webhook_flags() -> list[str]:
    """The shipped batch flags, batch-max-wait shortened; paths come from this session."""
    flags = []
    for line in SHIPPED_FLAGS.read_text().splitlines():
        flag = line.strip()
        if not flag.startswith("--audit-webhook-") or "config-file" in flag:
            continue
        if flag.startswith("--audit-webhook-batch-max-wait="):
            flag = f"--audit-webhook-batch-max-wait={BATCH_MAX_WAIT}"
        flags.append(flag)
    return flags


def _start_detector(
    stack: ExitStack, name: str, tls: Pair, token: str, workdir: Path, audit_file: Path | None
) -> Detector:
    port = free_port()
    config = _detector_config(name, port, tls, token, workdir, audit_file)
    log = workdir / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    argv = [sys.executable, "-m", "detector.cli", "run", "--config", str(config)]
    process = stack.enter_context(_process(f"detector {name}", argv, log, env))
    _wait(f"detector {name}", process, log, lambda: _listening(port), 30)
    return Detector(name, port, workdir / f"{name}-chains.jsonl", log)


def _start_etcd(stack: ExitStack, workdir: Path) -> int:
    etcd = _ensure("ensure-etcd.sh") or "etcd"
    del etcd  # the script installs it on PATH
    client, peer = free_port(), free_port()
    log = workdir / "etcd.log"
    argv = [
        "etcd", "--name=e2e", f"--data-dir={workdir / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=e2e=http://127.0.0.1:{peer}",
        "--log-level=warn",
    ]  # fmt: skip
    process = stack.enter_context(_process("etcd", argv, log))
    _wait("etcd", process, log, lambda: _listening(client), 20)
    return client


@contextmanager
def control_plane(workdir: Path) -> Iterator[Cluster]:
    """Everything up, in dependency order; torn down in reverse at the block's end."""
    binary = _ensure("build-apiserver.sh")
    pki = Authority(workdir)
    sa_keys = service_account_keys(workdir)
    token = secrets.token_urlsafe(24)
    token_file = workdir / "detector-token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    admin_token = secrets.token_urlsafe(24)
    tokens_csv = workdir / "tokens.csv"
    tokens_csv.write_text(f'{admin_token},admin,admin-uid,"system:masters"\n')
    tokens_csv.chmod(0o600)
    audit_log = workdir / "audit.log"
    audit_log.touch()
    with ExitStack() as stack:
        detector_tls = pki.serving("detector")
        webhook = _start_detector(stack, "webhook", detector_tls, token, workdir, None)
        logfile = _start_detector(stack, "logfile", detector_tls, token, workdir, audit_log)
        kubelet = stack.enter_context(StandInKubelet(pki.serving("kubelet")))
        etcd_port = _start_etcd(stack, workdir)
        serving = pki.serving("apiserver")
        port = free_port()
        kubeconfig = _webhook_kubeconfig(webhook.port, pki.cert, token_file, workdir)
        argv = [
            binary,
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa_keys.cert}",
            f"--service-account-signing-key-file={sa_keys.key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            f"--token-auth-file={tokens_csv}",
            "--authorization-mode=RBAC",
            f"--kubelet-certificate-authority={pki.cert}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--audit-policy-file={SHIPPED_POLICY}",
            f"--audit-log-path={audit_log}", "--audit-log-format=json",
            f"--audit-webhook-config-file={kubeconfig}",
            *_shipped_webhook_flags(),
            "--profiling=false",
        ]  # fmt: skip
        log = workdir / "kube-apiserver.log"
        process = stack.enter_context(_process("kube-apiserver", argv, log))
        admin = Kube.trusting(port, pki.cert, admin_token)
        _wait("kube-apiserver", process, log, lambda: _listening(port), 60)
        problem = admin.ready(60)
        if problem:
            raise StartError(f"kube-apiserver /readyz: {problem}\n{_tail(log)}")
        node = kubelet.register(admin)
        yield Cluster(
            admin=admin,
            ca=pki.cert,
            token=token,
            webhook=webhook,
            logfile=logfile,
            audit_log=audit_log,
            kubelet=kubelet,
            kubelet_node=node,
            workdir=workdir,
        )
