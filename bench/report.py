"""One command, the whole table: generate, run every stage, score, write bench/README.md.

Each stage runs in its own process (``python -m bench stage``); rate stages repeat
``repeat`` times and report the median (by CPU rate). Every dataset is measured in each
arrival order asked for (``orders.py``): the ordered stream gets every stage, the others
the floors, our replay and the eql pipeline. Chains are scored against the generator's
ground truth (recall, false chains) and against the eql peer on the rules both can
express; ``render.py`` draws the tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.dataset import count_lines
from bench.generate import TRUTH, Params, dataset_dir, generate
from bench.orders import ORDERED, ensure_order
from bench.ours import chain_summary
from bench.render import Row, table

RATE_STAGES = (
    "decode",
    "msgspec",
    "ours_parse",
    "ours_engine",
    "eql_engine",
    "eql_engine3",
    "ours_replay",
    "eql_pipeline",
    "cli",
)
# every order: the floors, the eql pipeline, ``detector replay`` (chains from its output)
ORDER_STAGES = ("decode", "msgspec", "eql_pipeline", "cli")
README = Path(__file__).parent / "README.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"


def _process(argv: list[str]) -> tuple[int, str, str, float]:
    """Run ``argv``; its exit code, stdout, last stderr line and CPU seconds (user + system).

    ``os.wait4`` gives this child's own rusage. Its peak RSS is not taken from there
    (a forked child inherits the runner's peak; see ``dataset.peak_rss_kb``): every
    process run here reports its own on stdout.
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = (err.read().decode(errors="replace").strip().splitlines() or ["?"])[-1]
    return proc.returncode, out, tail, usage.ru_utime + usage.ru_stime


def _last_json(out: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def stage(name: str, stream: Path) -> dict[str, Any]:
    """One stage in a fresh process (``python -m bench stage``), with its whole CPU cost."""
    if name == "cli":
        return cli(stream)
    code, out, tail, cpu = _process([sys.executable, "-m", "bench", "stage", name, str(stream)])
    if code != 0:
        return {"error": tail[:200]}
    return {**_last_json(out), "process_cpu_seconds": cpu}


# ``detector replay`` as its console script runs it, then the process's own peak RSS
_CLI = (
    "import sys; from bench.dataset import peak_rss_kb; from detector.cli import main; "
    "code = main(['replay', '--quiet', '--output', sys.argv[2], sys.argv[1]]); "
    'print(\'{"exit": %d, "peak_rss_kb": %d}\' % (code, peak_rss_kb())); sys.exit(code)'
)


def cli(stream: Path) -> dict[str, Any]:
    """``detector replay`` as a whole process (interpreter start to exit), its chains."""
    with tempfile.TemporaryDirectory() as tmp:
        chains = Path(tmp) / "chains.jsonl"
        start = time.perf_counter()
        code, out, tail, cpu = _process([sys.executable, "-c", _CLI, str(stream), str(chains)])
        wall = time.perf_counter() - start
        if code != 0:
            return {"error": tail[:200]}
        summary = chain_summary(chains.read_bytes())
    events = count_lines(stream)
    return {"events": events, "seconds": wall, "cpu_seconds": cpu, "rate": events / wall,
            "cpu_rate": events / cpu if cpu else 0.0, "process_cpu_seconds": cpu,
            "peak_rss_kb": _last_json(out)["peak_rss_kb"], **summary}  # fmt: skip


def ensure(data: Path, events: int, pods: int) -> Path:
    params = Params(events=events, pods=pods)
    out = dataset_dir(data, params)
    if not (out / TRUTH).exists():
        print(f"generating {out.name} ...", file=sys.stderr)
        generate(out, params)
    return out


def measure(dataset: Path, order: str, repeat: int, detail: bool = True) -> dict[str, Any]:
    """The stages of one dataset in one arrival order; rate stages ``repeat`` times.

    The ordered stream gets every stage when ``detail`` is on; other orders (and every
    order without ``detail``) the floors, the eql pipeline and ``detector replay``.
    """
    stream = ensure_order(dataset, order)
    detail = detail and order == ORDERED
    names = RATE_STAGES if detail else ORDER_STAGES
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(repeat):
        for name in names:
            print(f"  {dataset.name} {order}: {name}", file=sys.stderr)
            runs.setdefault(name, []).append(stage(name, stream))
    results: dict[str, Any] = {name: _median_run(found) for name, found in runs.items()}
    if detail:
        results["ours_steady"] = stage("ours_steady", stream)
        results["ours_partials"] = stage("ours_partials", stream)
    results["truth"] = json.loads((dataset / TRUTH).read_text())
    return results


def _median_run(found: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in found if "rate" in r]
    if not ok:
        return found[0]
    ok.sort(key=lambda r: r.get("cpu_rate") or r["rate"])
    middle = dict(ok[len(ok) // 2])
    middle["rates"] = [round(r["rate"]) for r in ok]
    middle["cpu_rates"] = [round(r.get("cpu_rate", 0)) for r in ok]
    return middle


Point = tuple[int, int, int]  # events, pods, repeat


def plan_points(sizes: list[int], pods: list[int], repeat: int, extra: list[Point]) -> list[Point]:
    """Every size with every pod count at ``repeat`` runs, plus the ``extra`` points.

    Cheapest first: the table is rewritten after every dataset, so a run cut short still
    leaves complete rows for what it finished.
    """
    points = {(size, count): repeat for size in sizes for count in pods}
    for size, count, reps in extra:
        points[(size, count)] = reps
    return sorted((size, count, reps) for (size, count), reps in points.items())


def parse_point(text: str) -> Point:
    """``5e6x1e5x1`` → (events, pods, repeat); the repeat defaults to 1."""
    try:
        parts = [int(float(part)) for part in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (2, 3) or min(parts) < 1:
        raise ValueError(f"bad point {text!r} (use EVENTSxPODS or EVENTSxPODSxREPEAT)")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else 1


def run_all(
    points: list[Point], orders: list[str], data: Path, write_readme: bool, detail: bool = True
) -> int:
    rows: list[Row] = []
    text = ""
    for events, pod_count, reps in points:
        dataset = ensure(data, events, pod_count)
        for order in orders:
            results = measure(dataset, order, reps, detail)
            rows.append(Row(events, pod_count, order, reps, results))
            text = render(rows)
            (data / "last-run.json").write_text(json.dumps([r.results for r in rows], default=str))
            if write_readme:
                _write_readme(text)
    print(text)
    return 0


def render(rows: list[Row]) -> str:
    when = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    return table(rows, f"{when} at commit {_commit()}")


def _commit() -> str:
    """The code measured: HEAD, ``+dirty`` if a tracked file other than this README differs.

    The README is left out because the run itself rewrites its table.
    """
    root = Path(__file__).parent.parent
    readme = README.relative_to(root).as_posix()
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    dirty = subprocess.run(
        ["git", "-C", str(root), "diff", "--quiet", "HEAD", "--", ".", f":(top,exclude){readme}"],
        check=False,
    ).returncode
    return (head.stdout.strip() or "unknown") + ("+dirty" if dirty else "")


def _write_readme(text: str) -> None:
    current = README.read_text() if README.exists() else f"{BEGIN}\n{END}\n"
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
