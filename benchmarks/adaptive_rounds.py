"""Adaptive rounds (--prunebench-rounds auto) against fixed 1000 rounds: time to a 1% speed-up interval.

For each configuration (ResNet-56, every block's conv1 filters pruned at a sparsity, round_to 8, seeded random
weights: latency does not depend on the values), the pruned model is timed against its dense model in alternating
blocks, as a case is, under the device lock and host gate, `--repeat` times in three modes, in rotating order:

- fixed: 1000 rounds per model (the interval is whatever 1000 rounds give);
- auto 1%: adaptive rounds to a +-1% speed-up interval (at most 5000 rounds per model);
- auto same: adaptive rounds to the half-width that this repeat's fixed 1000 rounds reached (equal precision).

Each mode's time is the wall time of the timed phase (warm-up, inferences and the looks at the interval, whose
bootstraps count against it). Prints a table and writes benchmarks/adaptive_rounds.json.

    .venv/bin/python benchmarks/adaptive_rounds.py [--device CPU] [--precision P] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pytest_prunebench import device  # noqa: E402
from pytest_prunebench.export import export_onnx  # noqa: E402
from pytest_prunebench.intervals import AdaptiveRounds, relative_half_width  # noqa: E402
from pytest_prunebench.lock import exclusive_measurement, host_gate_for  # noqa: E402
from pytest_prunebench.models import build_model, count_macs  # noqa: E402
from pytest_prunebench.pruning import prune_to_final  # noqa: E402
from pytest_prunebench.strategies import layer_groups, single_group_schedule  # noqa: E402

MODEL = "resnet56"
SPARSITIES = (0.1, 0.3, 0.6)
FIXED_ROUNDS = 1000
TARGET = 0.01
WARMUP = 20


def inner_filters_schedule(sparsity: float) -> object:
    layers = [layer for group in layer_groups(MODEL, kinds=("filters",)) for layer in group.layers_for("filters")]
    schedule = single_group_schedule(MODEL, layers[0], sparsity, "filters")
    return replace(schedule, pruners=(replace(schedule.pruners[0], layers=tuple(layers)),), round_to=8)


def timed(models: list[object], sample: np.ndarray, rounds: int | AdaptiveRounds, where: str) -> dict[str, float]:
    with exclusive_measurement(where, None, 900, host_gate_for(where, 900)):
        started = time.perf_counter()
        pruned, dense = device._interleaved_latency(models, sample, rounds, WARMUP)
        seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 4), "rounds": len(pruned),
            "speedup": round(float(np.median(dense) / np.median(pruned)), 4),
            "half_width": round(relative_half_width(pruned, dense), 5)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="CPU")
    parser.add_argument("--precision", default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "adaptive_rounds.json")
    args = parser.parse_args()
    sample = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        dense = build_model(MODEL, 10)
        export_onnx(dense, Path(tmp) / "dense.onnx")
        reference = device.compile_for_latency(Path(tmp) / "dense.onnx", args.device, args.precision)
        for sparsity in SPARSITIES:
            torch.manual_seed(0)
            model = build_model(MODEL, 10)
            prune_to_final(model, inner_filters_schedule(sparsity))
            export_onnx(model, Path(tmp) / f"{sparsity}.onnx")
            compiled = device.compile_for_latency(Path(tmp) / f"{sparsity}.onnx", args.device, args.precision)
            for repeat in range(args.repeat):
                runs: dict[str, dict[str, float]] = {}
                for mode in ("fixed", "auto 1%", "auto same") if repeat % 2 == 0 else ("auto 1%", "fixed",
                                                                                      "auto same"):
                    if mode == "fixed":
                        policy: int | AdaptiveRounds = FIXED_ROUNDS
                    elif mode == "auto 1%":
                        policy = AdaptiveRounds(TARGET)
                    else:
                        policy = AdaptiveRounds(max(runs["fixed"]["half_width"], 1e-4))
                    runs[mode] = timed([compiled, reference], sample, policy, args.device)
                row = {"sparsity": sparsity, "repeat": repeat, "mac_speedup": round(count_macs(dense) /
                                                                                     count_macs(model), 3),
                       "precision": device._precision_of(compiled), **{m: r for m, r in runs.items()}}
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary = summarise(rows)
    args.out.write_text(json.dumps({"device": args.device, "target": TARGET, "fixed_rounds": FIXED_ROUNDS,
                                    "rows": rows, "summary": summary}, indent=1) + "\n")
    print_table(summary)


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for sparsity in SPARSITIES:
        mine = [r for r in rows if r["sparsity"] == sparsity]

        def med(mode: str, key: str, runs: list[dict] = mine) -> float:
            return statistics.median(r[mode][key] for r in runs)

        out.append({
            "sparsity": sparsity, "mac_speedup": mine[0]["mac_speedup"], "speedup": med("fixed", "speedup"),
            "fixed_seconds": med("fixed", "seconds"), "fixed_half_width": med("fixed", "half_width"),
            "auto_seconds": med("auto 1%", "seconds"), "auto_rounds": med("auto 1%", "rounds"),
            "auto_half_width": med("auto 1%", "half_width"),
            "auto_met": sum(r["auto 1%"]["half_width"] <= TARGET for r in mine), "repeats": len(mine),
            "time_ratio": statistics.median(r["auto 1%"]["seconds"] / r["fixed"]["seconds"] for r in mine),
            "same_seconds": med("auto same", "seconds"), "same_rounds": med("auto same", "rounds"),
            "same_ratio": statistics.median(r["auto same"]["seconds"] / r["fixed"]["seconds"] for r in mine),
        })
    return out


def print_table(summary: list[dict]) -> None:
    print("| sparsity | MAC speed-up | speed-up | fixed 1000: s, half-width | auto 1%: s, rounds, half-width, met | "
          "auto/fixed time | auto to fixed's width: s, rounds | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for s in summary:
        print(f"| {s['sparsity']} | {s['mac_speedup']:.2f}x | {s['speedup']:.3f}x | {s['fixed_seconds']:.2f}, "
              f"{s['fixed_half_width'] * 100:.2f}% | {s['auto_seconds']:.2f}, {s['auto_rounds']:.0f}, "
              f"{s['auto_half_width'] * 100:.2f}%, {s['auto_met']}/{s['repeats']} | {s['time_ratio']:.2f} | "
              f"{s['same_seconds']:.2f}, {s['same_rounds']:.0f} | {s['same_ratio']:.2f} |")


if __name__ == "__main__":
    main()
