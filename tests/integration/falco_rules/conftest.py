"""The libsinsp fixture shared by the rule tiers: Debian's sysdig reading the recording.

Fails, never skips, when sysdig is missing: it first runs scripts/ensure-sysdig.sh (as
scripts/test.sh does), then insists on the binary.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from falco_rules.tooling.compile_check import CAPTURE, Compiler

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def compiler() -> Compiler:
    if shutil.which("sysdig") is None:
        subprocess.run([str(ROOT / "scripts" / "ensure-sysdig.sh")], check=False, timeout=900)
    assert CAPTURE.stat().st_size > 0, "the recording must hold events"
    return Compiler()  # raises CompilerUnavailable (a test failure) when still missing
