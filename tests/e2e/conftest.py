"""One control plane for the e2e tier (etcd, kube-apiserver, two detectors); see cluster.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Cluster, StartError, control_plane


@pytest.fixture(scope="package")  # torn down when tests/e2e is done, not at session end
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Fails (never skips) the tests that need it when a part cannot start."""
    workdir = tmp_path_factory.mktemp("apiserver-e2e")
    problem = ""
    try:
        with control_plane(workdir) as running:
            yield running
    except StartError as exc:
        problem = str(exc)
    if problem:  # outside the except block: the reason alone, no chained traceback
        pytest.fail(f"e2e control plane did not start: {problem}", pytrace=False)
