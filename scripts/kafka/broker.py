"""A single-node KRaft Apache Kafka broker on loopback, from the jars fetch.sh cached.

Used by the test fixtures (``KafkaBroker(workdir).start()`` … ``stop()`` … ``start()``:
the same ports and log directory survive a restart, which the outage tests rely on) and
by hand: ``python scripts/kafka/broker.py`` runs one in the foreground until Ctrl-C.

The broker is combined broker+controller (``process.roles=broker,controller``) with a
static one-voter quorum, formatted once with ``kafka.tools.StorageTool``.
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIBS = Path(os.environ.get("KAFKA_CACHE_DIR", REPO / ".cache" / "kafka")) / "libs"
READY_TIMEOUT_S = 60.0


class BrokerError(RuntimeError):
    """The broker could not be started; the message says why (with its log's tail)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class KafkaBroker:
    """One broker process; ``bootstrap`` is ``127.0.0.1:PORT``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port, self.controller_port = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
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
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
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
        }
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()), encoding="utf-8")
        return path

    def _format(self, properties: Path) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        command = self._java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}")
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
