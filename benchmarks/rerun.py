"""How much faster is a rerun of an unchanged suite with retraining, once the artifact cache holds its models?

Runs `bench_suites/test_schedules.py` (the five schedules in schedules/, each with its own retraining epochs, on
the embedded digits data) three times against one fresh cache directory:
  1. cold:  the cache is empty, so the dense baselines are trained and every case is pruned and retrained;
  2. warm:  the same suite again, unchanged: every model comes from the cache, only the device measurements run;
  3. warm2: once more, to show the rerun time is stable.
The speed-up is cold / warm (target: at least 10x). Also printed: the first run without its baseline training
(the sum of each case's own stages, from the records' `seconds`), for a suite whose baselines were cached
already. Every record of the reruns must say `artifact_cache: hit`, and their accuracy and MACs must equal the
first run's. Writes everything to a JSON file.

    .venv/bin/python benchmarks/rerun.py [--out FILE] [-- PYTEST ARGS]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "bench_suites" / "test_schedules.py"
TARGET = 10.0
SAME = ("top1", "top1_pruned", "macs", "params", "onnx_bytes")


def run_suite(label: str, work: Path, pytest_args: list[str]) -> tuple[float, dict[str, dict[str, Any]]]:
    out = work / f"{label}.json"
    command = [sys.executable, "-m", "pytest", str(SUITE), "-q", "-p", "no:cacheprovider", f"--benchmark-json={out}",
               f"--prunebench-cache={work / 'cache'}", f"--prunebench-artifacts={work / label}", *pytest_args]
    print(f"[{label}] {' '.join(command[3:])}", flush=True)
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if finished.returncode not in (0, 1):  # 1: a threshold failed, the records are still there
        sys.exit(f"[{label}] pytest exited {finished.returncode}:\n{finished.stdout[-3000:]}{finished.stderr[-3000:]}")
    records = {b["name"]: b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]}
    print(f"[{label}] {len(records)} records in {seconds:.1f} s", flush=True)
    return seconds, records


def stages(info: dict[str, Any]) -> dict[str, float]:
    """A record's wall time per stage (`seconds.dense`, `seconds.prune_retrain`, ...)."""
    return {key.removeprefix("seconds."): value for key, value in info.items() if key.startswith("seconds.")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "rerun.json")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prunebench-rerun-") as tmp:
        work = Path(tmp)
        cold_s, cold = run_suite("cold", work, args.pytest_args)
        warm_s, warm = run_suite("warm", work, args.pytest_args)
        warm2_s, warm2 = run_suite("warm2", work, args.pytest_args)
    for label, rerun in (("warm", warm), ("warm2", warm2)):
        if sorted(rerun) != sorted(cold):
            sys.exit(f"[{label}] other cases than the first run: {sorted(rerun)} vs {sorted(cold)}")
        missed = [name for name, info in rerun.items() if info["artifact_cache"] != "hit"]
        changed = [(name, key) for name, info in rerun.items() for key in SAME if info[key] != cold[name][key]]
        if missed or changed:
            sys.exit(f"[{label}] not a faithful rerun: cache misses {missed}, changed figures {changed}")
    cases_s = sum(sum(v for k, v in stages(info).items() if k != "dense") for info in cold.values())
    retrain_s = sum(stages(info).get("prune_retrain", 0.0) for info in cold.values())
    speedup = cold_s / warm_s
    print()
    print(f"{'run':<8} {'wall s':>8}")
    for label, seconds in (("cold", cold_s), ("warm", warm_s), ("warm2", warm2_s)):
        print(f"{label:<8} {seconds:>8.1f}")
    print(f"\ncached rerun speed-up: {speedup:.1f}x (cold / warm; warm2 {cold_s / warm2_s:.1f}x); target >= "
          f"{TARGET:g}x: {'met' if min(speedup, cold_s / warm2_s) >= TARGET else 'NOT met'}")
    print(f"first run: {retrain_s:.1f} s pruning + retraining in {len(cold)} cases; their stages after the dense "
          f"baseline took {cases_s:.1f} s")
    args.out.write_text(json.dumps({
        "suite": str(SUITE.relative_to(REPO)), "pytest_args": args.pytest_args, "cases": len(cold),
        "seconds": {"cold": cold_s, "warm": warm_s, "warm2": warm2_s}, "speedup": speedup,
        "speedup_warm2": cold_s / warm2_s, "prune_retrain_seconds": retrain_s,
        "case_stage_seconds": {name: stages(info) for name, info in cold.items()},
        "rerun_stage_seconds": {name: stages(info) for name, info in warm.items()},
    }, indent=1), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
