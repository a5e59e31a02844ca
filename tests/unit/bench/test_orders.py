"""The benchmark's arrival orders: the same lines, disordered like real captures or shuffled."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from bench.dataset import time_ns
from bench.generate import Params, generate
from bench.orders import AUDIT_DELAY_S, ORDERED, disorder, ensure_order, shuffle, stream_name

SMALL = Params(events=6_000, pods=200, rate=25.0, gap_s=20.0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("orders")
    generate(out, SMALL)
    return out


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _time(line: bytes) -> int:
    doc = orjson.loads(line)
    return time_ns(doc.get("time") or doc["requestReceivedTimestamp"])


def test_disordered_keeps_every_line_and_delays_only_audit_lines(dataset: Path) -> None:
    ordered, disordered = (
        _lines(dataset / "stream.jsonl"),
        _lines(ensure_order(dataset, "disordered")),
    )
    assert Counter(disordered) == Counter(ordered) and disordered != ordered
    falco = [line for line in disordered if b'"rule"' in line]
    assert falco == [line for line in ordered if b'"rule"' in line]  # alerts stay in order
    # an audit line arrives at most AUDIT_DELAY_S after its event time: every line written
    # before it has an event time no later than that
    latest, worst = 0, 0
    for line in disordered:
        t = _time(line)
        worst = max(worst, latest - t)
        latest = max(latest, t)
    assert 0 < worst <= AUDIT_DELAY_S * 1e9


def test_shuffled_is_a_permutation_far_from_any_order(dataset: Path) -> None:
    ordered, shuffled = _lines(dataset / "stream.jsonl"), _lines(ensure_order(dataset, "shuffled"))
    assert Counter(shuffled) == Counter(ordered)
    times = [_time(line) for line in shuffled]
    ascending = sum(a <= b for a, b in zip(times, times[1:], strict=False))
    assert 0.4 < ascending / len(times) < 0.6  # a random order: about half the steps go up


@pytest.mark.parametrize("writer", [disorder, shuffle])
def test_orders_are_seeded(dataset: Path, tmp_path: Path, writer: object) -> None:
    digests = set()
    for name in ("a", "b"):
        writer(dataset / "stream.jsonl", tmp_path / name, random.Random(7))  # type: ignore[operator]
        digests.add(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert len(digests) == 1
    assert not list(tmp_path.glob("*.jsonl.*"))  # the shuffle's bucket files are gone


def test_unknown_order_is_a_clear_error(dataset: Path) -> None:
    with pytest.raises(ValueError, match="unknown order"):
        ensure_order(dataset, "sorted")
    assert stream_name(ORDERED) == "stream.jsonl"
