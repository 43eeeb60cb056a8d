"""Latency speed-up against MAC speed-up of pruned MobileNetV2 beside ResNet-56 (the P3 figure), with and without
round_to, on one OpenVINO device, all in one process.

Each configuration prunes every block's inner width by its filters (MobileNetV2: the expansion convs, the depthwise
convs follow; ResNet-56: each block's conv1) at a sparsity, L1-ranked on seeded random weights (latency does not
depend on the values), thinned, exported, and timed against its dense model in alternating blocks of one
measurement window (as the plugin times a case against its baseline), under the device lock and host gate.
Prints one JSON line per configuration.

    .venv/bin/python benchmarks/depthwise_speedup.py [--device CPU] [--precision f32] [--rounds 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pytest_prunebench import device  # noqa: E402
from pytest_prunebench.export import export_onnx  # noqa: E402
from pytest_prunebench.lock import exclusive_measurement, host_gate_for  # noqa: E402
from pytest_prunebench.models import build_model, count_macs  # noqa: E402
from pytest_prunebench.pruning import prune_to_final  # noqa: E402
from pytest_prunebench.strategies import layer_groups, single_group_schedule  # noqa: E402

MODELS = ("mobilenetv2", "resnet56")
SPARSITIES = (0.25, 0.5)
ROUND_TO = (1, 8, 16)


def inner_filters_schedule(model: str, sparsity: float, round_to: int):
    """One pruner over every block's inner-width filters."""
    layers = [layer for group in layer_groups(model, kinds=("filters",)) for layer in group.layers_for("filters")]
    schedule = single_group_schedule(model, layers[0], sparsity, "filters")
    pruner = schedule.pruners[0]
    from dataclasses import replace

    return replace(schedule, pruners=(replace(pruner, layers=tuple(layers)),), round_to=round_to)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="CPU")
    parser.add_argument("--precision", default=None)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    sample = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for model_name in MODELS:
            torch.manual_seed(0)
            dense = build_model(model_name, 10)
            dense_path = Path(tmp) / f"{model_name}-dense.onnx"
            export_onnx(dense, dense_path)
            reference = device.compile_for_latency(dense_path, args.device, args.precision)
            for sparsity in SPARSITIES:
                for round_to in ROUND_TO:
                    torch.manual_seed(0)
                    model = build_model(model_name, 10)
                    prune_to_final(model, inner_filters_schedule(model_name, sparsity, round_to))
                    path = Path(tmp) / f"{model_name}-{sparsity}-{round_to}.onnx"
                    export_onnx(model, path)
                    compiled = device.compile_for_latency(path, args.device, args.precision)
                    with exclusive_measurement(args.device, None, 900, host_gate_for(args.device, 900)):
                        pruned_s, dense_s = device._interleaved_latency([compiled, reference], sample,
                                                                          args.rounds, 20)
                    # The samples are seconds: medians in ms.
                    pruned_median, dense_median = (statistics.median(pruned_s) * 1e3,
                                                   statistics.median(dense_s) * 1e3)
                    print(json.dumps({
                        "model": model_name, "sparsity": sparsity, "round_to": round_to,
                        "precision": device._precision_of(compiled), "device": args.device,
                        "macs": count_macs(model), "macs_dense": count_macs(dense),
                        "mac_speedup": round(count_macs(dense) / count_macs(model), 3),
                        "latency_ms": round(pruned_median, 4), "latency_dense_ms": round(dense_median, 4),
                        "latency_speedup": round(dense_median / pruned_median, 3)}), flush=True)


if __name__ == "__main__":
    main()
