"""``detector replay`` end to end in-process: output, stderr reports and exit codes."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from detector.cli import main
from detector.commands import load_commands
from tests.unit.cli.test_inputs import _alert


def test_registry_holds_replay() -> None:
    commands = load_commands()
    assert "replay" in commands
    assert commands["replay"].name == "replay"


def test_bad_lines_are_reported_and_run_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text(_alert(1) + "\n{broken\n" + _alert(2) + "\n")
    assert main(["replay", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""  # two unrelated alerts make no chain
    assert f"{path}:2: malformed_json:" in captured.err
    assert "bad lines:        malformed_json=1" in captured.err
    assert "events by source: falco=2" in captured.err
    assert "events/s" in captured.err


def test_chain_records_go_to_output_file(tmp_path: Path) -> None:
    # internal-fanout: one pod, ten distinct internal endpoints within 60 s
    lines = []
    for i in range(10):
        doc = json.loads(_alert(10 + i, rule="LMD Tool Connected to Cluster Internal Address"))
        doc["output_fields"].update({"fd.sip": f"10.9.0.{i}", "fd.sport": 80})
        lines.append(json.dumps(doc))
    path = tmp_path / "fanout.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "chains.jsonl"
    assert main(["replay", "--quiet", "--output", str(out), str(path)]) == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["schema"] == "lateral-movement-chain/v1"
    assert record["rule"] == "internal-fanout"
    assert record["entities"]["pods"] == ["shop/frontend-7d9f"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lateness", "soon"], "bad duration"),
        (["--allowlist", "/nonexistent/allow.yaml"], "cannot read allowlist"),
        (["--output", "/nonexistent/dir/out.jsonl"], "cannot write"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(_alert(1) + "\n")
    assert main(["replay", *extra, str(path)]) == 2
    assert message in capsys.readouterr().err


def test_missing_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_unknown_allowlist_key_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    allow = tmp_path / "allow.yaml"
    allow.write_text("namespace: [ci]\n")  # singular: a typo must not silently allow nothing
    data = tmp_path / "a.jsonl"
    data.write_text(_alert(1) + "\n")
    assert main(["replay", "--allowlist", str(allow), str(data)]) == 2
    assert "bad allowlist" in capsys.readouterr().err


def test_rule_errors_exit_2_with_locations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text("rules:\n  - id: Not Valid\n    steps: 3\n")
    data = tmp_path / "a.jsonl"
    data.write_text(_alert(1) + "\n")
    assert main(["replay", "--rules", str(rules), str(data)]) == 2
    err = capsys.readouterr().err
    assert f"{rules}:" in err and "rule error" in err


def test_argparse_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["replay"])
    assert info.value.code == 2


def test_closed_stdout_exits_quietly(tmp_path: Path) -> None:
    # `detector replay ... | head -1`: a real process whose reader leaves after one line.
    # A pipe gets the records once the replay is done (a restart must not leave half an
    # output), so the stream has more chains than a pipe buffer (64 KiB) holds.
    import subprocess
    import sys

    from bench.generate import Params, generate

    generate(tmp_path, Params(events=12_000, pods=50, chains=96, rate=10.0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "detector.cli", "replay", "--quiet", str(tmp_path / "stream.jsonl")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes away with chains still to write
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert first.startswith(b'{"schema":"lateral-movement-chain/v1"')
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_an_in_process_replay_gives_the_collector_back_as_it_was(tmp_path: Path) -> None:
    # the replay freezes what exists and collects its young generation rarely; a caller
    # in the same process (the bench, these tests) gets the thresholds and no frozen
    # objects back, also when the replay ends early (an unreadable output path)
    path = tmp_path / "alerts.jsonl"
    path.write_text(_alert(1) + "\n")
    before = gc.get_threshold()
    assert main(["replay", str(path), "--output", str(tmp_path / "out.jsonl"), "--quiet"]) == 0
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)
    assert main(["replay", str(path), "--output", str(tmp_path / "no" / "out.jsonl")]) == 2
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)
