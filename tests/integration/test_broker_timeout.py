"""A real Kafka broker whose start is cut short (as by the test's timeout, which raises
in the main thread wherever it is): its JVM does not outlive the run. The fixtures start
brokers before they yield, so no teardown would stop one (``start_broker`` does)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from tests.integration.conftest import _load_broker_module, start_broker
from tests.unit.test_timeouts import _alive

pytestmark = pytest.mark.integration


class Interrupted(BaseException):
    """Stands in for pytest-timeout's Failed (a BaseException, raised by a signal)."""


@pytest.fixture
def interrupt_in() -> Iterator[threading.Timer]:
    """SIGUSR1 to this process 0.5 s after the timer's ``start()`` raises
    :class:`Interrupted` where it lands: in the seconds-long wait for the JVM, not in the
    fork before it (SIGALRM is pytest-timeout's own)."""

    def raise_it(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, raise_it)
    timer = threading.Timer(0.5, signal.raise_signal, (signal.SIGUSR1,))
    try:
        yield timer
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)


def test_a_broker_start_cut_short_kills_its_jvm(
    tmp_path: Path, interrupt_in: threading.Timer
) -> None:
    broker = _load_broker_module().KafkaBroker(tmp_path / "kafka")
    broker.start()  # formatted once: the next start is the JVM's alone (seconds)
    broker.stop()
    interrupt_in.start()
    with pytest.raises(Interrupted):
        start_broker(broker, "Kafka broker")
    assert not broker.running
    assert not any(_alive(pid) for pid in _jvms_in(tmp_path / "kafka"))


def _jvms_in(workdir: Path) -> list[int]:
    """Processes whose command line names ``workdir`` (the broker's properties file)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(workdir).encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue  # gone meanwhile
    return found
