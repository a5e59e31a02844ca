"""The bundled attack scenario: exactly the expected chains, none from the noise.

Runs ``detector replay`` in-process on examples/attack-scenario (real Falco http_output
alerts, audit log lines and webhook EventLists) with the real engine and built-in rules.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from detector.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "examples" / "attack-scenario"
FILES = sorted(str(p) for p in SCENARIO.glob("*.jsonl"))
EXPECTED = json.loads((SCENARIO / "expected.json").read_text())
SCHEMA = json.loads((ROOT / "docs" / "schema" / "chain-v1.schema.json").read_text())
ALLOWLIST = ["--allowlist", str(SCENARIO / "allowlist.yaml")]


def _replay(tmp_path: Path, *args: str, files: list[str] = FILES) -> list[dict[str, Any]]:
    out = tmp_path / "chains.jsonl"
    assert main(["replay", "--quiet", "--output", str(out), *args, *files]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def _matches(record: dict[str, Any], want: dict[str, Any]) -> bool:
    if record["rule"] != want["rule"]:
        return False
    entities = record["entities"]
    return all(
        set(want.get(kind, ())) <= set(entities.get(kind, ()))
        for kind in ("pods", "service_accounts", "ips")
    )


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return _replay(tmp_path_factory.mktemp("replay"), *ALLOWLIST)


def test_exactly_the_expected_chains(records: list[dict[str, Any]]) -> None:
    assert Counter(r["rule"] for r in records) == Counter(c["rule"] for c in EXPECTED["chains"])
    for want in EXPECTED["chains"]:
        found = [r for r in records if _matches(r, want)]
        assert len(found) == 1, f"expected one {want['rule']} chain for {want['pods']}"
    assert len({r["rule"] for r in records}) == 6  # every chain kind is demonstrated


def test_p_q_r_is_one_incident(records: list[dict[str, Any]]) -> None:
    incident_of: dict[str, set[str]] = {}
    for want in EXPECTED["chains"]:
        (record,) = [r for r in records if _matches(r, want)]
        incident_of.setdefault(want["incident"], set()).add(record["incident"])
    assert all(len(ids) == 1 for ids in incident_of.values())  # stitched
    assert len(set().union(*incident_of.values())) == len(incident_of)  # and kept apart
    paths = [r["path"] for r in records if r["rule"] == "workload-pivot"]
    assert paths == [EXPECTED["incident_paths"]["P-Q-R"]]


def test_records_validate_against_the_published_schema(records: list[dict[str, Any]]) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for record in records:
        validator.validate(record)


def test_no_secret_material_in_the_output(records: list[dict[str, Any]]) -> None:
    text = json.dumps(records)
    assert "eyJ" not in text and "JTI=" not in text


def test_noise_only_fires_without_the_allowlist(tmp_path: Path) -> None:
    records = _replay(tmp_path)
    expected = EXPECTED["chains"] + EXPECTED["without_allowlist_also"]
    assert Counter(r["rule"] for r in records) == Counter(c["rule"] for c in expected)
    for want in EXPECTED["without_allowlist_also"]:
        assert any(_matches(r, want) for r in records), want


def test_same_ids_whatever_the_delivery_order(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    # Shuffle every file's lines (inside the replay's reorder buffer) and list the files
    # in reverse: the same chains with the same ids and incidents must come out.
    shuffled = []
    for index, name in enumerate(reversed(FILES)):
        lines = Path(name).read_text().splitlines()
        random.Random(index).shuffle(lines)
        path = tmp_path / f"{index}-{Path(name).name}"
        path.write_text("\n".join(lines) + "\n")
        shuffled.append(str(path))
    again = _replay(tmp_path, *ALLOWLIST, files=shuffled)
    key = sorted((r["rule"], r["id"], r["incident"]) for r in records)
    assert sorted((r["rule"], r["id"], r["incident"]) for r in again) == key


def test_committed_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    script = SCENARIO / "generate.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True,
                   capture_output=True)  # fmt: skip
    for name in FILES:
        assert (tmp_path / Path(name).name).read_bytes() == Path(name).read_bytes(), name
