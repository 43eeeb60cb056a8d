"""`prunebench`: the command line beside the pytest plugin."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import PrunebenchError
from .settings import canonical_model_name, model_name


def _layers(args: argparse.Namespace) -> int:
    from .models import build_model, count_macs, count_weights, layer_costs

    model = build_model(args.model, args.classes)
    costs = layer_costs(model)
    width = max(len(c.name) for c in costs)
    print(f"{'layer'.ljust(width)}  kind  {'weight shape':<16}  {'filters':>7}  {'channels':>8}  {'MACs':>12}")
    for cost in costs:
        filters, channels = cost.weight_shape[0], cost.weight_shape[1]
        shape = "x".join(str(d) for d in cost.weight_shape)
        print(f"{cost.name.ljust(width)}  {cost.kind:<4}  {shape:<16}  {filters:>7}  {channels:>8}  {cost.macs:>12,}")
    print(f"total: {len(costs)} layers, {count_macs(model):,} MACs, {count_weights(model):,} conv+fc weights")
    return 0


def _check(args: argparse.Namespace) -> int:
    """Parse each schedule and bind it to its model, without training or measuring anything."""
    from .models import build_model
    from .pruning import check_layers
    from .schedule import load_schedule

    failed = 0
    for path in args.schedules:
        try:
            schedule = load_schedule(path)
            name = args.model or schedule.model_hint()
            if not name:
                raise PrunebenchError(f"{path}: the schedule names no model; add `prunebench: {{model: resnet56}}` "
                                      f"or pass --model")
            name = canonical_model_name(name)
            check_layers(schedule, build_model(name, 10), name)
        except PrunebenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        for warning in schedule.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"ok: {path}: {len(schedule.pruners)} pruner(s) on {name}")
    return 1 if failed else 0


def _report(args: argparse.Namespace) -> int:
    from .report import load_cases, write_report

    cases = load_cases(args.results)
    for path in write_report(cases, args.out, args.case):
        print(f"wrote {path}")
    print(f"{len(cases)} case(s) from {len(args.results)} file(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prunebench", description="pytest-prunebench tools")
    verbs = parser.add_subparsers(dest="verb", required=True)
    layers = verbs.add_parser("layers", help="list a model's prunable layers (names for schedules) with MACs")
    layers.add_argument("model", type=model_name, help="resnet20 ... resnet110 or package.module:factory")
    layers.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    layers.set_defaults(handler=_layers)
    check = verbs.add_parser("check", help="validate schedule files against their model without running them")
    check.add_argument("schedules", nargs="+", help="schedule files")
    check.add_argument("--model", type=model_name, default=None, help="model to check against")
    check.set_defaults(handler=_check)
    report = verbs.add_parser("report", help="pictures and tables (Pareto, sparsity vs latency, speed-ups, "
                                             "correlations) from pytest-benchmark JSON files")
    report.add_argument("results", nargs="+", type=Path, help="pytest-benchmark JSON files (--benchmark-json, "
                                                              "or the files --benchmark-autosave writes)")
    report.add_argument("--out", type=Path, default=Path("prunebench-report"),
                        help="output directory (default prunebench-report/)")
    report.add_argument("--case", default=None, help="the case filters.png shows (default: the most accurate "
                                                     "case on the Pareto front)")
    report.set_defaults(handler=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except PrunebenchError as exc:
        print(f"prunebench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
