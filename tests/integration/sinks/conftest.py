"""A real single-node Kafka broker for the sink tests (scripts/kafka/broker.py).

Session-scoped: started once (about 3 s), restarted by tests that simulate an outage.
If it cannot start, every test that uses it fails with the broker's own reason.
``secure_kafka`` (module-scoped) is a second broker with SASL, TLS and mTLS listeners; its
certificates come from the falco_grpc tests' throwaway PKI.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.falco_grpc.certs import Pki, make_pki

_MODULE_NAME = "kafka_test_broker"
_BROKER_PY = Path(__file__).resolve().parents[3] / "scripts" / "kafka" / "broker.py"


def _load_broker_module() -> Any:
    """scripts/kafka/broker.py as a module (loaded once: registered in sys.modules, which
    its dataclasses need to resolve their annotations)."""
    if _MODULE_NAME in sys.modules:
        return sys.modules[_MODULE_NAME]
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, _BROKER_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    module = _load_broker_module()
    broker = module.KafkaBroker(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
    except module.BrokerError as exc:
        pytest.fail(f"Kafka broker could not start: {exc}")
    yield broker
    broker.stop()


@pytest.fixture
def kafka(kafka_broker: Any) -> Any:
    """The broker, running (a previous test may have stopped it)."""
    if not kafka_broker.running:
        kafka_broker.start()
    return kafka_broker


@pytest.fixture
def topic() -> str:
    return f"chains-{uuid.uuid4().hex[:10]}"


# One secured broker for tests/integration/sinks/test_kafka_security.py: listeners SASL
# (PLAIN, SCRAM-SHA-256/512), SSL and MTLS next to PLAINTEXT, so a single JVM (about 8 s)
# serves every security mode instead of one broker per mode.
SASL_USER, SASL_PASSWORD = "detector", "kafka-pw-7f3c9e1a"


@pytest.fixture(scope="module")
def kafka_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA, broker certificate, client certificate and a rogue CA."""
    return make_pki(tmp_path_factory.mktemp("kafka-pki"))


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory, kafka_pki: Pki) -> Iterator[Any]:
    module = _load_broker_module()
    security = module.Security(
        sasl_users={SASL_USER: SASL_PASSWORD},
        tls_cert=kafka_pki.server_cert,
        tls_key=kafka_pki.server_key,
        tls_ca=kafka_pki.ca,
    )
    broker = module.KafkaBroker(tmp_path_factory.mktemp("kafka-secure"), security)
    try:
        broker.start()
    except module.BrokerError as exc:
        pytest.fail(f"secured Kafka broker could not start: {exc}")
    yield broker
    broker.stop()
