"""The harness against its limits (issue 8). So far: P3 (how much of a MAC saving becomes latency) and P2
(does its latency agree with OpenVINO's benchmark_app).

P3: ResNet-56 with every block's inner width pruned (conv1 filters, the residual stream untouched) to about half
its MACs, with and without `round_to` (kept filters rounded up to a multiple of 8, the AVX2 f32 vector width,
or 16).
For each, the measured latency speed-up (dense median / pruned median, timed interleaved in one window) over
the MAC speed-up. Target: >= 0.8.

    .venv/bin/python benchmarks/harness.py [--rounds 1000] [--repeat 3] [--out benchmarks/harness.json]

P2: for the dense ResNet-56 and the round_to-8 model of P3, the harness's latency median (its own code path:
a LATENCY-hint compile, sync batch-1 inferences, in a fresh process) over benchmark_app's median (-hint latency
-api sync -ip f32, same niter), alternating the two processes. Target: 0.97-1.03.

P1 (case wall time vs unavoidable work), P4 (plugin overhead) and P5 (cached rerun) are not written yet.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_prunebench.case import CaseRunner  # noqa: E402
from pytest_prunebench.settings import Settings  # noqa: E402
from pytest_prunebench.strategies import distiller_document, group_layers, pruner_entry, to_schedule  # noqa: E402

P3_TARGET = 0.8
P3_SPARSITY = 0.6  # 16/32/64 filters keep 7/13/26 (unrounded), 8/16/32 (round_to 8), 16/16/32 (round_to 16)
ROUND_TOS = (None, 8, 16)


def half_macs_schedule(round_to: int | None):
    """Every block's conv1 filters at P3_SPARSITY: the inner widths shrink, the residual streams stay."""
    pruners = {stage: pruner_entry("filters", "l1", P3_SPARSITY, group_layers("resnet56", stage, "filters"))
               for stage in ("layer1", "layer2", "layer3")}
    section = {"epochs": 0, **({"round_to": round_to} if round_to else {})}
    return to_schedule(distiller_document("resnet56", pruners, section))


def p3(settings: Settings, repeat: int) -> list[dict[str, float]]:
    runner = CaseRunner(settings, lambda message: print(f"  {message}", flush=True))
    rows = []
    for round_to in ROUND_TOS:
        results = [runner.run(half_macs_schedule(round_to), f"p3-round_to-{round_to or 1}") for _ in range(repeat)]
        latency = statistics.median(r.latency_speedup for r in results)
        rows.append({"round_to": round_to or 1, "macs": results[0].macs, "mac_speedup": results[0].mac_speedup,
                     "latency_speedups": [r.latency_speedup for r in results], "latency_speedup": latency,
                     "ratio": latency / results[0].mac_speedup,
                     "latency_ms": statistics.median(r.latency_ms for r in results),
                     "dense_ms": statistics.median(r.latency_ms_dense for r in results),
                     "precision": results[0].precision})
    return rows


P2_TARGET = (0.97, 1.03)
# The harness's own latency path, in a fresh process like benchmark_app's: prints the median in ms.
HARNESS_LATENCY = """
import sys, numpy as np
from pytest_prunebench import device
compiled = device._compile(device.core().read_model(sys.argv[1]), "CPU", "LATENCY", None)
sample = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
(samples,) = device._interleaved_latency([compiled], sample, int(sys.argv[2]), 20)
print(float(np.median(samples) * 1000))
"""
# benchmark_app's own main, with OpenVINO's telemetry stubbed out as the plugin does (no network traffic).
BENCHMARK_APP = """
import sys
sys.modules["openvino_telemetry"] = None
from openvino.tools.benchmark.main import main
sys.argv = ["benchmark_app", *sys.argv[1:]]
main()
"""


def harness_median(onnx_path: Path, rounds: int) -> float:
    finished = subprocess.run([sys.executable, "-c", HARNESS_LATENCY, str(onnx_path), str(rounds)], cwd=REPO,
                              capture_output=True, text=True, check=True)
    return float(finished.stdout.strip().splitlines()[-1])


def benchmark_app_median(onnx_path: Path, rounds: int) -> float:
    command = [sys.executable, "-c", BENCHMARK_APP, "-m", str(onnx_path), "-d", "CPU", "-hint", "latency", "-api",
               "sync", "-niter", str(rounds), "-ip", "f32"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Median:\s+([0-9.]+) ms", output)
    if match is None:
        raise RuntimeError(f"benchmark_app printed no median:\n{output[-2000:]}")
    return float(match.group(1))


def p2(models: dict[str, Path], rounds: int, processes: int) -> list[dict[str, object]]:
    rows = []
    for label, path in models.items():
        ours, theirs = [], []
        for _ in range(processes):  # alternating: drift between processes hits both sides alike
            ours.append(harness_median(path, rounds))
            theirs.append(benchmark_app_median(path, rounds))
        rows.append({"model": label, "harness_ms": ours, "benchmark_app_ms": theirs,
                     "ratio": statistics.median(ours) / statistics.median(theirs)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1000, help="timed inferences per model and case")
    parser.add_argument("--repeat", type=int, default=3, help="cases per configuration (median of speed-ups)")
    parser.add_argument("--processes", type=int, default=10, help="P2: processes per side (default 10)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "harness.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prunebench-harness-") as tmp:
        settings = replace(Settings(), rounds=args.rounds, artifacts=Path(tmp), cache=REPO / ".prunebench" / "cache",
                           root=REPO)
        started = time.perf_counter()
        rows = p3(settings, args.repeat)
        seconds = time.perf_counter() - started
        dense = next((Path(tmp) / "dense").glob("resnet56-*.onnx"))
        pruned = Path(tmp) / "p3-round_to-8" / "p3-round_to-8.onnx"
        p2_rows = p2({"resnet56 dense": dense, "resnet56 round_to 8": pruned}, args.rounds, args.processes)
    print(f"\nP3: ResNet-56, every block's conv1 filters at {P3_SPARSITY} (digits, 0 epochs, {args.rounds} rounds, "
          f"{args.repeat} cases each, precision {rows[0]['precision']})")
    print(f"{'round_to':>8} {'MACs':>12} {'MAC x':>6} {'latency x':>9} {'ratio':>6} {'pruned ms':>9} {'dense ms':>8}")
    for row in rows:
        print(f"{row['round_to']:>8} {row['macs']:>12,} {row['mac_speedup']:>6.2f} {row['latency_speedup']:>9.2f} "
              f"{row['ratio']:>6.2f} {row['latency_ms']:>9.3f} {row['dense_ms']:>8.3f}")
    best = max(row["ratio"] for row in rows)
    print(f"P3 target: latency speed-up / MAC speed-up >= {P3_TARGET} -> {'MET' if best >= P3_TARGET else 'NOT MET'} "
          f"(best {best:.2f}); {seconds:.0f} s")
    print(f"\nP2: latency median, harness / benchmark_app ({args.processes} alternating processes each, "
          f"{args.rounds} sync inferences, f32 input)")
    for row in p2_rows:
        ours, theirs = row["harness_ms"], row["benchmark_app_ms"]
        verdict = "MET" if P2_TARGET[0] <= row["ratio"] <= P2_TARGET[1] else "NOT MET"
        print(f"{row['model']:22} harness {statistics.median(ours):.3f} ms {[round(v, 3) for v in ours]}  "
              f"benchmark_app {statistics.median(theirs):.3f} ms {theirs}  ratio {row['ratio']:.3f} "
              f"(target {P2_TARGET[0]}-{P2_TARGET[1]}) -> {verdict}")
    args.out.write_text(json.dumps({"p3": rows, "p2": p2_rows, "rounds": args.rounds, "repeat": args.repeat},
                                   indent=2))
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
