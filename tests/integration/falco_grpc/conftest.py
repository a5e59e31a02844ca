"""Fixtures for the Falco gRPC consumer tests: socket paths, a PKI, a running consumer.

grpc.aio binds its completion-queue poller to the event loop that was running when the
first channel or server was created in the process; a later test on a fresh loop then
never sees its callbacks. Every test here therefore runs on the one session loop
(``LOOP``), and so do the async fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from correlation.event import Event
from detector.sources.falco_grpc import FalcoGrpcConfig, FalcoGrpcSource
from tests.integration.falco_grpc.certs import Pki, make_pki

LOOP = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def socket_path() -> Iterator[Path]:
    # Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="fg-", dir="/tmp") as directory:
        yield Path(directory) / "falco.sock"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class Consumer:
    """A FalcoGrpcSource running as a task, with the events it emitted."""

    def __init__(self, source: FalcoGrpcSource) -> None:
        self.source = source
        self.events: list[Event] = []
        self.gate = asyncio.Event()  # emit waits on it: clear() simulates a slow consumer
        self.gate.set()
        self.task: asyncio.Task[None] | None = None

    async def emit(self, event: Event) -> None:
        await self.gate.wait()
        self.events.append(event)

    def seqs(self) -> list[int]:
        return [int(event.fields["seq"]) for event in self.events]

    def start(self) -> None:
        self.task = asyncio.create_task(self.source.run(self.emit))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


Start = Callable[..., Consumer]


@pytest_asyncio.fixture(loop_scope="session")
async def consumer() -> AsyncIterator[Start]:
    """Start consumers for a config; every one is cancelled and awaited at teardown."""
    started: list[Consumer] = []

    def start(config: FalcoGrpcConfig) -> Consumer:
        running = Consumer(FalcoGrpcSource(config))
        running.start()
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop()


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``condition`` until true; fail the test after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met within timeout")
        await asyncio.sleep(0.02)
