"""Engine checkpoint files are owner-only: they hold full events."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from detector.delivery.checkpoint import Checkpointer, write_atomic


class Engine:
    def snapshot(self) -> bytes:
        return b'{"partials": ["a full event"]}'


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)  # a typical umask: without care the file comes out 0o644
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("loose_umask")
def test_saved_checkpoint_is_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "engine.ckpt"
    Checkpointer(path).save(Engine())
    assert mode(path) == 0o600
    assert Checkpointer(path).read() == Engine().snapshot()


@pytest.mark.usefixtures("loose_umask")
def test_leftover_loose_temp_file_does_not_loosen_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "engine.ckpt"
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_bytes(b"half a checkpoint from a crashed run")
    temp.chmod(0o644)
    write_atomic(path, b"new")
    assert mode(path) == 0o600
    assert path.read_bytes() == b"new"
    assert not temp.exists()
