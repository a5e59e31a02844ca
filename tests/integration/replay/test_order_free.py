"""``detector replay`` does not depend on the order of lines: a fully shuffled stream gives
byte for byte the chains of the sorted one (the shuffled file is sorted on disk), and a
stream within the reorder buffer stays on the fast path. Real CLI, real files in tmp.

The stream is generated here (bench's seeded generator), not committed; 100k events keep
the test quick, the 1e6-line figure is in bench/README.md.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench.generate import Params, generate
from detector.cli import main

EVENTS = 100_000


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    generate(root, Params(events=EVENTS, pods=200, chains=24))
    return root / "stream.jsonl"


def replay(path: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["replay", str(path), "--output", str(out)]) == 0
    return capsys.readouterr().err


def test_shuffled_replay_equals_sorted_replay(
    stream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = stream.read_bytes().splitlines(keepends=True)
    random.Random(11).shuffle(lines)
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_bytes(b"".join(lines))
    sorted_err = replay(stream, tmp_path / "sorted.out", capsys)
    shuffled_err = replay(shuffled, tmp_path / "shuffled.out", capsys)
    expected = (tmp_path / "sorted.out").read_bytes()
    assert expected.count(b"\n") >= 24  # every planted chain (and nothing lost)
    assert (tmp_path / "shuffled.out").read_bytes() == expected
    assert "sorted on disk" not in sorted_err and "late events:      none" in sorted_err
    assert f"sorted on disk:   {shuffled} ({EVENTS:,} events, " in shuffled_err
    assert "starting again with it sorted on disk" in shuffled_err
    assert "late events:      none" in shuffled_err


def test_disorder_within_the_buffer_needs_no_sort(
    stream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = stream.read_bytes().splitlines(keepends=True)
    rng = random.Random(5)
    for start in range(0, len(lines), 500):  # shuffled within blocks of 500 lines
        block = lines[start : start + 500]
        rng.shuffle(block)
        lines[start : start + 500] = block
    local = tmp_path / "local.jsonl"
    local.write_bytes(b"".join(lines))
    err = replay(local, tmp_path / "local.out", capsys)
    replay(stream, tmp_path / "sorted.out", capsys)
    assert "sorted on disk" not in err
    assert (tmp_path / "local.out").read_bytes() == (tmp_path / "sorted.out").read_bytes()


@pytest.fixture(scope="module")
def shuffled(stream: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = stream.read_bytes().splitlines(keepends=True)
    random.Random(3).shuffle(lines)
    path = tmp_path_factory.mktemp("shuffled") / "shuffled.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def test_a_restart_into_dev_null_is_no_error(
    shuffled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # /dev/null seeks but refuses truncate: the restarted attempt spools instead.
    assert main(["replay", str(shuffled), "--output", os.devnull]) == 0
    assert "starting again with it sorted on disk" in capsys.readouterr().err


def test_a_restart_keeps_what_an_appended_output_held(
    stream: Path, shuffled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `detector replay ... >> chains.jsonl`: the restart cuts back to where this replay
    # began writing, not to the start of the file.
    expected = tmp_path / "sorted.out"
    replay(stream, expected, capsys)
    out = tmp_path / "appended.jsonl"
    out.write_bytes(b"earlier line\n")
    with out.open("ab") as sink:
        done = subprocess.run(
            [sys.executable, "-m", "detector.cli", "replay", str(shuffled)],
            stdout=sink,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    assert b"starting again with it sorted on disk" in done.stderr
    assert out.read_bytes() == b"earlier line\n" + expected.read_bytes()
