"""``detector --version`` prints the installed version, like /healthz and build_info."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys


def test_version_flag_prints_the_installed_version_and_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "detector.cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    want = importlib.metadata.version("lateral-chain-detector")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"detector {want}\n", "")
