"""The CLI's subcommands: a registry, not an if-chain.

Each subcommand lives in its own module here and registers itself with one line::

    register(Command("replay", "replay recorded files", configure, run))

:func:`load_commands` imports every public module of this package, so adding a command
touches only its own file. ``configure`` adds the command's arguments to its argparse
sub-parser; ``run`` gets the parsed namespace and returns the process exit code
(0 ok, 2 usage or rule errors). Raising :class:`detector.errors.UsageError` from ``run``
also exits 2 with the message on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    """One ``detector <name>`` subcommand."""

    name: str
    help: str
    configure: Configure
    run: Run


COMMANDS: dict[str, Command] = {}


def register(command: Command) -> Command:
    """Add ``command`` to the registry; two commands with one name is a programming error."""
    if command.name in COMMANDS and COMMANDS[command.name] != command:
        raise ValueError(f"command {command.name!r} registered twice")
    COMMANDS[command.name] = command
    return command


def load_commands() -> dict[str, Command]:
    """Import every command module (names not starting with ``_``) and return the registry."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return dict(sorted(COMMANDS.items()))
