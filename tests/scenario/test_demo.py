"""``make demo > chains.jsonl`` leaves nothing but chain records in the file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_make_demo_writes_only_chains_to_stdout() -> None:
    make = shutil.which("make")
    assert make is not None, "make is needed to run the documented demo"
    # As a user types it: not inside another make (whose MAKELEVEL adds directory lines).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    done = subprocess.run(
        [make, "demo"], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["schema"] for r in records} == {"lateral-movement-chain/v1"}
    assert len(records) == 6  # one chain per built-in rule in the bundled scenario
    assert "scripts/demo.sh" not in done.stdout
    assert "replay:" in done.stderr  # the summary went to stderr
