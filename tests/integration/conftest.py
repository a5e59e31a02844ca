"""Shared by every integration test: the attack scenario's times follow the clock, and the
real single-node Kafka broker (scripts/kafka/broker.py) for every tier that needs one
(sinks, relay, scale-out workers).

The broker is session-scoped: started once (about 3 s), restarted by tests that simulate
an outage. If it cannot start, every test that uses it fails with the broker's own reason.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.run import scenario


@pytest.fixture(autouse=True)
def _scenario_now() -> None:
    scenario.rebase()  # live inputs judge stamps against the receiving clock


_MODULE_NAME = "kafka_test_broker"
_BROKER_PY = Path(__file__).resolve().parents[2] / "scripts" / "kafka" / "broker.py"


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


def start_broker(broker: Any, what: str) -> None:
    """Start ``broker``, or fail the tests that need it with the broker's reason. A start
    interrupted by the test's timeout kills the JVM: none outlives the run."""
    module = _load_broker_module()
    try:
        broker.start()
    except module.BrokerError as exc:
        pytest.fail(f"{what} could not start: {exc}")
    except BaseException:
        broker.stop(kill=True)
        raise


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    broker = _load_broker_module().KafkaBroker(tmp_path_factory.mktemp("kafka"))
    start_broker(broker, "Kafka broker")
    yield broker
    broker.stop()


@pytest.fixture
def kafka(kafka_broker: Any) -> Any:
    """The broker, running (a previous test may have stopped it)."""
    if not kafka_broker.running:
        kafka_broker.start()
    return kafka_broker
