"""One case through the library in a fresh process, for benchmarks/harness.py (P1, and the library side of P4).

Prints one JSON line: the process setup (data, dense baseline from the cache and its measurement), the case's
wall time and stages (`CaseResult.seconds`), its figures, the peak RSS, and with --unavoidable the unavoidable
work: the fastest evaluation of the test set on the device (batch sizes 1, 32 and 128, inference time only, no
compile) and the timed inferences the case ran.

    .venv/bin/python benchmarks/one_case.py --data DIR --schedule FILE --cache DIR --artifacts DIR [--unavoidable]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

STARTED = time.perf_counter()

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_prunebench.case import CaseRunner  # noqa: E402
from pytest_prunebench.data import parse_data_spec  # noqa: E402
from pytest_prunebench.schedule import load_schedule  # noqa: E402
from pytest_prunebench.settings import Settings  # noqa: E402

EVAL_BATCHES = (1, 32, 128)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def unavoidable(onnx_path: str, settings: Settings, images, result) -> dict[str, object]:
    """The least the case had to spend on the device: evaluating the test set (the fastest of EVAL_BATCHES,
    inference only) plus the timed inferences of the pruned model and of the dense reference."""
    from pytest_prunebench import device

    passes = {}
    for batch in EVAL_BATCHES:
        _, fps = device.accuracy_pass(Path(onnx_path), settings.device, settings.precision, images, batch)
        passes[batch] = len(images) / fps
    best = min(passes, key=passes.get)
    timed_pruned = sum(result.latencies_s)
    timed_dense = settings.rounds * result.latency_ms_dense / 1000  # the reference's samples are not kept: median
    return {"eval_seconds_by_batch": passes, "eval_batch": best, "eval_seconds": passes[best],
            "timed_pruned_seconds": timed_pruned, "timed_dense_seconds": timed_dense}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a CIFAR-10 python-batch directory")
    parser.add_argument("--schedule", required=True, type=Path)
    parser.add_argument("--cache", required=True, type=Path)
    parser.add_argument("--artifacts", required=True, type=Path)
    parser.add_argument("--baseline-epochs", type=int, default=1)
    parser.add_argument("--unavoidable", action="store_true", help="also measure the unavoidable work")
    parser.add_argument("--prepare", action="store_true", help="only build the dense baseline (into --cache)")
    args = parser.parse_args()
    imported = time.perf_counter() - STARTED
    settings = replace(Settings(), data=parse_data_spec(f"cifar10:{args.data}"), epochs=0,
                       baseline_epochs=args.baseline_epochs, cache=args.cache, artifacts=args.artifacts, root=REPO)
    runner = CaseRunner(settings, lambda message: print(f"  {message}", file=sys.stderr, flush=True))
    schedule = load_schedule(args.schedule)
    began = time.perf_counter()
    runner.dense(runner.model_name(schedule), runner.data_spec(schedule))
    setup = time.perf_counter() - began
    if args.prepare:
        print(json.dumps({"setup_seconds": setup}))
        return
    began = time.perf_counter()
    result = runner.run(schedule, "p1")
    case_seconds = time.perf_counter() - began
    figures = {"imports_seconds": imported, "setup_seconds": setup, "case_seconds": case_seconds,
               "stages": result.seconds, "peak_rss_mb": peak_rss_mb(), "top1": result.top1,
               "top1_dense": result.top1_dense, "latency_ms": result.latency_ms,
               "latency_ms_dense": result.latency_ms_dense, "macs": result.macs, "macs_dense": result.macs_dense,
               "throughput_fps": result.throughput_fps, "precision": result.precision, "rounds": settings.rounds,
               "test_images": len(runner.dataset(runner.data_spec(schedule)).test_x),
               "artifact_cache": result.artifact_cache}
    if args.unavoidable:
        data = runner.dataset(runner.data_spec(schedule))
        figures |= unavoidable(result.onnx_path, settings, data.test_x.numpy(), result)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
