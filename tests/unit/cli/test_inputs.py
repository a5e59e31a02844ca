"""Replay inputs: time merge across files, reorder buffer, bad lines, gzip, documents."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from detector.commands._inputs import (
    InputStats,
    Ordering,
    OutOfOrder,
    _line_blocks,
    check_paths,
    merged_batches,
    merged_events,
    read_events,
)
from detector.errors import ParseError, UsageError
from tests.unit.parse.test_audit import EVENT
from tests.unit.parse.test_falco import ALERT


def _alert(second: int, rule: str = "LMD Service Account Token Read") -> str:
    return json.dumps(dict(ALERT, rule=rule, time=f"2026-11-27T01:00:{second:02d}.000000001Z"))


def _audit(second: int, audit_id: str) -> dict[str, object]:
    stamp = f"2026-11-27T01:00:{second:02d}.000001Z"
    return dict(EVENT, auditID=audit_id, requestReceivedTimestamp=stamp)


class Bad:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int, str]] = []

    def __call__(self, path: Path, number: int, error: ParseError) -> None:
        self.seen.append((path.name, number, error.reason))


def test_files_merge_by_event_time(tmp_path: Path) -> None:
    falco = tmp_path / "falco.jsonl"
    falco.write_text("\n".join(_alert(s) for s in (1, 4, 9)) + "\n")
    audit = tmp_path / "audit.jsonl"
    audit.write_text("\n".join(json.dumps(_audit(s, f"a{s}")) for s in (2, 3, 10)) + "\n")
    stats, bad = InputStats(), Bad()
    times = [e.time_ns for e in merged_events(check_paths([str(falco), str(audit)]), stats, bad)]
    assert times == sorted(times) and len(times) == 6
    assert stats.events == {"falco": 3, "k8s_audit": 3}
    assert bad.seen == []


def test_reorder_buffer_sorts_small_disorder(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(_alert(s) for s in (5, 3, 4, 1, 2)) + "\n")
    events = list(merged_events([path], InputStats(), Bad(), reorder=8))
    assert [e.time_ns % 10**11 // 10**9 for e in events] == [1, 2, 3, 4, 5]


def test_small_disorder_passes_open_and_a_late_tail_still_sorts_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(_alert(s) for s in (50, 45, 59, 0)) + "\n")
    lateness = Ordering(max_disorder_ns=20 * 10**9)  # open for lags up to 10 s
    # 45 s lags 5 s: passed on as it came; 0 s lags 59 s, more than the lateness: it waits
    # in the buffer until the end of the file, and from there it would be late too
    with pytest.raises(OutOfOrder):
        list(merged_batches([path], InputStats(), Bad(), ordering=lateness))
    path.write_text("\n".join(_alert(s) for s in (50, 45, 59, 49)) + "\n")
    batches = list(merged_batches([path], InputStats(), Bad(), ordering=lateness))
    seconds = [e.time_ns % 10**11 // 10**9 for batch in batches for e in batch]
    assert seconds == [50, 45, 59, 49]  # within the lateness: the engine's to absorb


def test_bad_lines_are_reported_counted_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    internal = json.dumps(
        {"rule": "Falco internal: syscall event drop", "priority": "Debug", "source": "internal",
         "time": "2026-11-27T01:00:00Z", "output_fields": {}}
    )  # fmt: skip
    path.write_text("\n".join([_alert(1), "{not json", "", "[]", internal, _alert(2)]) + "\n")
    stats, bad = InputStats(), Bad()
    events = list(read_events(path, stats, bad))
    assert len(events) == 2
    assert bad.seen == [("mixed.jsonl", 2, "malformed_json"), ("mixed.jsonl", 4, "not_an_object")]
    assert stats.bad == {"malformed_json": 1, "not_an_object": 1}
    assert stats.skipped == {"falco_internal": 1}
    assert stats.lines == 6


def test_event_list_line_with_a_bad_item(tmp_path: Path) -> None:
    body = {"kind": "EventList", "items": [_audit(1, "x"), {"auditID": 7}, _audit(2, "y")]}
    path = tmp_path / "hook.jsonl"
    path.write_text(json.dumps(body) + "\n")
    stats, bad = InputStats(), Bad()
    assert len(list(read_events(path, stats, bad))) == 2
    assert bad.seen == [("hook.jsonl", 1, "bad_type")]


def test_gzip_and_pretty_printed_json(tmp_path: Path) -> None:
    gz = tmp_path / "alerts.jsonl.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(_alert(1) + "\n" + _alert(2) + "\n")
    pretty = tmp_path / "batch.json"
    pretty.write_text(json.dumps({"kind": "EventList", "items": [_audit(3, "z")]}, indent=2))
    stats = InputStats()
    assert len(list(read_events(gz, stats, Bad()))) == 2
    assert [e.id for e in read_events(pretty, stats, Bad())] == ["z/ResponseComplete"]


def test_json_lines_with_json_suffix_read_as_lines(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    path.write_text(_alert(1) + "\n" + _alert(2) + "\n")
    assert len(list(read_events(path, InputStats(), Bad()))) == 2


def test_missing_files_are_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nope.jsonl"):
        check_paths([str(tmp_path / "nope.jsonl")])


def test_lines_across_read_blocks_keep_their_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tiny blocks: every line straddles block boundaries; numbering must not drift
    monkeypatch.setattr("detector.commands._inputs.READ_BYTES", 7)
    monkeypatch.setattr("detector.commands._inputs.BATCH_BYTES", 20)  # several batches
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join([_alert(1), "{broken", "", _alert(2), "[]"]))  # no final newline
    stats, bad = InputStats(), Bad()
    assert len(list(read_events(path, stats, bad))) == 2
    assert bad.seen == [("a.jsonl", 2, "malformed_json"), ("a.jsonl", 5, "not_an_object")]
    assert stats.lines == 5


def test_over_long_line_is_reported_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("detector.commands._inputs.READ_BYTES", 64)
    limit = len(_alert(1)) + 10
    monkeypatch.setattr("detector.commands._inputs.MAX_DOCUMENT_BYTES", limit)
    path = tmp_path / "long.jsonl"
    huge = '{"rule": "' + "x" * (limit * 5) + '"}'  # spans several read blocks
    path.write_text("\n".join([_alert(1), huge, _alert(2)]) + "\n")
    stats, bad = InputStats(), Bad()
    events = list(read_events(path, stats, bad))
    assert len(events) == 2  # the lines around it survive
    assert [(name, number) for name, number, _ in bad.seen] == [("long.jsonl", 2)]
    assert stats.lines == 3


@pytest.mark.parametrize("read_bytes", [1, 3, 16, 1 << 16])
def test_line_blocks_split_like_bytes_split(
    read_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # lines shorter than, equal to and spanning many reads; blank lines; no final newline
    monkeypatch.setattr("detector.commands._inputs.READ_BYTES", read_bytes)
    monkeypatch.setattr("detector.commands._inputs.BATCH_BYTES", 10)
    data = b"\n".join([b"a", b"", b"x" * 40, b"bc", b"", b"", b"y" * 17, b"end"])
    blocks = list(_line_blocks(io.BufferedReader(io.BytesIO(data))))
    assert [line for _, lines in blocks for line in lines] == data.split(b"\n")
    numbers = [first for first, _ in blocks]
    sizes = [len(lines) for _, lines in blocks]
    assert numbers == [1 + sum(sizes[:i]) for i in range(len(blocks))]
