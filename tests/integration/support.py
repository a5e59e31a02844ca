"""What the integration tests that run the service share: ports, readiness, processes.

* :func:`free_port` — a loopback TCP port nobody listens on (yet);
* :func:`wait_ready` — poll ``/readyz`` until 200 (a deadline, never a fixed sleep);
* :func:`shipped_engine` — the engine with the built-in rules, as ``detector run`` builds it;
* :func:`stop_in_process` — SIGTERM to this process, which the in-process service handles;
* :func:`serving` — ``serve()`` as a task for the length of a block, ready before it runs;
* :func:`spawn_run` — ``python -m detector.cli run`` as a child, ``DETECTOR_*`` of the
  test environment removed so only the test's own settings apply;
* :func:`stop_process` — SIGTERM a child, collect its stderr, kill it if it hangs;
* :func:`post_json` — one POST that must be accepted; :func:`chains` reads a JSONL output;
* :func:`receiving` — an aiohttp server on loopback with one POST route, for as long as a
  block runs (a webhook or a correlator's ``/events`` standing in for the real one);
* :class:`DetectorProcess` — ``detector run`` as a child that tests kill with SIGKILL and
  start again on the same state (stderr appended to one log file across restarts).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from correlation.engine import Engine, EngineConfig
from correlation.rules import builtin_rules_paths, load_rules
from detector import config as cfg
from detector.commands.run import serve
from detector.metrics import Metrics

JSON = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_ready(url: str, limit_s: float = 20.0) -> None:
    """Return once ``url/readyz`` answers 200; TimeoutError after ``limit_s``."""
    async with asyncio.timeout(limit_s), aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass  # not listening yet
            await asyncio.sleep(0.05)


def chains(path: Path) -> list[dict[str, Any]]:
    """The chain records of a JSON-lines output file."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def shipped_engine() -> Engine:
    """The built-in rules with 60 s of lateness (the scenarios arrive out of order)."""
    return Engine(load_rules(builtin_rules_paths()), EngineConfig(lateness_ns=60 * 10**9))


async def stop_in_process(service: asyncio.Task[Any], limit_s: float = 15.0) -> None:
    """Stop a ``serve()`` task the way an operator would: SIGTERM, then wait for its end."""
    os.kill(os.getpid(), signal.SIGTERM)  # the service's own handler: graceful stop
    async with asyncio.timeout(limit_s):
        await service


@asynccontextmanager
async def serving(
    config: cfg.Config, engine: Engine | None, metrics: Metrics
) -> AsyncIterator[str]:
    """``serve()`` in this loop while the block runs; yields its URL once ready.

    The block's end cancels the service (an abrupt stop, not SIGTERM's graceful one).
    """
    service = asyncio.create_task(serve(config, engine, metrics))
    try:
        url = f"http://{config.http.listen}"
        await wait_ready(url)
        yield url
    finally:
        service.cancel()
        await asyncio.gather(service, return_exceptions=True)


async def spawn_run(
    *args: str, env: dict[str, str], stdout: int = asyncio.subprocess.PIPE
) -> asyncio.subprocess.Process:
    """``detector run ARGS`` as a child; stderr is piped (read it with ``communicate``)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "detector.cli", "run", *args,
        env={**clean, **env}, stdout=stdout, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def post_json(session: aiohttp.ClientSession, url: str, doc: Any) -> None:
    """POST ``doc`` as JSON; the service must accept it (200)."""
    async with session.post(url, data=orjson.dumps(doc), headers=JSON) as response:
        assert response.status == 200, await response.text()


async def stop_process(process: asyncio.subprocess.Process, limit_s: float = 10.0) -> bytes:
    """SIGTERM ``process`` (if still running) and return its stderr; killed after ``limit_s``."""
    try:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(limit_s):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:  # it ignored SIGTERM: no orphan outlives the test
            process.kill()
            await process.wait()
    return stderr or b""


@asynccontextmanager
async def receiving(
    path: str, handle: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> AsyncIterator[str]:
    """Serve ``POST path`` with ``handle`` on a free loopback port; yields its URL."""
    app = web.Application()
    app.router.add_post(path, handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        await runner.cleanup()


class DetectorProcess:
    """``detector run --listen 127.0.0.1:PORT ARGS`` as a child, restartable on one state.

    ``env`` is added to this process's environment. stderr goes to ``log`` (a file: a
    pipe nobody reads would block the child once full), appended across restarts.
    """

    def __init__(
        self, tmp: Path, args: Sequence[str] = (), env: Mapping[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "detector.log"
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn it; returns at once (see :meth:`ready`)."""
        detector = Path(sys.executable).parent / "detector"
        cmd = [str(detector), "run", "--listen", f"127.0.0.1:{self.port}", *self.args]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stderr=log)

    async def ready(self, limit_s: float = 30.0) -> None:
        """Return once ``/readyz`` answers 200; fail at once if the child exited."""
        async with asyncio.timeout(limit_s), aiohttp.ClientSession() as session:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise AssertionError(f"detector run exited: {self.log.read_text()}")
                try:
                    async with session.get(self.url + "/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass  # not listening yet, or killed meanwhile
                await asyncio.sleep(0.05)

    async def started(self) -> None:
        self.start()
        await self.ready()

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the exit code (``-SIGKILL`` after a kill -9). The wait
        is in a thread: the servers this test runs in its loop (a webhook receiver, a
        correlator) go on answering the child while it shuts down."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        return await asyncio.to_thread(self.proc.wait, 30)

    def kill(self) -> None:
        """SIGKILL if still running (also the teardown: no child outlives a test)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
