"""Shared by every integration test: the attack scenario's times follow the clock."""

from __future__ import annotations

import pytest

from tests.integration.run import scenario


@pytest.fixture(autouse=True)
def _scenario_now() -> None:
    scenario.rebase()  # live inputs judge stamps against the receiving clock
