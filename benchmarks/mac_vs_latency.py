"""How much of a MAC saving becomes latency, per model, at two sparsity levels, with and without `round_to`.

For each model a pruning plan (PLANS) prunes the filters of the layers whose outputs no residual stream shares
(ResNet: every block's conv1; MobileNetV2: every block's expansion conv, its depthwise conv following) to a
sparsity; each configuration runs as a 0-epoch case through the library (prune, thin, export, measure with the
dense model timed interleaved in the same window), `--repeat` times. Prints latency speed-up / MAC speed-up (the
P3 figure of benchmarks/harness.py) and writes benchmarks/mac_vs_latency.json. Digits data, the device's default
precision (recorded), dense baselines from the artifact cache (trained by their recipe when missing).

    .venv/bin/python benchmarks/mac_vs_latency.py [--models resnet56 mobilenetv2] [--sparsities 0.3 0.6]
        [--round-tos 1 8 16 auto] [--precision f32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_prunebench.case import CaseRunner  # noqa: E402
from pytest_prunebench.settings import Settings, precision, round_to_spec  # noqa: E402
from pytest_prunebench.strategies import distiller_document, group_layers, pruner_entry, to_schedule  # noqa: E402

CACHE = REPO / ".prunebench" / "cache"
ROUND_TOS = (1, 8, 16)


def resnet_plan(model: str) -> Callable[[float], dict[str, Any]]:
    def plan(sparsity: float) -> dict[str, Any]:
        return {stage: pruner_entry("filters", "l1", sparsity, group_layers(model, stage, "filters"))
                for stage in ("layer1", "layer2", "layer3")}
    return plan


PLANS: dict[str, Callable[[float], dict[str, Any]]] = {"resnet56": resnet_plan("resnet56"),
                                                       "resnet20": resnet_plan("resnet20")}


def measure(runner: CaseRunner, model: str, sparsity: float, round_to: int | str | None, repeat: int
            ) -> dict[str, Any]:
    section = {"epochs": 0, **({"round_to": round_to} if round_to != 1 else {})}
    schedule = to_schedule(distiller_document(model, PLANS[model](sparsity), section))
    results = [runner.run(schedule, f"{model}-{sparsity}-round_to-{round_to}") for _ in range(repeat)]
    latency = statistics.median(r.latency_speedup for r in results)
    return {"model": model, "sparsity": sparsity, "round_to": results[0].round_to,
            "round_to_probe": results[0].round_to_probe, "macs": results[0].macs,
            "macs_dense": results[0].macs_dense, "mac_speedup": results[0].mac_speedup,
            "latency_speedups": [round(r.latency_speedup, 4) for r in results], "latency_speedup": latency,
            "ratio": latency / results[0].mac_speedup, "top1": results[0].top1, "top1_dense": results[0].top1_dense,
            "precision": results[0].precision}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet56"], choices=sorted(PLANS))
    parser.add_argument("--sparsities", nargs="+", type=float, default=[0.3, 0.6])
    parser.add_argument("--rounds", type=int, default=1000, help="timed inferences per model and case")
    parser.add_argument("--repeat", type=int, default=3, help="cases per configuration")
    parser.add_argument("--round-tos", nargs="+", type=round_to_spec, default=list(ROUND_TOS),
                        help="round_to values to compare: whole numbers or auto (one probe per run, as a session "
                             "does; default 1 8 16)")
    parser.add_argument("--precision", type=precision, default=None, help="inference precision hint (default: "
                                                                          "the device's)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "mac_vs_latency.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="prunebench-mac-latency-") as tmp:
        settings = Settings(rounds=args.rounds, artifacts=Path(tmp), cache=CACHE, root=REPO, precision=args.precision)
        runner = CaseRunner(settings, lambda message: print(f"  {message}", flush=True))
        for model in args.models:
            for sparsity in args.sparsities:
                for round_to in args.round_tos:
                    rows.append(measure(runner, model, sparsity, round_to, args.repeat))
    print(f"\n{'model':12} {'sparsity':>8} {'round_to':>8} {'MAC x':>6} {'latency x':>9} {'ratio':>6} {'top1':>6}")
    for row in rows:
        print(f"{row['model']:12} {row['sparsity']:>8} {row['round_to']:>8} {row['mac_speedup']:>6.2f} "
              f"{row['latency_speedup']:>9.2f} {row['ratio']:>6.2f} {row['top1']:>6.2f}  ({row['precision']})")
    probes = sorted({row["round_to_probe"] for row in rows if row["round_to_probe"]})
    for found in probes:
        print(f"round_to auto: {found}")
    document = {"date": time.strftime("%Y-%m-%d"), "rounds": args.rounds, "repeat": args.repeat, "rows": rows}
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
