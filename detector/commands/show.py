"""``detector show ID``: one incident in the terminal — its path, steps and timeline.

``ID`` is an incident id (``inc-…``, any id it was published under) or a chain id
(``lmc-…``, shows that chain's incident). Exit 1 when the store does not have it.
"""

from __future__ import annotations

import argparse
import sys

import orjson

from detector.commands import Command, register
from detector.commands._store import add_store_arguments, open_store
from detector.incidents import view
from detector.incidents.service import page_url
from detector.incidents.text import detail_lines


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", metavar="ID", help="incident id (inc-…) or chain id (lmc-…)")
    add_store_arguments(parser)


def run(args: argparse.Namespace) -> int:
    store, config = open_store(args)
    try:
        rows = store.incident_of(args.id)
    finally:
        store.close()
    if rows is None:
        print(f"detector show: no incident or chain {args.id!r} in the store", file=sys.stderr)
        return 1
    found = view.detail(rows, page_url(config.incidents.public_url, rows.id))
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(found) + b"\n")
    else:
        print("\n".join(detail_lines(found)))
    return 0


register(Command("show", "show one incident: attack path and timeline", configure, run))
