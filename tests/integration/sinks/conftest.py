"""Fixtures of the sink tests; the plain broker (``kafka``) is tests/integration/conftest.py's.

``secure_kafka`` (module-scoped) is a second broker with SASL, TLS and mTLS listeners; its
certificates come from the falco_grpc tests' throwaway PKI.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import _load_broker_module, start_broker
from tests.integration.falco_grpc.certs import Pki, make_pki


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
    start_broker(broker, "secured Kafka broker")
    yield broker
    broker.stop()
