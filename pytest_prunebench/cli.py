"""`prunebench`: the command line beside the pytest plugin."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import DeviceError, PrunebenchError
from .settings import (
    MODELS_HINT,
    Settings,
    canonical_model_name,
    device_name,
    model_from_file_name,
    model_name,
    positive_int,
    precision,
)

LOCK_TIMEOUT = Settings().lock_timeout


def _layers(args: argparse.Namespace) -> int:
    from .models import build_model, count_macs, count_weights, layer_costs

    model = build_model(args.model, args.classes)
    if args.device:
        return _layers_on_device(model, args)
    costs = layer_costs(model)
    width = max(len(c.name) for c in costs)
    print(f"{'layer'.ljust(width)}  kind  {'weight shape':<16}  {'filters':>7}  {'channels':>8}  {'MACs':>12}")
    for cost in costs:
        filters, channels = cost.weight_shape[0], cost.in_channels
        shape = "x".join(str(d) for d in cost.weight_shape)
        kind = "dw" if cost.groups > 1 and cost.groups == channels == filters else cost.kind
        print(f"{cost.name.ljust(width)}  {kind:<4}  {shape:<16}  {filters:>7}  {channels:>8}  {cost.macs:>12,}")
    print(f"total: {len(costs)} layers, {count_macs(model):,} MACs, {count_weights(model):,} conv+fc weights")
    if any(cost.groups > 1 for cost in costs):
        print("dw: a depthwise conv; its channels are its filters, which follow the filters of the conv feeding it")
    return 0


def _layers_on_device(model: Any, args: argparse.Namespace) -> int:
    """Every conv / fc layer of the dense model: MACs, device time from OpenVINO's counters, time per MAC, and
    the groups whose filters prune together: the table to read before writing a schedule."""
    import tempfile

    import numpy as np

    from . import device
    from .export import export_onnx
    from .layercost import layer_profile
    from .lock import exclusive_measurement, host_gate_for
    from .models import INPUT_SHAPE
    from .pruning import filter_groups
    from .report import text_table

    device.check_device(args.device)
    with tempfile.TemporaryDirectory(prefix="prunebench-layers-") as tmp:
        onnx_path = Path(tmp) / f"{args.model.replace(':', '_')}.onnx"
        export_onnx(model, onnx_path)
        sample = np.zeros((1, *INPUT_SHAPE), dtype=np.float32)
        # The device lock and host gate, as in a pytest run: a measurement beside running cases stays honest.
        with exclusive_measurement(args.device, None, LOCK_TIMEOUT, host_gate_for(args.device, LOCK_TIMEOUT)):
            e2e_ms, counters = device.profile(device.core().read_model(str(onnx_path)), args.device,
                                              args.precision, sample, args.rounds)
        if counters is None:
            raise DeviceError(f"{args.device} reports no performance counters: no per-layer times")
        profile = layer_profile(model, onnx_path, counters, e2e_ms)
    groups = filter_groups(model)
    group_of = {member: f"G{index}" for index, group in enumerate(groups, 1) for member in group.members}
    rows = [(r.layer, r.kind, f"{r.macs:,}", _ms(r.device_ms), _ms(r.ns_per_mac, "{:.3f}"),
             _ms(None if r.share is None else r.share * 100, "{:.1f}%"), group_of.get(r.layer, "")
             + (" (ambiguous)" if r.ambiguous else "")) for r in profile.layers]
    print("\n".join(text_table(("layer", "kind", "MACs", "device ms", "ns/MAC", "share", "filter group"), rows)))
    timed = sum(r.device_ms or 0 for r in profile.layers)
    print(f"total: {len(rows)} layers, {sum(r.macs for r in profile.layers):,} MACs; device {profile.device_ms:.4f} ms "
          f"per inference on {args.device} = layers {timed:.4f} + other {profile.other_ms:.4f} (reorders, pooling); "
          f"end to end {e2e_ms:.4f} ms [median of {args.rounds} timed inferences, {counters.rounds} profiled ones "
          f"between them; random weights]")
    for index, group in enumerate(groups, 1):
        tail = f"; input channels of {', '.join(group.consumers)} follow" if group.consumers else ""
        print(f"G{index}: filters of {', '.join(group.members)} prune together{tail}")
    return 0


def _ms(value: float | None, pattern: str = "{:.4f}") -> str:
    return "–" if value is None else pattern.format(value)


def _check(args: argparse.Namespace) -> int:
    """Parse each schedule and bind it to its model, without training or measuring anything."""
    from .models import build_model
    from .pruning import check_layers
    from .schedule import load_schedule
    from .schedule.lr_trial import check_lr_schedulers

    failed = 0
    for path in args.schedules:
        try:
            schedule = load_schedule(path)
            check_lr_schedulers(schedule)
            name = args.model or schedule.model_hint()
            if not name:
                model = model_from_file_name(path) or "resnet56"
                raise PrunebenchError(f"{path}: the schedule names no model; add `prunebench: {{model: {model}}}` "
                                      f"or pass --model {model}")
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
    import warnings

    from .report import load_cases, write_report

    cases = load_cases(args.results)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = write_report(cases, args.out, args.case)
    for warning in caught:
        print(f"prunebench: warning: {warning.message}", file=sys.stderr)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(cases)} case(s) from {len(args.results)} file(s)")
    return 0


def _cache_ls(args: argparse.Namespace) -> int:
    import time

    from .report import text_table

    cache = _open_cache(args.cache)
    entries = cache.entries()
    now = time.time()
    rows = [(entry.kind, entry.key[:12], _size(entry.bytes), _age(now - entry.used),
             "ok" if entry.problem is None else f"DAMAGED: {entry.problem}", _describe(entry.describe))
            for entry in entries]
    if rows:
        print("\n".join(text_table(("kind", "key", "size", "last used", "state", "what"), rows)))
    for path in cache.leftovers():
        print(f"leftover of a killed run: {path}")
    total = sum(entry.bytes for entry in entries)
    print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, {_size(total)} in {cache.root}")
    return 0


def _cache_prune(args: argparse.Namespace) -> int:
    """Damaged entries and leftovers always; healthy ones with --all, --older-than or --kind."""
    import time

    from .cache import KINDS

    cache = _open_cache(args.cache)
    cutoff = time.time() - args.older_than * 86400 if args.older_than is not None else None
    whole_kind = args.kind is not None and cutoff is None  # --kind alone: all of that kind
    freed = removed = 0
    for entry in cache.entries():
        if args.kind and entry.kind != args.kind:
            continue
        stale = cutoff is not None and entry.used < cutoff
        if args.all or whole_kind or stale or entry.problem is not None:
            cache.remove(entry)
            freed, removed = freed + entry.bytes, removed + 1
            print(f"removed {entry.kind}/{entry.key} ({_size(entry.bytes)}"
                  + (f", damaged: {entry.problem})" if entry.problem else ")"))
    for path in cache.clear_leftovers():
        print(f"removed leftover {path}")
    kinds = args.kind or ", ".join(KINDS)
    print(f"{removed} entr{'y' if removed == 1 else 'ies'} ({kinds}) removed, {_size(freed)} freed in {cache.root}")
    return 0


def _open_cache(root: Path) -> Any:
    from .cache import ArtifactCache

    if not root.is_dir():
        raise PrunebenchError(f"no artifact cache at {root}: pass --cache DIR (the --prunebench-cache of your runs; "
                              f"default .prunebench/cache under the project root)")
    return ArtifactCache(root, LOCK_TIMEOUT)


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count:.1f} GB"


def _age(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f} {unit} ago"
    return "just now"


def _describe(describe: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in describe.items())


def non_negative_days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use 0 days or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prunebench", description="pytest-prunebench tools")
    verbs = parser.add_subparsers(dest="verb", required=True)
    layers = verbs.add_parser("layers", help="list a model's prunable layers (names for schedules) with MACs")
    layers.add_argument("model", type=model_name, help=f"{MODELS_HINT} or package.module:factory")
    layers.add_argument("--classes", type=positive_int, default=10, help="number of classes (default 10)")
    layers.add_argument("--device", type=device_name, default=None, help="also time every layer on this OpenVINO "
                                                                        "device (performance counters), e.g. CPU")
    layers.add_argument("--precision", type=precision, default=None, help="inference precision hint with --device")
    layers.add_argument("--rounds", type=positive_int, default=100, help="timed inferences with --device, two "
                                                                        "profiled ones after every 10 (default 100)")
    layers.set_defaults(handler=_layers)
    check = verbs.add_parser("check", help="validate schedule files against their model without running them")
    check.add_argument("schedules", nargs="+", help="schedule files")
    check.add_argument("--model", type=model_name, default=None, help="model to check against")
    check.set_defaults(handler=_check)
    report = verbs.add_parser("report", help="pictures and tables (correlations, Pareto, sparsity vs latency, "
                                             "speed-ups) from pytest-benchmark JSON files: report.md, cases.csv "
                                             "(every record field) and index.html (one file, pictures inline)")
    report.add_argument("results", nargs="+", type=Path, help="pytest-benchmark JSON files (--benchmark-json, "
                                                              "or the files --benchmark-autosave writes)")
    report.add_argument("--out", type=Path, default=Path("prunebench-report"),
                        help="output directory (default prunebench-report/)")
    report.add_argument("--case", default=None, help="the case filters.png and layers.png show (default: the "
                                                     "most accurate case on the Pareto front, else the most "
                                                     "accurate case that removed structures)")
    report.set_defaults(handler=_report)
    granularity = verbs.add_parser("granularity", help="time a conv at widths w-32..w on a device and report the "
                                                       "width step at which its latency changes (for round_to)")
    granularity.add_argument("--device", type=device_name, default="CPU", help="OpenVINO device (default CPU)")
    granularity.add_argument("--precision", type=precision, default=None, help="inference precision hint (default: "
                                                                              "the device's)")
    granularity.add_argument("--width", type=probe_width, default=64, help="the widest width probed (default 64, "
                                                                          "a ResNet's last stage)")
    granularity.add_argument("--rounds", type=positive_int, default=300, help="timed inferences per width "
                                                                             "(default 300)")
    granularity.set_defaults(handler=_granularity)
    _add_cache_verbs(verbs)
    _add_worker_verb(verbs)
    return parser


def probe_width(text: str) -> int:
    from .granularity import SPAN

    value = positive_int(text)
    if value <= SPAN:
        raise argparse.ArgumentTypeError(f"{value}: probe a width above {SPAN} (widths {SPAN} below it are timed)")
    return value


def _granularity(args: argparse.Namespace) -> int:
    """The probe under the device lock and host gate, as a measurement in a pytest run takes them."""
    from . import device
    from .granularity import probe
    from .lock import exclusive_measurement, host_gate_for

    device.check_device(args.device)
    print(f"prunebench granularity: timing widths {args.width - 32}-{args.width} on {args.device}, {args.rounds} "
          f"rounds each, interleaved", flush=True)
    with exclusive_measurement(args.device, None, LOCK_TIMEOUT, host_gate_for(args.device, LOCK_TIMEOUT)):
        found = probe(args.device, args.precision, args.width, args.rounds)
    jumps = set(found.jumps)
    for width, median in found.medians_us:
        print(f"  width {width:>4}: {median:9.1f} us" + ("  <- jump" if width in jumps else ""))
    print(found.summary())
    if found.step > 1:
        print(f"use --prunebench-round-to {found.step} (or `prunebench: {{round_to: {found.step}}}` in a schedule) "
              f"at {found.precision} on {found.device}")
    return 0


def _add_worker_verb(verbs: Any) -> None:
    """`prunebench worker`: runs where the device is, with numpy, redis and OpenVINO only (worker.py)."""
    from .worker import add_arguments

    worker = verbs.add_parser("worker", help="measure jobs from a Redis broker on this host's OpenVINO devices "
                                             "(the NCS2's host included)")
    add_arguments(worker)
    worker.set_defaults(handler=_worker)


def _worker(args: argparse.Namespace) -> int:
    from .worker import run

    return run(args)


def _add_cache_verbs(verbs: Any) -> None:
    from .cache import KINDS

    cache = verbs.add_parser("cache", help="the artifact cache (dense baselines, pruned + retrained models)")
    actions = cache.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("ls", help="every entry with its size, last use and state")
    prune = actions.add_parser("prune", help="remove damaged entries and leftovers of killed runs, and with "
                                             "--all / --older-than / --kind healthy entries too")
    for action in (ls, prune):
        action.add_argument("--cache", type=Path, default=Path(".prunebench/cache"),
                            help="the cache directory (default .prunebench/cache)")
    prune.add_argument("--all", action="store_true", help="remove every entry")
    prune.add_argument("--older-than", type=non_negative_days, default=None, metavar="DAYS",
                       help="remove entries not used for DAYS days")
    prune.add_argument("--kind", choices=KINDS, default=None, help="only this kind (alone: all of this kind)")
    ls.set_defaults(handler=_cache_ls)
    prune.set_defaults(handler=_cache_prune)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except PrunebenchError as exc:
        print(f"prunebench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
