"""Does pruning still pay after INT8? The four variants of a schedule timed interleaved in one window.

For each schedule: the case runs at f32 and at int8 through the library (CaseRunner: the dense baseline and the pruned
+ retrained model from the artifact cache, NNCF quantization of both with 300 training images), which gives each
variant's top1 on the device. Then dense-f32, pruned-f32, dense-int8 and pruned-int8 are compiled (f32: the f32
hint; int8: no hint, as the cases compile them) and timed together in alternating blocks (device._interleaved_latency,
the harness every case uses), `--windows` times, so every ratio printed is of medians from the same windows.

    PYTHONPATH=. .venv/bin/python benchmarks/pruning_vs_quantization.py [--rounds 400] [--windows 3] \
        [--schedules schedules/resnet20_filters.yaml ...] [--cache .prunebench/cache] > out.jsonl

One JSON line per schedule: the four top1s, the four medians (ms) of each window, and per window the ratios
int8_speedup (dense-f32 / dense-int8), pruning_f32 (dense-f32 / pruned-f32), pruning_int8 (dense-int8 / pruned-int8)
and combined (dense-f32 / pruned-int8); then their medians over the windows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_prunebench import device  # noqa: E402
from pytest_prunebench.case import CaseRunner  # noqa: E402
from pytest_prunebench.lock import cpu_work  # noqa: E402
from pytest_prunebench.schedule import load_schedule  # noqa: E402
from pytest_prunebench.settings import Settings  # noqa: E402

SCHEDULES = ("schedules/resnet20_filters.yaml", "schedules/resnet56_leader.yaml",
             "schedules/mobilenetv2_expansion.yaml")
VARIANTS = ("dense-f32", "pruned-f32", "dense-int8", "pruned-int8")


def variants(runner: CaseRunner, path: str) -> tuple[dict[str, Path], dict[str, float], dict[str, object]]:
    """The four model files and their top1 on the device, from a case at f32 and a case at int8."""
    from dataclasses import replace

    files, top1, records = {}, {}, {}
    for precision in ("f32", "int8"):
        schedule = replace(load_schedule(REPO / path), precision=precision)
        result = runner.run(schedule, f"{schedule.name}-{precision}")
        info = result.extra_info()
        dense = runner.dense(runner.model_name(schedule), runner.data_spec(schedule), runner.deployment(schedule))
        files[f"dense-{precision}"] = dense.deployed.xml if dense.deployed else dense.onnx_path
        files[f"pruned-{precision}"] = Path(info.get("ir_path") or info["onnx_path"])
        top1[f"dense-{precision}"], top1[f"pruned-{precision}"] = result.top1_dense, result.top1
        records[precision] = {k: info.get(k) for k in ("latency_speedup", "mac_speedup", "top1_float",
                                                        "calibration_images", "nncf_version", "quantized_layers",
                                                        "float_layers", "ir_bytes", "onnx_bytes")}
    return files, top1, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", nargs="+", default=list(SCHEDULES))
    parser.add_argument("--rounds", type=int, default=400, help="timed inferences per model and window")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=REPO / ".prunebench" / "cache")
    parser.add_argument("--artifacts", type=Path, default=Path("/tmp/prunebench-quantization-bench"))
    args = parser.parse_args()
    settings = Settings(cache=args.cache, artifacts=args.artifacts, rounds=200)
    runner = CaseRunner(settings, lambda line: print(line, file=sys.stderr))
    for path in args.schedules:
        files, top1, records = variants(runner, path)
        with cpu_work():
            compiled = [device.compile_for_latency(files[v], "CPU", "f32" if v.endswith("f32") else None)
                        for v in VARIANTS]
        precisions = {v: device._precision_of(c) for v, c in zip(VARIANTS, compiled, strict=True)}
        sample = runner.dataset(runner.data_spec(load_schedule(REPO / path))).test_x.numpy()[:1]
        windows = []
        for _ in range(args.windows):
            samples = device._interleaved_latency(compiled, sample, args.rounds, 50)
            medians = {v: statistics.median(s) * 1000 for v, s in zip(VARIANTS, samples, strict=True)}
            windows.append({"medians_ms": medians, "int8_speedup": medians["dense-f32"] / medians["dense-int8"],
                            "pruning_f32": medians["dense-f32"] / medians["pruned-f32"],
                            "pruning_int8": medians["dense-int8"] / medians["pruned-int8"],
                            "combined": medians["dense-f32"] / medians["pruned-int8"]})
            time.sleep(1)
        summary = {key: statistics.median(w[key] for w in windows)
                   for key in ("int8_speedup", "pruning_f32", "pruning_int8", "combined")}
        print(json.dumps({"schedule": Path(path).stem, "top1": top1, "compiled_at": precisions, "records": records,
                          "rounds": args.rounds, "windows": windows, "median_of_windows": summary}), flush=True)


if __name__ == "__main__":
    main()
