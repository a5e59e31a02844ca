"""``detector incidents``: the incidents in the store, most recent first.

Filters are those of the page's API (:mod:`detector.incidents.query`): ``--since 1h``
(or an RFC 3339 time; event time of the latest evidence), ``--until``, ``--severity
high`` (that or worse), ``--rule``, ``--namespace``, ``--pod ns/name``,
``--service-account ns:name``, ``--node``, ``--limit``.
"""

from __future__ import annotations

import argparse
import sys
import time

import orjson

from detector.commands import Command, register
from detector.commands._store import add_store_arguments, open_store
from detector.incidents import view
from detector.incidents.query import ENTITY_FILTERS, parse_query
from detector.incidents.service import page_url
from detector.incidents.text import incident_lines


def configure(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--since", help="latest evidence at or after: 30m, 1h, 7d or an RFC 3339 time")
    add("--until", help="earliest evidence at or before (same forms)")
    add("--severity", help="this severity or worse: info, low, medium, high, critical")
    add("--rule", help="a chain rule id, e.g. exec-pivot")
    for key in ENTITY_FILTERS:
        add(f"--{key.replace('_', '-')}", dest=key, help=f"chains naming this {key}")
    add("--limit", help="at most this many incidents (default 200)")
    add_store_arguments(parser)


def run(args: argparse.Namespace) -> int:
    keys = ("since", "until", "severity", "rule", "limit", *ENTITY_FILTERS)
    filters = {key: getattr(args, key) for key in keys if getattr(args, key)}
    query = parse_query(filters, time.time())
    store, config = open_store(args)
    try:
        found = [
            view.summary(rows, page_url(config.incidents.public_url, rows.id))
            for rows in store.incidents(query)
        ]
    finally:
        store.close()
    if args.json:
        sys.stdout.buffer.write(orjson.dumps({"incidents": found}) + b"\n")
    else:
        print("\n".join(incident_lines(found)))
    return 0


register(Command("incidents", "list the incidents in the local incident store", configure, run))
