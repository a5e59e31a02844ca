"""``detector``: the command-line entry point.

Subcommands come from the registry in :mod:`detector.commands`; this module builds the
argparse tree from it and maps errors to exit codes (2 for usage errors, like argparse
itself; 1 when the command's module cannot be imported). Only the chosen command's
module is imported, so ``detector replay`` does not load the live service's stack.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from detector.commands import REGISTRY, CommandUnavailable, load_command
from detector.errors import UsageError
from detector.version import detector_version

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 1


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser: one sub-parser per registered command; only ``chosen``
    (imported here, :class:`CommandUnavailable` if it cannot be) gets its arguments."""
    parser = argparse.ArgumentParser(
        prog="detector",
        description="Confirmed Kubernetes lateral-movement chains from Falco alerts "
        "and API audit events.",
    )
    parser.add_argument("--version", action="version", version=f"detector {detector_version()}")
    subparsers = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND")
    for name, entry in REGISTRY.items():
        sub = subparsers.add_parser(name, help=entry.help, description=entry.help)
        if name == chosen:
            command = load_command(name)
            command.configure(sub)
            sub.set_defaults(command=command)
    return parser


def chosen_command(argv: Sequence[str]) -> str | None:
    """The registered command named on the command line, if any.

    The top-level parser has no options that take a value, so the first word that is
    not an option is the command (argparse itself reports a missing or unknown one).
    """
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in REGISTRY else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; the return value is the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    name = chosen_command(args_list)
    try:
        parser = build_parser(name)
    except CommandUnavailable as exc:
        print(f"detector {name}: error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    args = parser.parse_args(args_list)
    try:
        code: int = args.command.run(args)
    except UsageError as exc:
        _report(args.command_name, exc)
        return EXIT_USAGE
    except ExceptionGroup as group:  # a task of the service's TaskGroup refused to start
        usage, other = group.split(UsageError)
        if usage is None or other is not None:
            raise
        for refused in _leaves(usage):
            _report(args.command_name, refused)
        return EXIT_USAGE
    return code


def _report(command: str, exc: UsageError) -> None:
    for problem in exc.problems:  # a configuration check: one line each, key first
        print(problem, file=sys.stderr)
    if not exc.problems:
        print(f"detector {command}: error: {exc}", file=sys.stderr)


def _leaves(group: BaseExceptionGroup[UsageError]) -> list[UsageError]:
    found: list[UsageError] = []
    for exc in group.exceptions:
        found += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return found


if __name__ == "__main__":
    sys.exit(main())
