"""bayes (TPE) against random on one fixed rapid search space, same case budget, several seeds.

Cases are the rapid experiment's (0 retraining epochs, cached baseline), run in-process through CaseRunner and an
Optuna study per (sampler, seed) in a temporary journal. Per run it reports:
  - single objective: the best latency_ms among cases with top1 >= BOUND, and the case number where bayes first
    reached random's best-of-N (the issue's goal: within N/2);
  - two objectives (top1 up, latency down): the hypervolume of the front, against a fixed reference point.

    python benchmarks/search_vs_random.py --budget 16 --seeds 0 1 2 --out benchmarks/search_vs_random.json
    python benchmarks/search_vs_random.py --budget 6 --seeds 0 1 --data synthetic --rounds 20   # a small run
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_prunebench import search
from pytest_prunebench.case import CaseRunner
from pytest_prunebench.settings import Settings, data_spec
from pytest_prunebench.sweep import parse_sweep, point_schedule

SPACE = {
    "model": {"value": "resnet20"}, "epochs": {"value": 0},
    "sparsity.layer1": {"min": 0.0, "max": 0.8, "distribution": "q_uniform", "q": 0.05},
    "sparsity.layer2": {"min": 0.0, "max": 0.8, "distribution": "q_uniform", "q": 0.05},
    "sparsity.layer3": {"min": 0.0, "max": 0.8, "distribution": "q_uniform", "q": 0.05},
    "kind.layer3": {"values": ["filters", "channels"]},
}


def hypervolume(points: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    """2-D hypervolume of (top1 up, latency down) points against reference (top1 floor, latency ceiling)."""
    front = sorted({(t, lat) for t, lat in points if t > reference[0] and lat < reference[1]}, key=lambda p: p[1])
    volume, best_top1 = 0.0, reference[0]
    for index, (top1, latency) in enumerate(front):
        best_top1 = max(best_top1, top1)
        right = front[index + 1][1] if index + 1 < len(front) else reference[1]
        volume += (best_top1 - reference[0]) * (right - latency)
    return volume


def run(runner: CaseRunner, sampler: str, seed: int, budget: int, objectives: list[dict[str, str]],
        root: Path) -> list[dict[str, Any]]:
    document = {"method": "bayes", "metric": objectives if len(objectives) > 1 else objectives[0],
                "run_cap": budget, "sampler": {"type": sampler, "seed": seed}, "parameters": SPACE,
                "name": f"{sampler}-{seed}-{len(objectives)}"}
    sweep = parse_sweep(document, "search_vs_random.yaml")
    handle = search.open_study(sweep, str(root / "bench.journal"), root, {}, budget)
    agent = search.Agent(handle, lambda _m: None)
    cases = []
    for slot in agent.trials():
        result = runner.run(point_schedule(sweep, slot.values, "resnet20"))
        info = result.extra_info()
        values = search.objective_values(info, sweep.objectives) or {}
        agent.tell(slot, result.name, [values[n] for n, _ in sweep.objectives], False)
        cases.append({"top1": info["top1"], "latency_ms": info["latency_ms"], "dense_ms": info["latency_ms_dense"],
                      **slot.values})
    return cases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--bound", type=float, default=90.0, help="top1 bound of the single-objective search")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    settings = Settings(data=data_spec(args.data), rounds=args.rounds, warmup=10, epochs=0,
                        artifacts=Path(tempfile.mkdtemp(prefix="prunebench-bench-")),
                        min_dense_top1=0.0 if args.data == "synthetic" else None,
                        baseline_epochs=1 if args.data == "synthetic" else None)
    runner = CaseRunner(settings, lambda _m: None)
    root = Path(tempfile.mkdtemp(prefix="prunebench-studies-"))
    single = [{"name": "latency_ms", "goal": "minimize"}]
    both = [{"name": "top1", "goal": "maximize"}, {"name": "latency_ms", "goal": "minimize"}]
    rows = []
    for seed in args.seeds:
        for sampler in ("tpe", "random"):
            started = time.perf_counter()
            one = run(runner, sampler, seed, args.budget, single, root)
            two = run(runner, sampler, seed, args.budget, both, root)
            ok = [c["latency_ms"] for c in one if c["top1"] >= args.bound]
            running = [min([c["latency_ms"] for c in one[:k + 1] if c["top1"] >= args.bound] or [float("inf")])
                       for k in range(len(one))]
            rows.append({"seed": seed, "sampler": sampler, "best_latency_ms_at_bound": min(ok) if ok else None,
                         "running_best": running, "seconds": round(time.perf_counter() - started, 1),
                         "hypervolume": hypervolume([(c["top1"], c["latency_ms"]) for c in two],
                                                    (args.bound - 20, 1.2 * max(c["dense_ms"] for c in two)))})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "running_best"}), flush=True)
    for seed in args.seeds:
        tpe, rnd = (next(r for r in rows if r["seed"] == seed and r["sampler"] == s) for s in ("tpe", "random"))
        target = rnd["best_latency_ms_at_bound"]
        reached = next((k + 1 for k, v in enumerate(tpe["running_best"]) if target is not None and v <= target), None)
        print(f"seed {seed}: bayes reached random's best-of-{args.budget} at case {reached}; hypervolume bayes "
              f"{tpe['hypervolume']:.3f} vs random {rnd['hypervolume']:.3f}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
