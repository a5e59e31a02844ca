"""``python -m bench generate|run|stage`` (see bench/README.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.generate import GenerateError, Params, dataset_dir, generate
from bench.orders import ORDERS, ensure_order

DATA = Path(__file__).parent / "data"


def _size(text: str) -> int:
    return int(float(text))


def _sizes(text: str) -> list[int]:
    return [_size(part) for part in text.split(",") if part]


def _orders(text: str) -> list[str]:
    orders = [part for part in text.split(",") if part]
    unknown = sorted(set(orders) - set(ORDERS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown order(s) {unknown}; known: {list(ORDERS)}")
    return orders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write a stream and its ground truth")
    gen.add_argument("--events", type=_size, required=True)
    gen.add_argument("--pods", type=_size, default=1000)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--rate", type=float, default=250.0)
    gen.add_argument("--out", type=Path, default=None)
    gen.add_argument(
        "--orders", type=_orders, default=["ordered"],
        help=f"arrival orders to write, comma-separated: {', '.join(ORDERS)}",
    )  # fmt: skip
    run = sub.add_parser("run", help="measure everything, write the table into bench/README.md")
    run.add_argument("--sizes", type=_sizes, default=[100_000, 1_000_000])
    run.add_argument("--pods", type=_sizes, default=[1_000, 10_000])
    run.add_argument("--repeat", type=int, default=3, help="runs per point (median)")
    run.add_argument(
        "--point", action="append", default=[], metavar="EVENTSxPODS[xREPEAT]",
        help="an extra dataset outside the sizes x pods grid, e.g. 5e6x1e5x1 (repeatable)",
    )  # fmt: skip
    run.add_argument(
        "--orders", type=_orders, default=list(ORDERS),
        help="arrival orders to measure (default: all; only 'ordered' gets every stage)",
    )  # fmt: skip
    run.add_argument("--no-readme", action="store_true")
    run.add_argument(
        "--no-detail", action="store_true",
        help="ordered streams too get only the floors, the eql pipeline and detector replay",
    )  # fmt: skip
    sub.add_parser("timestamps", help="RFC 3339 parsing cost per shape (markdown table)")
    sub.add_parser("falco-parse", help="CPU ns per Falco alert body, early reject or not")
    stage = sub.add_parser("stage", help="(internal) run one timed stage, print JSON")
    stage.add_argument("name")
    stage.add_argument("stream", type=Path, help="a dataset's stream file")
    args = parser.parse_args(argv)
    if args.command == "generate":
        params = Params(events=args.events, pods=args.pods, seed=args.seed, rate=args.rate)
        out = args.out or dataset_dir(DATA, params)
        try:
            truth = generate(out, params)
        except GenerateError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for order in args.orders:
            ensure_order(out, order, args.seed)
        print(f"{out}: {truth['counts']}, {len(truth['chains'])} planted chains")
        return 0
    if args.command == "timestamps":
        from bench.timestamps import table

        print(table())
        return 0
    if args.command == "falco-parse":
        from bench.falco_parse import table as falco_table

        print(falco_table())
        return 0
    if args.command == "stage":
        from bench.measure import run_stage

        return run_stage(args.name, args.stream)
    from bench.report import parse_point, plan_points, run_all

    try:
        extra = [parse_point(text) for text in args.point]
    except ValueError as exc:
        parser.error(str(exc))
    points = plan_points(args.sizes, args.pods, args.repeat, extra)
    return run_all(
        points, args.orders, DATA, write_readme=not args.no_readme, detail=not args.no_detail
    )


if __name__ == "__main__":
    sys.exit(main())
