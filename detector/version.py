"""The installed version of the detector: one place for ``--version``, ``/healthz`` and
``detector_build_info``.

Read from the package metadata (``pyproject.toml``'s ``version``), so a release is one
edit; a source tree that was never installed reports :data:`UNKNOWN` rather than a guess.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Final

DISTRIBUTION: Final = "lateral-chain-detector"
UNKNOWN: Final = "0+unknown"


def detector_version() -> str:
    """The installed distribution's version, e.g. ``"0.1.0"``."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return UNKNOWN


def build_info() -> dict[str, str]:
    """What ``detector_build_info`` labels carry: the version and the Python running it."""
    return {"version": detector_version(), "python": platform.python_version()}
