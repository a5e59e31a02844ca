"""The dependency locks pin what pyproject.toml asks for, with hashes, and the installed venv
is the lock (so the suite tests the versions a fresh machine installs)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)")


def _pins(lock: str) -> dict[str, str]:
    """name -> version of every pin in a lock, and each pin carries at least one hash."""
    text = (ROOT / "requirements" / lock).read_text(encoding="utf-8")
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text.strip()):
        match = PIN.match(block)
        assert match, f"{lock}: not a pin: {block.splitlines()[0]!r}"
        assert "--hash=sha256:" in block, f"{lock}: {match[1]} has no hash"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def _declared() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = [Requirement(r) for r in project["dependencies"]]
    extras = [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    return runtime, extras


@pytest.mark.parametrize("lock", ["runtime.lock", "dev.lock"])
def test_every_declared_dependency_is_pinned_within_its_range(lock: str) -> None:
    pins = _pins(lock)
    runtime, extras = _declared()
    wanted = runtime + (extras if lock == "dev.lock" else [])
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"{lock} does not pin {req.name} (run `make lock`)"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {req.name}=={pins[name]} outside pyproject's {req.specifier}"
        )


def test_runtime_lock_is_the_dev_lock_subset_at_the_same_versions() -> None:
    runtime, dev = _pins("runtime.lock"), _pins("dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_the_venv_running_this_suite_is_the_dev_lock() -> None:
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    drift = {
        name: (version, installed.get(name))
        for name, version in _pins("dev.lock").items()
        if name in installed and installed[name] != version
    }
    assert drift == {}, f"installed versions differ from requirements/dev.lock: {drift}"


@pytest.mark.parametrize("lock", ["runtime.lock", "dev.lock"])
def test_both_locks_carry_the_build_backend(lock: str) -> None:
    # Set-up installs the project with --no-build-isolation, so the backend pyproject's
    # [build-system] names must come from the lock; a venv's bundled setuptools is too old.
    pins = _pins(lock)
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]
    for req in map(Requirement, build["requires"]):
        name = canonicalize_name(req.name)
        assert name in pins and req.specifier.contains(pins[name]), f"{lock}: {req}"
