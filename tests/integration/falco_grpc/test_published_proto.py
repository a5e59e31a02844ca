"""Wire compatibility: a server built only from Falco's published proto text.

The ``published/*.proto`` files are compiled with grpcio-tools into a temporary directory
at test time and served by ``published_server.py`` in a separate process, so nothing of
``detector.proto`` is involved on the server side (and the two descriptor pools never
meet). The server fills only the deprecated ``source`` enum (field 3), like Falco before
0.31, which also exercises the consumer's fallback from field 9.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import pytest_asyncio
from grpc_tools import protoc

from detector.sources.falco_grpc import FalcoGrpcConfig
from tests.integration.falco_grpc.conftest import LOOP, Start, eventually

pytestmark = LOOP
HERE = Path(__file__).resolve().parent
COUNT = 6


def _compile_published(out: Path) -> None:
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{HERE / 'published'}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        "schema.proto",
        "outputs.proto",
        "version.proto",
    ]
    assert protoc.main(args) == 0


@pytest_asyncio.fixture(loop_scope="session")
async def published_server(tmp_path: Path, socket_path: Path) -> AsyncIterator[Path]:
    """The subprocess server; fails the test (never skips) when it does not come up."""
    _compile_published(tmp_path)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "published_server.py"),
        str(tmp_path),
        str(socket_path),
        str(COUNT),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        assert line.strip() == b"READY", f"published server did not start: {line!r}"
        yield socket_path
    finally:
        process.terminate()
        await process.wait()


async def test_consumer_reads_a_server_built_from_published_text(
    published_server: Path, consumer: Start
) -> None:
    running = consumer(
        FalcoGrpcConfig(
            endpoint=f"unix://{published_server}", keepalive_s=0.02, keepalive_idle_s=0.05
        )
    )
    await eventually(lambda: len(running.events) == COUNT)
    assert running.seqs() == list(range(COUNT))
    first, second = running.events[0], running.events[1]
    assert first.rule == "Terminal shell in container"
    assert first.priority == "critical"
    assert first.time_ns == 1_700_000_100 * 10**9
    assert first.actor.pod_ref == "prod/api-0"
    # field 9 empty -> the deprecated enum names the source
    assert first.fields["falco.source"] == "syscall"
    assert second.fields["falco.source"] == "k8s_audit"
    assert set(first.tags) == {"shell", "T1059"}
