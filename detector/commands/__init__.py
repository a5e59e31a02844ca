"""The CLI's subcommands: a registry of names, imported only when used.

Each subcommand lives in its own module here, which registers its functions with one
line, and has one line in :data:`REGISTRY` (its module and its one-line help)::

    register(Command("replay", "replay recorded files", configure, run))   # replay.py
    "replay": Entry("detector.commands.replay", "replay recorded files"),  # REGISTRY

Why two lines: ``detector replay`` must not pay for importing ``run``'s service stack
(aiohttp, aiokafka, grpc: 0.5–1.5 s), so the CLI lists commands from :data:`REGISTRY`
and imports only the module of the command being run (:func:`load_command`). A module
that fails to import makes only its own command fail, with :class:`CommandUnavailable`.

``configure`` adds the command's arguments to its argparse sub-parser; ``run`` gets the
parsed namespace and returns the process exit code (0 ok, 2 usage or rule errors).
Raising :class:`detector.errors.UsageError` from ``run`` also exits 2.

Exceptions::

    DetectorError
     └── CommandUnavailable   a registered command's module cannot be imported
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from detector.errors import DetectorError

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    """One ``detector <name>`` subcommand."""

    name: str
    help: str
    configure: Configure
    run: Run


@dataclass(frozen=True)
class Entry:
    """A registry line: where the command lives and what ``detector --help`` says of it."""

    module: str
    help: str


REGISTRY: dict[str, Entry] = {
    "check": Entry(
        "detector.commands.check",
        "validate the configuration, its files and rules; start nothing",
    ),
    "incidents": Entry(
        "detector.commands.incidents", "list the incidents in the local incident store"
    ),
    "replay": Entry(
        "detector.commands.replay", "replay recorded Falco/audit files through the engine"
    ),
    "run": Entry("detector.commands.run", "run the live service (HTTP, gRPC and file sources)"),
    "show": Entry("detector.commands.show", "show one incident: attack path and timeline"),
    "stitch": Entry(
        "detector.commands.stitch", "incidents across worker partitions, then the sinks"
    ),
    "worker": Entry("detector.commands.worker", "one correlation worker of a Kafka consumer group"),
}

COMMANDS: dict[str, Command] = {}


class CommandUnavailable(DetectorError):
    """The module of a registered command cannot be imported (a broken install)."""


def register(command: Command) -> Command:
    """Add ``command`` (called by its module); two commands with one name is a bug."""
    if command.name in COMMANDS and COMMANDS[command.name] != command:
        raise ValueError(f"command {command.name!r} registered twice")
    COMMANDS[command.name] = command
    return command


def load_command(name: str) -> Command:
    """Import the module of command ``name`` (a :data:`REGISTRY` key) and return it."""
    entry = REGISTRY[name]
    try:
        importlib.import_module(entry.module)
    except Exception as exc:  # noqa: BLE001 - any import failure: this command only
        raise CommandUnavailable(
            f"cannot load {entry.module}: {type(exc).__name__}: {exc}"
        ) from exc
    if name not in COMMANDS:
        raise CommandUnavailable(f"{entry.module} does not register a command {name!r}")
    return COMMANDS[name]


def load_commands() -> dict[str, Command]:
    """Every registered command, imported (for tools and tests; the CLI loads one)."""
    return {name: load_command(name) for name in sorted(REGISTRY)}
