"""What ``detector incidents`` and ``detector show`` share: finding and opening the store.

The store is the one ``detector run`` writes: ``--store PATH``, else ``incidents.path``
of ``--config FILE`` (or ``$DETECTOR_CONFIG``, and the ``DETECTOR_*`` environment), else
the default ``var/incidents.sqlite3``. It is opened read-only, so looking never blocks
the running service (SQLite WAL readers do not wait for the writer).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from pathlib import Path

from detector import config as cfg
from detector.errors import UsageError
from detector.incidents.store import IncidentStore


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--store", metavar="PATH", help="incident store (default: incidents.path of the config)")
    add("--config", metavar="FILE", default=os.environ.get("DETECTOR_CONFIG"), help="YAML")
    add("--json", action="store_true", help="print JSON instead of text")


def open_store(args: argparse.Namespace) -> tuple[IncidentStore, cfg.Config]:
    """The store named by the arguments (read-only) and the configuration it came from."""
    config = cfg.load(args.config)
    path = Path(args.store or config.incidents.path)
    if not str(path):
        raise UsageError("the incident store is off (incidents.path is empty); give --store")
    try:
        store = IncidentStore(
            path, config.incidents.max_age_s, config.incidents.max_bytes,
            config.incidents.merge_window_s, readonly=True,
        )  # fmt: skip
    except (FileNotFoundError, sqlite3.Error) as exc:
        raise UsageError(f"cannot open the incident store {path}: {exc}") from None
    return store, config
