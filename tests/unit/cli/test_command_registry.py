"""The lazy command registry: only the chosen command is imported; a broken one stays alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from detector import commands
from detector.cli import chosen_command, main
from tests.unit.cli.test_inputs import _alert

# Imported by `detector run` only; `detector replay` must not pay for them.
SERVICE_STACK = ("aiohttp", "aiokafka", "grpc", "detector.commands.run")


def _imported_after(argv: list[str]) -> set[str]:
    """Top-level modules loaded by ``detector ARGV`` in a fresh interpreter."""
    probe = (
        "import sys\n"
        "from detector.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\n'.join(sys.modules))\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return set(done.stdout.splitlines())


def test_replay_help_does_not_import_the_service_stack() -> None:
    loaded = _imported_after(["replay", "--help"])
    assert "detector.commands.replay" in loaded
    assert not loaded.intersection(SERVICE_STACK), sorted(loaded.intersection(SERVICE_STACK))


def test_top_level_help_imports_no_command_module() -> None:
    loaded = _imported_after(["--help"])
    assert not {name for name in loaded if name.startswith("detector.commands.")}


def test_registry_help_matches_each_modules_own_command() -> None:
    for name, command in commands.load_commands().items():
        assert command.help == commands.REGISTRY[name].help, name


def test_chosen_command_is_the_first_word() -> None:
    assert chosen_command(["replay", "--quiet", "run"]) == "replay"
    assert chosen_command(["--help"]) is None
    assert chosen_command(["nope"]) is None


def test_broken_command_fails_alone_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = commands.Entry("detector.commands._no_such_module", "a command whose module is gone")
    monkeypatch.setitem(commands.REGISTRY, "broken", entry)
    assert main(["broken"]) == 1
    err = capsys.readouterr().err
    assert "detector broken: error: cannot load detector.commands._no_such_module" in err
    assert "ModuleNotFoundError" in err
    # the other commands are untouched by it
    path = tmp_path / "alerts.jsonl"
    path.write_text(_alert(1) + "\n")
    assert main(["replay", "--quiet", str(path)]) == 0


def test_module_that_registers_nothing_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(commands.REGISTRY, "ghost", commands.Entry("detector.errors", "none"))
    assert main(["ghost"]) == 1
    assert "detector.errors does not register a command 'ghost'" in capsys.readouterr().err
