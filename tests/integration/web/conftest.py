from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.web.live import Live, running


@pytest.fixture(scope="package")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One ``detector run`` with the scenario in it, shared by the API and browser tests."""
    with running(tmp_path_factory.mktemp("live")) as service:
        yield service
