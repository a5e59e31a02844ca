"""``detector``: the command-line entry point.

Subcommands come from the registry in :mod:`detector.commands`; this module only builds
the argparse tree from it and maps errors to exit codes (2 for usage errors, like
argparse itself).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from detector.commands import load_commands
from detector.errors import UsageError

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per registered command."""
    parser = argparse.ArgumentParser(
        prog="detector",
        description="Confirmed Kubernetes lateral-movement chains from Falco alerts "
        "and API audit events.",
    )
    subparsers = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND")
    for command in load_commands().values():
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
        sub.set_defaults(command=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; the return value is the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.command.run(args)
    except UsageError as exc:
        print(f"detector {args.command_name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
