"""Rank agreement between two sessions (issue 18, Measure 1): do two runs of the same configurations order them the
same way? Absolute median (`latency_ms`) against the drift-corrected figure (`latency_ms_rel`).

Draws `--cases` rapid-pruning configurations of ResNet-56 (the seed's search: block groups, filters or channels,
l1/l2, sparsity <= 0.9, 0 epochs) with a fixed hypothesis seed, writes them as schedule files, then runs
`bench_suites/test_schedules.py` on them in `--sessions` separate pytest sessions (each its own process, so its own
reference dense window) and prints Spearman's rho of each figure between every pair of sessions. Writes
benchmarks/rank_agreement.json.

    .venv/bin/python benchmarks/rank_agreement.py [--cases 30] [--sessions 2] [--cache DIR] [-- PYTEST ARGS]

Arguments after `--` go to both sessions, e.g. `-- --prunebench-rounds auto --prunebench-precision-target 0.5%`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIGURES = ("latency_ms", "latency_ms_rel", "latency_speedup")


def draw_schedules(count: int, folder: Path) -> list[str]:
    """`count` distinct configurations, the same for a given count in every run of this script."""
    from hypothesis import Phase, given, seed, settings

    from pytest_prunebench.schedule import schedule_yaml
    from pytest_prunebench.strategies import pruning_schedules

    drawn: dict[str, object] = {}

    @seed(18)
    @settings(max_examples=count * 4, database=None, phases=[Phase.generate], deadline=None)
    @given(pruning_schedules("resnet56", kinds=("filters", "channels"), prunebench={"epochs": 0}))
    def collect(schedule: object) -> None:
        if len(drawn) < count and schedule.active().pruners:  # a configuration that prunes something
            drawn.setdefault(schedule.name, schedule)

    collect()
    folder.mkdir(parents=True, exist_ok=True)
    for name, schedule in drawn.items():
        text = schedule_yaml(schedule)
        (folder / f"{name}.yaml").write_text(text + "prunebench: {model: resnet56, epochs: 0}\n"
                                             if "prunebench:" not in text else text, encoding="utf-8")
    return sorted(drawn)


def spearman(xs: list[float], ys: list[float]) -> float:
    import numpy as np
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(xs), np.asarray(ys)).statistic)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=None, help="an artifact cache to copy the baselines from")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "rank_agreement.json")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    work = Path(tempfile.mkdtemp(prefix="rank-agreement-"))
    names = draw_schedules(args.cases, work / "schedules")
    print(f"{len(names)} configurations in {work / 'schedules'}", flush=True)
    if args.cache and (args.cache / "baselines").is_dir():
        shutil.copytree(args.cache / "baselines", work / "cache" / "baselines",
                        ignore=shutil.ignore_patterns(".partial-*", "*.lock", "*.holder"))
    sessions = []
    for index in range(args.sessions):
        out = work / f"session{index}.json"
        started = time.time()
        finished = subprocess.run(
            [sys.executable, "-m", "pytest", str(REPO / "bench_suites" / "test_schedules.py"), "-q",
             "-p", "no:cacheprovider", f"--prunebench-schedules={work / 'schedules'}", "--prunebench-epochs", "0",
             f"--prunebench-cache={work / 'cache'}", f"--prunebench-artifacts={work / 'artifacts'}",
             f"--benchmark-json={out}", "--rootdir", str(REPO), *extra],
            capture_output=True, text=True, cwd=REPO)
        records = {b["name"]: b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]} \
            if out.exists() else {}
        print(f"session {index}: {len(records)} records, exit {finished.returncode}, "
              f"{time.time() - started:.0f} s", flush=True)
        if not records:
            print(finished.stdout[-3000:], finished.stderr[-2000:])
            raise SystemExit(1)
        sessions.append(records)
    common = sorted(set.intersection(*(set(s) for s in sessions)))
    pairs = []
    for (i, a), (j, b) in itertools.combinations(enumerate(sessions), 2):
        rho = {figure: spearman([a[n][figure] for n in common], [b[n][figure] for n in common])
               for figure in FIGURES}
        refs = (a[common[0]]["latency_ms_ref"], b[common[0]]["latency_ms_ref"])
        pairs.append({"sessions": [i, j], "cases": len(common), "spearman": rho, "references_ms": refs})
        print(f"sessions {i} and {j}, {len(common)} cases: Spearman rho latency_ms {rho['latency_ms']:.3f}, "
              f"latency_ms_rel {rho['latency_ms_rel']:.3f}, latency_speedup {rho['latency_speedup']:.3f} "
              f"(references {refs[0]:.3f} / {refs[1]:.3f} ms)", flush=True)
    args.out.write_text(json.dumps({"pytest_args": extra, "cases": common, "pairs": pairs, "sessions": [
        {n: {f: s[n].get(f) for f in (*FIGURES, "latency_ms_ref", "macs", "mac_speedup", "latency_rounds",
                                      "measured_at")} for n in common}
        for s in sessions]}, indent=1) + "\n")


if __name__ == "__main__":
    main()
