"""Does measuring under pytest-xdist give the same latency as measuring alone?

Runs the same schedule suite three times in one go, on the same cached baselines:
  1. `-n 0`                                   one process: nothing else runs while a model is measured;
  2. `-n 2`                                   two workers: one retrains while the other measures, but the
                                              host gate pauses the retraining during every measurement;
  3. `-n 2 --prunebench-host-gate off`        the same without the gate (what the gate protects against).
and prints, per case, the median latency of runs 2 and 3 relative to run 1 (target for run 2: within 10%),
checks that no two measurement windows of a run overlap, and writes the figures to a JSON file.

    .venv/bin/python benchmarks/parallel_latency.py [--out benchmarks/parallel_latency.json] [-- PYTEST ARGS]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = {"n0": ["-n", "0"], "n2": ["-n", "2"], "n2_ungated": ["-n", "2", "--prunebench-host-gate", "off"]}
TARGET = 0.10


def run_suite(label: str, extra: list[str], work: Path, pytest_args: list[str]) -> tuple[dict[str, dict], float]:
    out = work / f"{label}.json"
    command = [sys.executable, "-m", "pytest", str(REPO / "bench_suites" / "test_schedules.py"), "-q",
               "-p", "no:cacheprovider", f"--benchmark-json={out}", f"--prunebench-artifacts={work / label}",
               *extra, *pytest_args]
    print(f"[{label}] {' '.join(command[3:])}", flush=True)
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if finished.returncode not in (0, 1):  # 1: a threshold failed, the records are still there
        sys.exit(f"[{label}] pytest exited {finished.returncode}:\n{finished.stdout[-3000:]}{finished.stderr[-3000:]}")
    records = {b["name"]: b for b in json.loads(out.read_text())["benchmarks"]}
    print(f"[{label}] {len(records)} records in {seconds:.0f} s", flush=True)
    return records, seconds


def overlapping_windows(records: dict[str, dict]) -> list[tuple[str, str]]:
    windows = sorted((b["extra_info"]["measured_at"], name) for name, b in records.items())
    return [(a, b) for (wa, a), (wb, b) in zip(windows, windows[1:], strict=False) if wb[0] < wa[1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "parallel_latency.json")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after `--`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prunebench-parallel-") as tmp:
        work = Path(tmp)
        runs = {label: run_suite(label, extra, work, args.pytest_args) for label, extra in RUNS.items()}
    base = runs["n0"][0]
    rows = []
    for name in sorted(base):
        row = {"case": name, "n0_ms": base[name]["stats"]["median"] * 1000}
        for label in ("n2", "n2_ungated"):
            record = runs[label][0].get(name)
            row[f"{label}_ms"] = record["stats"]["median"] * 1000 if record else None
            row[f"{label}_ratio"] = row[f"{label}_ms"] / row["n0_ms"] if record else None
        rows.append(row)
    print(f"\n{'case':40} {'-n 0 ms':>9} {'-n 2 ms':>9} {'ratio':>7} {'ungated ms':>11} {'ratio':>7}")
    for row in rows:
        print(f"{row['case']:40} {row['n0_ms']:9.3f} {row['n2_ms']:9.3f} {row['n2_ratio']:7.3f} "
              f"{row['n2_ungated_ms']:11.3f} {row['n2_ungated_ratio']:7.3f}")
    summary = {}
    for label in ("n2", "n2_ungated"):
        ratios = [row[f"{label}_ratio"] for row in rows if row[f"{label}_ratio"] is not None]
        summary[label] = {"median_ratio": statistics.median(ratios),
                          "max_abs_deviation": max(abs(r - 1) for r in ratios),
                          "overlapping_windows": overlapping_windows(runs[label][0]), "seconds": runs[label][1]}
    summary["n0"] = {"seconds": runs["n0"][1], "overlapping_windows": overlapping_windows(base)}
    gated = summary["n2"]
    print(f"\n-n 2 / -n 0 latency median: median ratio {gated['median_ratio']:.3f}, largest deviation "
          f"{gated['max_abs_deviation']:.1%} (target: within {TARGET:.0%}) -> "
          f"{'MET' if gated['max_abs_deviation'] <= TARGET else 'NOT MET'}")
    print(f"without the host gate: median ratio {summary['n2_ungated']['median_ratio']:.3f}, largest deviation "
          f"{summary['n2_ungated']['max_abs_deviation']:.1%}")
    print(f"overlapping measurement windows: -n 0 {len(summary['n0']['overlapping_windows'])}, "
          f"-n 2 {len(gated['overlapping_windows'])}, ungated {len(summary['n2_ungated']['overlapping_windows'])}")
    print(f"wall time: -n 0 {summary['n0']['seconds']:.0f} s, -n 2 {gated['seconds']:.0f} s, "
          f"ungated {summary['n2_ungated']['seconds']:.0f} s")
    args.out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
