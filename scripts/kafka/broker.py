"""A single-node KRaft Apache Kafka broker on loopback, from the jars fetch.sh cached.

Used by the test fixtures (``KafkaBroker(workdir).start()`` … ``stop()`` … ``start()``:
the same ports and log directory survive a restart, which the outage tests rely on) and
by hand: ``python scripts/kafka/broker.py`` runs one in the foreground until Ctrl-C.

The broker is combined broker+controller (``process.roles=broker,controller``) with a
static one-voter quorum, formatted once with ``kafka.tools.StorageTool``.

``KafkaBroker(workdir, Security(...))`` adds secured listeners next to PLAINTEXT (which
stays for the controller link and inter-broker traffic, so nothing but the client side
needs credentials); ``broker.bootstraps[NAME]`` is each listener's ``HOST:PORT``:

=========  ==============  ====================================================
name       protocol        what a client must bring
=========  ==============  ====================================================
SASL       SASL_PLAINTEXT  a user of ``sasl_users`` via PLAIN, SCRAM-SHA-256/512
SSL        SSL             trust in ``tls_ca`` (server cert verified)
MTLS       SSL             the above plus a client certificate ``tls_ca`` signed
=========  ==============  ====================================================

PLAIN users live in the listener's JAAS line (``user_NAME="PASSWORD"``); SCRAM users are
written into the metadata log at format time (``--add-scram``), as KRaft has no ZooKeeper
to hold them. TLS material is PEM (Kafka 2.7+ reads it natively, no JKS keystores).
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIBS = Path(os.environ.get("KAFKA_CACHE_DIR", REPO / ".cache" / "kafka")) / "libs"
READY_TIMEOUT_S = 60.0
_PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
_SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


class BrokerError(RuntimeError):
    """The broker could not be started; the message says why (with its log's tail)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Security:
    """Secured listeners to add: SASL when ``sasl_users``, SSL and MTLS when ``tls_cert``.

    ``tls_cert`` is the server's PEM certificate chain and ``tls_key`` its unencrypted
    PKCS#8 key; ``tls_ca`` is the PEM CA the MTLS listener trusts for client certificates.
    """

    sasl_users: dict[str, str] = field(default_factory=dict)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None

    def __post_init__(self) -> None:
        if self.tls_cert is not None and (self.tls_key is None or self.tls_ca is None):
            raise BrokerError("Security: tls_cert needs tls_key and tls_ca")

    def listeners(self) -> dict[str, str]:
        """Listener name → security protocol, in a stable order."""
        names = {"SASL": "SASL_PLAINTEXT"} if self.sasl_users else {}
        if self.tls_cert is not None:
            names.update(SSL="SSL", MTLS="SSL")
        return names

    def scram_arguments(self) -> list[str]:
        """``--add-scram`` for every user and both SCRAM mechanisms (format time only)."""
        return [
            f"--add-scram={mechanism}=[name={user},password={password}]"
            for user, password in self.sasl_users.items()
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
        ]


class KafkaBroker:
    """One broker process; ``bootstrap`` is the PLAINTEXT ``127.0.0.1:PORT``."""

    def __init__(self, workdir: Path, security: Security | None = None) -> None:
        self.workdir = workdir
        self.security = security or Security()
        self.port, self.controller_port = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.bootstraps = {"PLAINTEXT": self.bootstrap} | {
            name: f"127.0.0.1:{free_port()}" for name in self.security.listeners()
        }
        self.log_path = workdir / "broker.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._formatted = False
        self._log_offset = 0

    def _java(self, main: str, *args: str) -> list[str]:
        if not any(LIBS.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"no Kafka jars in {LIBS}: run scripts/kafka/fetch.sh")
        heap = ["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
        return ["java", *heap, "-cp", str(LIBS / "*"), main, *args]

    def _write_properties(self) -> Path:
        protocols = {"PLAINTEXT": "PLAINTEXT", **self.security.listeners()}
        advertised = ",".join(f"{name}://{self.bootstraps[name]}" for name in protocols)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"{advertised},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": advertised,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(
                f"{name}:{protocol}" for name, protocol in protocols.items()
            )
            + ",CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "3",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            **self._sasl_properties(),
            **self._tls_properties(),
        }
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()), encoding="utf-8")
        path.chmod(0o600)  # it holds the test users' passwords
        return path

    def _sasl_properties(self) -> dict[str, str]:
        users = self.security.sasl_users
        if not users:
            return {}
        plain_users = " ".join(f'user_{name}="{password}"' for name, password in users.items())
        prefix = "listener.name.sasl"
        return {
            f"{prefix}.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            f"{prefix}.plain.sasl.jaas.config": f"{_PLAIN_MODULE} required {plain_users};",
            f"{prefix}.scram-sha-256.sasl.jaas.config": f"{_SCRAM_MODULE} required;",
            f"{prefix}.scram-sha-512.sasl.jaas.config": f"{_SCRAM_MODULE} required;",
        }

    def _tls_properties(self) -> dict[str, str]:
        security = self.security
        if security.tls_cert is None or security.tls_key is None or security.tls_ca is None:
            return {}
        # A PEM keystore file holds the key followed by its certificate chain.
        keystore = self.workdir / "server-keystore.pem"
        keystore.write_bytes(security.tls_key.read_bytes() + security.tls_cert.read_bytes())
        keystore.chmod(0o600)
        props: dict[str, str] = {}
        for name in ("ssl", "mtls"):
            prefix = f"listener.name.{name}.ssl"
            props[f"{prefix}.keystore.type"] = "PEM"
            props[f"{prefix}.keystore.location"] = str(keystore)
            props[f"{prefix}.truststore.type"] = "PEM"
            props[f"{prefix}.truststore.location"] = str(security.tls_ca)
        props["listener.name.mtls.ssl.client.auth"] = "required"
        return props

    def _format(self, properties: Path) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        command = self._java(
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            *self.security.scram_arguments(),
        )
        result = subprocess.run(  # noqa: S603 - fixed argv
            [*command, "-c", str(properties)], capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            raise BrokerError(f"StorageTool format failed: {result.stdout}{result.stderr}")
        self._formatted = True

    def start(self) -> None:
        """Start (or restart) the broker and wait until it accepts connections."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        properties = self._write_properties()
        if not self._formatted:
            self._format(properties)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()  # readiness is read from this run's lines only
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv
                self._java("kafka.Kafka", str(properties)), stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise BrokerError(f"broker exited ({self._process.returncode}): {self.log_tail()}")
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                if b"Kafka Server started" in log.read():
                    return
            time.sleep(0.2)
        self.stop(kill=True)
        raise BrokerError(f"broker not ready after {READY_TIMEOUT_S}s: {self.log_tail()}")

    def stop(self, kill: bool = False) -> None:
        """Stop the broker: SIGKILL when ``kill`` (an outage), else SIGTERM (clean)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no broker log)"


def main() -> int:
    workdir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / ".cache" / "kafka" / "run"
    broker = KafkaBroker(workdir)
    started = time.monotonic()
    broker.start()
    print(f"kafka ready at {broker.bootstrap} in {time.monotonic() - started:.1f}s", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
