"""The external sort: any order of events comes out in ``(time_ns, id)`` order, through
runs on disk merged at most ``FAN_IN`` at a time, leaving nothing behind."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from correlation.event import Event
from correlation.matcher import sort_key
from detector.commands import _spill
from detector.commands._spill import SortStats, sorted_batches


def _events(times: list[int]) -> list[Event]:
    return [Event(time_ns=t, source="k8s_audit", id=f"e{n:04d}") for n, t in enumerate(times)]


def _batches(events: list[Event], size: int) -> list[list[Event]]:
    return [events[start : start + size] for start in range(0, len(events), size)]


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of 7 events, frames of 3, merges of 2: many runs and merge passes from few events."""
    monkeypatch.setattr(_spill, "RUN_EVENTS", 7)
    monkeypatch.setattr(_spill, "FRAME_EVENTS", 3)
    monkeypatch.setattr(_spill, "FAN_IN", 2)


@pytest.mark.usefixtures("small")
@settings(max_examples=100, deadline=None)
@given(times=st.lists(st.integers(0, 30), max_size=80), batch=st.integers(1, 9))
def test_any_order_comes_out_sorted(times: list[int], batch: int) -> None:
    events = _events(times)
    shuffled = events[:]
    random.Random(len(times)).shuffle(shuffled)
    stats = SortStats()
    out = [event for chunk in sorted_batches(_batches(shuffled, batch), stats) for event in chunk]
    assert [sort_key(e) for e in out] == sorted(sort_key(e) for e in events)
    assert stats.events == len(events)


def test_a_merge_reads_at_most_fan_in_runs(
    small: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    open_now = 0
    most = 0
    read_run = _spill._read_run

    def counting(handle: IO[bytes]) -> Iterator[Event]:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        try:
            yield from read_run(handle)
        finally:
            open_now -= 1

    monkeypatch.setattr(_spill, "_read_run", counting)
    events = _events([(n * 37) % 101 for n in range(101)])
    stats = SortStats()
    out = [e for chunk in sorted_batches(_batches(events, 5), stats, str(tmp_path)) for e in chunk]
    assert [sort_key(e) for e in out] == sorted(sort_key(e) for e in events)
    # batches of 5 fill a run at 10 events: 10 runs spilled (merged 2 at a time) + 1 in memory
    assert stats.runs == 11
    assert most == 2
    assert list(tmp_path.iterdir()) == []  # every run and the directory removed


def test_a_reader_that_stops_early_leaves_nothing(small: None, tmp_path: Path) -> None:
    events = _events(list(range(50, 0, -1)))
    batches = sorted_batches(_batches(events, 4), SortStats(), str(tmp_path))
    first = next(batches)
    assert [e.time_ns for e in first] == list(range(1, 51))[: len(first)]
    batches.close()
    assert list(tmp_path.iterdir()) == []
