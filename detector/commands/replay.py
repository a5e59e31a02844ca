"""``detector replay FILE...``: run the correlation engine over recorded files.

Reads any mix of Falco alert and audit event files (JSON lines, EventList lines,
``.gz``), merges them by event time, runs the engine with the built-in chain rules plus
``--rules``, and writes one chain record (``lateral-movement-chain/v1``) per line to
``--output``. stderr gets bad lines (``file:line: reason: message``), progress on long
runs, and a summary.

Order-free: the chains do not depend on the order of lines in a file. A file whose
disorder is more than its reorder buffer and ``--lateness`` absorb is detected while it
is read (``_inputs.OutOfOrder``, usually within its first tens of thousands of events);
the replay then starts again with that file sorted on disk (``_spill``: sorted runs in a
temporary directory, merged; bounded memory). A restart never leaves a partial output:
an output file is truncated and written again; a pipe or terminal gets the records once
the replay is done (they wait in a spooled temporary file). Exit 0 on success, 2 on
usage or rule errors, 141 (128 + SIGPIPE, as a shell reports ``yes | head``) when the
reader of the output goes away early.

Speed: input comes in batches (see ``_inputs``), and the state built at start-up (rules,
compiled predicates, imported modules) is moved out of the cyclic GC's sight with
``gc.freeze()``; retained events are ``gc=False`` structs, so the collector has little
to walk, and it runs its young generation every 100,000 allocations, not every 700
(:func:`detector.commands._collector.quiet_collector`, which ``detector run`` uses too).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Final

import orjson

from correlation.chain import Chain, to_record
from correlation.engine import Engine, EngineConfig
from correlation.errors import RuleError
from correlation.interest import Interest
from correlation.rules import ChainRule, builtin_rules_paths, load_rules
from correlation.rules.model import parse_duration
from detector.allowlist import load_allowlist
from detector.commands import Command, register
from detector.commands._collector import quiet_collector
from detector.commands._inputs import (
    InputStats,
    Ordering,
    OutOfOrder,
    check_paths,
    merged_batches,
)
from detector.commands._report import write_report
from detector.commands._spill import SortStats
from detector.commands._summary import ReplayTotals, render
from detector.errors import ParseError, UsageError
from detector.parse.early import EarlyReject
from detector.parse.long_running import LongRunningStages

MAX_REPORTED_BAD_LINES: Final = 100  # later ones are counted only, to keep stderr readable
PROGRESS_EVERY_S: Final = 2.0
PROGRESS_CHECK_EVENTS: Final = 16_384  # look at the clock this often, not per event
EXIT_BROKEN_PIPE: Final = 128 + 13  # 128 + SIGPIPE
SPOOL_BYTES: Final = 8 << 20  # chain records kept in memory before the spool goes to disk
REPLAY_INPUT: Final = "replay"  # the merged stream is one pulled input


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="+", metavar="FILE",
        help="JSON-lines files (.gz ok); any readable path: /dev/stdin, a FIFO",
    )  # fmt: skip
    parser.add_argument(
        "--rules", action="append", default=[], metavar="PATH",
        help="extra chain-rule YAML file or directory (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--no-builtin-rules", action="store_true",
        help="load only --rules (the shipped signals stay available to them)",
    )  # fmt: skip
    parser.add_argument(
        "--allowlist", metavar="PATH",
        help="YAML of known-good actors (namespaces, images, service_accounts, pods globs)",
    )  # fmt: skip
    parser.add_argument("--lateness", default="60s", help="allowed lateness (default 60s)")
    parser.add_argument("--output", default="-", help="chain records: - (stdout) or a path")
    parser.add_argument("--quiet", action="store_true", help="no progress or summary")
    parser.add_argument(
        "--report", metavar="FILE.html", help="also write the incidents as one offline HTML page"
    )


def parse_duration_ns(text: str) -> int:
    """``"60s"`` → ns; units ms, s, m, h."""
    duration = parse_duration(text)  # the rules' own duration syntax
    if duration is None:
        raise UsageError(f"bad duration {text!r} (use e.g. 500ms, 60s, 5m, 1h)")
    return duration


def run(args: argparse.Namespace) -> int:
    paths = check_paths(args.files)
    lateness_ns = parse_duration_ns(args.lateness)
    if args.no_builtin_rules and not args.rules:
        raise UsageError("--no-builtin-rules needs at least one --rules PATH")
    builtin = [] if args.no_builtin_rules else builtin_rules_paths()
    try:
        rules = load_rules([*builtin, *args.rules])
    except RuleError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"detector replay: {len(exc.errors)} rule error(s)", file=sys.stderr)
        return 2
    config = EngineConfig(lateness_ns=lateness_ns, allowlist=load_allowlist(args.allowlist))
    # what the engine can use, derived from the same rules and allowlist: the rest of the
    # input skips normalization as time-only ticks (detector/parse/early.py)
    early = EarlyReject(Interest(rules, config.allowlist))
    report = _Report(quiet=args.quiet, rules=rules, lateness=args.lateness)
    ordering = Ordering(max_disorder_ns=lateness_ns)
    engine = _engine(rules, config)
    found: list[Chain] | None = [] if args.report else None
    try:
        with quiet_collector(), _output(args.output) as out:
            engine = _replay_in_order(engine, paths, out, report, ordering, early, found)
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    report.summary(engine)
    if found is not None:
        incidents = write_report(args.report, found)
        if not args.quiet:
            print(f"replay: report of {incidents} incident(s) in {args.report}", file=sys.stderr)
    return 0


def _engine(rules: list[ChainRule], config: EngineConfig) -> Engine:
    engine = Engine(rules, config)
    engine.add_input(REPLAY_INPUT, pushed=False)
    return engine


def _replay_in_order(
    engine: Engine,
    paths: list[Path],
    out: IO[bytes],
    report: _Report,
    ordering: Ordering,
    early: EarlyReject,
    keep: list[Chain] | None = None,
) -> Engine:
    """Replay until no file is out of order beyond what the buffer absorbs (each one
    that is gets sorted on disk and the replay starts again); the engine that finished.
    ``keep`` collects the chains of the attempt that finished."""
    start = _rewind_point(out)
    while True:
        if keep is not None:
            keep.clear()  # a restarted attempt emits its chains again
        try:
            with _spool(out, start) as target:  # an exception discards the attempt
                report.chains = _replay(engine, paths, target, report, ordering, early, keep)
        except OutOfOrder as exc:
            ordering.sort.add(exc.path)
            report.restart(exc)
            engine = _engine(engine.rules, engine.config)
            continue
        return engine


def _rewind_point(out: IO[bytes]) -> int | None:
    """Where a restarted attempt may cut the output back to: the position the replay began
    writing at (not 0: `>> chains.jsonl` keeps what the file held), or None when the output
    cannot be cut there (a pipe; /dev/null seeks but refuses truncate)."""
    try:
        if not out.seekable():
            return None
        start = out.tell()
        out.truncate(start)
    except OSError:
        return None
    return start


@contextmanager
def _spool(out: IO[bytes], start: int | None) -> Iterator[IO[bytes]]:
    """Where one attempt writes: the output itself when it can be rewound (cut back to
    ``start`` on a restart), else a spooled temporary file copied out when the attempt
    succeeds."""
    if start is not None:
        out.seek(start)
        out.truncate(start)
        yield out
        return
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        yield spool
        spool.seek(0)
        shutil.copyfileobj(spool, out)


def _replay(
    engine: Engine,
    paths: list[Path],
    out: IO[bytes],
    report: _Report,
    ordering: Ordering,
    early: EarlyReject,
    keep: list[Chain] | None = None,
) -> Counter[str]:
    """Run the files through ``engine``, writing records; ``keep`` collects the chains."""
    chains: Counter[str] = Counter()

    def write(found: list[Chain]) -> None:
        for chain in found:
            chains[chain.rule] += 1
            out.write(orjson.dumps(to_record(chain)) + b"\n")
        if keep is not None:
            keep.extend(found)

    run = LongRunningStages().run
    batches = merged_batches(
        paths, report.inputs, report.bad_line, early=early.claiming, ordering=ordering
    )
    for batch in batches:
        at, size = 0, len(batch)
        while at < size:
            at, found = run(engine, batch, at, REPLAY_INPUT)
            if found:
                write(found)
        report.tick(size)
    write(engine.flush())
    report.sorts = ordering.sorts
    return chains


def _silence_stdout() -> None:
    """The reader left: point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return  # not a real file (an in-process caller's capture): nothing to flush later
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


@contextmanager
def _output(target: str) -> Iterator[IO[bytes]]:
    if target == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        handle = Path(target).open("wb")
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    with handle:
        yield handle


class _Report:
    """Everything written to stderr: bad lines, progress, the final summary."""

    def __init__(self, quiet: bool, rules: list[ChainRule], lateness: str) -> None:
        self.quiet, self.rules, self.lateness = quiet, rules, lateness
        self.inputs = InputStats()
        self.chains: Counter[str] = Counter()
        self.started = time.monotonic()
        self._next_progress = self.started + PROGRESS_EVERY_S
        self._events = 0
        self._next_check = PROGRESS_CHECK_EVENTS
        self._reported = 0
        self._printed: set[tuple[Path, int]] = set()  # a restart does not repeat them
        self.sorts: dict[Path, SortStats] = {}

    def restart(self, exc: OutOfOrder) -> None:
        """Start the counts again: the replay restarts with ``exc.path`` sorted on disk."""
        self.inputs, self._events, self._reported = InputStats(), 0, 0
        self._next_check = PROGRESS_CHECK_EVENTS
        if not self.quiet:
            print(
                f"replay: {exc}: more disorder than the reorder buffer and --lateness absorb; "
                "starting again with it sorted on disk",
                file=sys.stderr,
            )

    def bad_line(self, path: Path, number: int, error: ParseError) -> None:
        self._reported += 1
        if (path, number) in self._printed:
            return
        if self._reported <= MAX_REPORTED_BAD_LINES:
            self._printed.add((path, number))
            print(f"{path}:{number}: {error}", file=sys.stderr)
        elif self._reported == MAX_REPORTED_BAD_LINES + 1:
            print("(further bad lines are counted in the summary only)", file=sys.stderr)

    def tick(self, events: int) -> None:
        self._events += events
        if not self.quiet and self._events >= self._next_check:
            self._next_check = self._events + PROGRESS_CHECK_EVENTS
            now = time.monotonic()
            if now >= self._next_progress:
                self._next_progress = now + PROGRESS_EVERY_S
                rate = self._events / (now - self.started)
                print(f"replay: {self._events:,} events ({rate:,.0f}/s)", file=sys.stderr)

    def summary(self, engine: Engine) -> None:
        if self.quiet:
            return
        totals = ReplayTotals(
            events=self._events,
            elapsed_s=time.monotonic() - self.started,
            inputs=self.inputs,
            chains=self.chains,
            rules=self.rules,
            engine=engine.stats(),
            lateness=self.lateness,
            sorts=self.sorts,
        )
        print(render(totals), file=sys.stderr)


register(Command("replay", "replay recorded Falco/audit files through the engine", configure, run))
