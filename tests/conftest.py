"""The suite's hang guard, behind pytest-timeout's per-test limit (pyproject ``timeout``).

pytest-timeout's ``signal`` method fails the one test that overran (setup, call and
teardown together, so a session fixture that hangs while it starts fails the test that
asked for it) with every thread's stack, and the run goes on. Its ``Failed`` is raised
wherever the main thread is when SIGALRM arrives; if that is inside an asyncio callback or
a background task's step, asyncio keeps the exception for that task and the test goes on
hanging. So a second limit stands behind it: ``timeout_backstop`` seconds after the
timeout, a thread prints every thread's stack to the real stderr, kills this process's
children (brokers, servers, ``detector run``) and exits with status 3. CI then fails in
minutes instead of at its 90-minute limit.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import threading
from collections.abc import Generator
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]  # tests/unit/test_timeouts.py runs small suites of its own
_BACKSTOP_DEFAULT_S = "60"
_stderr_fd = -1


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "timeout_backstop",
        "seconds after a test's timeout at which the whole run is stopped",
        default=_BACKSTOP_DEFAULT_S,
    )


def pytest_configure(config: pytest.Config) -> None:
    global _stderr_fd
    _stderr_fd = os.dup(2)  # capture is off here; during a test fd 2 is pytest's file


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    limit = _timeout_of(item)
    if limit <= 0:
        yield
        return
    after = limit + float(str(item.config.getini("timeout_backstop")))
    timer = threading.Timer(after, _stop_the_run, (item, after))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _timeout_of(item: pytest.Item) -> float:
    """The test's own ``@pytest.mark.timeout(N)`` if it has one, else ``--timeout`` or
    the ini's (pytest-timeout's order)."""
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        value = marker.kwargs.get("timeout", marker.args[0] if marker.args else None)
        if value is not None:
            return float(value)
    option = item.config.getoption("timeout", None)
    return float(option if option is not None else str(item.config.getini("timeout") or 0))


def _stop_the_run(item: pytest.Item, after: float) -> None:
    capture = item.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)  # fd 1 and 2 back to the terminal
    item.config.get_terminal_writer().flush()  # the report so far: os._exit drops buffers
    message = f"\n+++ {item.nodeid}: still running {after:g} s after it started; "
    os.write(_stderr_fd, (message + "stacks, then exit\n").encode())
    faulthandler.dump_traceback(file=_stderr_fd, all_threads=True)
    for child in _children():
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it ended meanwhile
    os._exit(3)


def _children() -> list[int]:
    """Process ids whose parent is this process (from /proc: no psutil here)."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == me:
            found.append(int(stat.parent.name))
    return found
