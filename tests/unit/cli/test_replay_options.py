"""``detector replay``: --no-builtin-rules, inputs that are not regular files, the summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from correlation.rules import builtin_rules_paths, load_rules
from correlation.rules.loader import BUILTIN_DIR
from correlation.state import EngineStats
from detector.cli import main
from detector.commands._inputs import InputStats
from detector.commands._spill import SortStats
from detector.commands._summary import ReplayTotals, render
from tests.unit.cli.test_inputs import _alert

FANOUT_RULE = "LMD Tool Connected to Cluster Internal Address"


def _fanout(endpoints: int) -> str:
    """One pod connecting to ``endpoints`` distinct internal addresses within seconds."""
    lines = []
    for i in range(endpoints):
        doc = json.loads(_alert(10 + i, rule=FANOUT_RULE))
        doc["output_fields"].update({"fd.sip": f"10.9.0.{i}", "fd.sport": 80})
        lines.append(json.dumps(doc))
    return "\n".join(lines) + "\n"


def _copied_rule(tmp_path: Path, min_count: int) -> Path:
    """The shipped internal-fanout rule, copied as a user would, with its own id and count."""
    text = (BUILTIN_DIR / "internal-fanout.yaml").read_text()
    text = text.replace("id: internal-fanout", "id: my-fanout")
    text = text.replace("count: {min: 10,", f"count: {{min: {min_count},")
    path = tmp_path / "my-fanout.yaml"
    path.write_text(text)
    return path


def test_no_builtin_rules_loads_only_the_given_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "fanout.jsonl"
    data.write_text(_fanout(10))  # enough for the built-in rule and for the copy
    rule = _copied_rule(tmp_path, min_count=5)
    assert main(["replay", "--no-builtin-rules", "--rules", str(rule), str(data)]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["rule"] for line in out.splitlines()] == ["my-fanout"]
    assert "  rules loaded (1):\n" in err
    assert f"    my-fanout  {rule}:2\n" in err


def test_builtin_rules_load_next_to_a_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "fanout.jsonl"
    data.write_text(_fanout(10))
    rule = _copied_rule(tmp_path, min_count=5)
    assert main(["replay", "--rules", str(rule), str(data)]) == 0
    out, err = capsys.readouterr()
    assert sorted(json.loads(line)["rule"] for line in out.splitlines()) == [
        "internal-fanout",
        "my-fanout",
    ]
    assert f"  rules loaded ({len(load_rules(builtin_rules_paths())) + 1}):\n" in err


def test_no_builtin_rules_without_rules_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "a.jsonl"
    data.write_text(_alert(1) + "\n")
    assert main(["replay", "--no-builtin-rules", str(data)]) == 2
    assert "--no-builtin-rules needs at least one --rules PATH" in capsys.readouterr().err


def test_dev_null_is_an_empty_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", os.devnull]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("replay: 0 events in ")
    assert "  events by source: none\n" in err


def test_a_fifo_is_read_as_a_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "alerts.json"  # .json: the whole-document probe must not seek a pipe
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("w") as handle:  # blocks until replay opens the other end
            handle.write(_fanout(10))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert main(["replay", str(fifo)]) == 0
    finally:
        writer.join(timeout=10)
    out, err = capsys.readouterr()
    assert [json.loads(line)["rule"] for line in out.splitlines()] == ["internal-fanout"]
    assert "  events by source: falco=10\n" in err


def test_dev_stdin_reads_the_pipe(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "detector.cli", "replay", "/dev/stdin"],
        input=_fanout(10),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["rule"] for line in done.stdout.splitlines()] == ["internal-fanout"]


def test_unusable_inputs_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.jsonl"
    assert main(["replay", str(missing), str(tmp_path)]) == 2
    assert f"no such file: {missing}; is a directory: {tmp_path}" in capsys.readouterr().err


def test_summary_names_late_events_evictions_and_what_to_do() -> None:
    inputs = InputStats(lines=12)
    inputs.events.update({"falco": 7, "k8s_audit": 5})
    totals = ReplayTotals(
        events=12,
        elapsed_s=0.5,
        inputs=inputs,
        chains=Counter({"exec-pivot": 2}),
        rules=load_rules([BUILTIN_DIR / "exec-pivot.yaml"]),
        engine=EngineStats(
            late=3, late_chains_missed=1, evictions={"key_cap": 4, "total_cap": 0}, partials=1
        ),
        lateness="60s",
        sorts={Path("audit.log"): SortStats(events=200_000, runs=7, spilled_bytes=66 << 20)},
    )
    lines = render(totals).splitlines()
    assert lines[0] == "replay: 12 events in 0.50s (24 events/s) from 12 lines"
    assert lines[1:3] == [
        "  rules loaded (1):",
        "    exec-pivot  correlation/rules/exec-pivot.yaml:2",
    ]
    assert "  events by source: falco=7, k8s_audit=5" in lines
    assert "  chains by rule:   exec-pivot=2" in lines
    assert (
        "  late events:      3 (not correlated; 1 would have completed a chain): they arrived "
        "more than --lateness 60s behind the newest event time already read; raise --lateness"
    ) in lines
    assert "  sorted on disk:   audit.log (200,000 events, 7 runs, 66.0 MiB spilled)" in lines
    assert "  evictions:        key_cap=4 (one join key held too many step events)" in lines
    assert (
        "  still open:       1 partial matches, 0 held alerts (unconfirmed at the end of input)"
        in lines
    )
    assert not any("EngineStats" in line for line in lines)
