"""The suite's hang guard: pytest-timeout as pyproject configures it, plus tests/conftest.py's
backstop, each run on a small suite of its own in a child pytest (SIGALRM and the backstop's
exit must not touch this run)."""

from __future__ import annotations

import os
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_SETTINGS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]


def _suite(pytester: pytest.Pytester, source: str, backstop_s: float = 60) -> None:
    """The suite's own pytest settings and conftest, with a 1 s timeout."""
    pytester.makeini(
        "[pytest]\n"
        f"asyncio_mode = {_SETTINGS['asyncio_mode']}\n"
        f"timeout_method = {_SETTINGS['timeout_method']}\n"
        "timeout = 1\n"
        f"timeout_backstop = {backstop_s}\n"
    )
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text())
    pytester.makepyfile(source)


def test_the_suite_has_a_timeout_that_fails_one_test_and_goes_on() -> None:
    assert float(_SETTINGS["timeout"]) > 0
    assert _SETTINGS["timeout_method"] == "signal"  # "thread" would end the whole run


def test_a_hung_async_test_fails_alone_with_the_stacks(pytester: pytest.Pytester) -> None:
    _suite(
        pytester,
        """
        import asyncio

        async def test_hangs():
            await asyncio.Event().wait()  # nothing will ever set it

        async def test_after():
            await asyncio.sleep(0)
        """,
    )
    started = time.monotonic()
    result = pytester.runpytest_subprocess(timeout=60)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Failed: Timeout (>1.0s) from pytest-timeout.*"])
    assert time.monotonic() - started < 30


def test_a_test_marked_with_more_time_has_it_and_its_backstop_moves_too(
    pytester: pytest.Pytester,
) -> None:
    _suite(
        pytester,
        """
        import time
        import pytest

        @pytest.mark.timeout(4)
        def test_slow_on_purpose():
            time.sleep(2.5)  # past the suite's 1 s and past 1 s + the 1 s backstop
        """,
        backstop_s=1,
    )
    pytester.runpytest_subprocess(timeout=60).assert_outcomes(passed=1)


def test_a_session_fixture_hung_at_start_fails_its_tests(pytester: pytest.Pytester) -> None:
    _suite(
        pytester,
        """
        import time
        import pytest

        @pytest.fixture(scope="session")
        def service():
            time.sleep(3600)  # a broker that never says it is ready
            yield

        def test_first(service):
            pass

        def test_second(service):
            pass

        def test_without_it():
            pass
        """,
    )
    result = pytester.runpytest_subprocess(timeout=60)
    # the start-up's Timeout is kept for the session: the second test errors at once with it
    result.assert_outcomes(passed=1, errors=2)
    assert result.stdout.str().count("Failed: Timeout (>1.0s)") >= 2


def test_a_swallowed_timeout_stops_the_run_and_its_children(pytester: pytest.Pytester) -> None:
    pid_file = pytester.path / "child.pid"
    _suite(
        pytester,
        f"""
        import subprocess
        import time

        def test_swallows_the_timeout():
            child = subprocess.Popen(["sleep", "600"])
            with open({str(pid_file)!r}, "w") as out:
                out.write(str(child.pid))
            try:
                time.sleep(600)
            except BaseException:  # as asyncio does with an exception inside a callback
                time.sleep(600)
        """,
        backstop_s=1,
    )
    started = time.monotonic()
    result = pytester.runpytest_subprocess(timeout=60)
    assert result.ret == 3
    assert time.monotonic() - started < 30
    result.stderr.fnmatch_lines(["*test_swallows_the_timeout: still running 2 s after it started*"])
    assert "most recent call first" in result.stderr.str()  # every thread's stack
    assert not _alive(int(pid_file.read_text()))


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as ended)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        if state == "Z":
            return False
        time.sleep(0.05)
    return os.path.exists(f"/proc/{pid}")
