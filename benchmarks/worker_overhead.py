"""The device worker's cost against a local measurement, on one host, in one run.

Starts a redis-server on a free loopback port and one `prunebench worker --device CPU`, then measures the same
pair of ONNX files (ResNet-56 dense as the interleaved reference, a second ResNet-56 as the case) alternately
in this process (device.measure under the device lock, as CaseRunner does) and through the worker
(broker.RemoteMeasurer, as --prunebench-broker does), PAIRS times each.

- overhead: the remote call's wall time minus the worker's own measurement time (its `seconds`), i.e.
  serialisation, transfer, Redis round trips and polling, as a share of the local measurement stage's wall time;
- medians: remote median latency / local median latency of the same ONNX, per pair, against the spread of the
  local medians themselves (the noise floor).

    .venv/bin/python benchmarks/worker_overhead.py [--pairs 6] [--images 1000] [--out benchmarks/worker_overhead.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pytest_prunebench import device
from pytest_prunebench.broker import RemoteMeasurer
from pytest_prunebench.export import export_onnx
from pytest_prunebench.lock import exclusive_measurement, host_gate_for
from pytest_prunebench.models import build_model
from pytest_prunebench.settings import Settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("worker_overhead.json"))
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="prunebench-overhead-"))
    port = _free_port()
    redis = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
                              "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
                             stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    url = f"redis://127.0.0.1:{port}/0"
    log = (folder / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "pytest_prunebench.worker", "--broker", url, "--device", "CPU"],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        torch.manual_seed(0)
        dense, case = folder / "dense.onnx", folder / "case.onnx"
        export_onnx(build_model("resnet56", 10), dense)
        export_onnx(build_model("resnet56", 10), case)
        rng = np.random.default_rng(0)
        images = rng.normal(size=(args.images, 3, 32, 32)).astype(np.float32)
        labels = (np.arange(args.images) % 10).astype(np.int64)
        settings = Settings(precision="f32")
        remote = RemoteMeasurer(url)
        reference = device.compile_for_latency(dense, "CPU", "f32")
        while "serving CPU" not in (folder / "worker.log").read_text():
            time.sleep(0.1)
        rows = []
        for pair in range(args.pairs + 1):  # pair 0 warms both sides (worker's first compile, blobs sent)
            started = time.perf_counter()
            with exclusive_measurement("CPU", None, 900, host_gate_for("CPU", 900)):
                local = device.measure(case, "CPU", images, labels, "f32", settings.rounds, settings.warmup,
                                       reference)
            local_wall = time.perf_counter() - started
            started = time.perf_counter()
            measured = remote.measure(case, dense, images, labels, settings)
            remote_wall = time.perf_counter() - started
            worker_s = measured.seconds["accuracy"] + measured.seconds["compile"] + measured.seconds["latency"] \
                + measured.seconds["profile"]
            if pair:
                rows.append({"local_wall_s": local_wall, "remote_wall_s": remote_wall, "worker_measure_s": worker_s,
                             "overhead_s": remote_wall - worker_s, "local_median_ms": local.median_ms,
                             "remote_median_ms": measured.median_ms})
        overhead = [r["overhead_s"] / r["local_wall_s"] for r in rows]
        ratios = [r["remote_median_ms"] / r["local_median_ms"] for r in rows]
        local_medians = [r["local_median_ms"] for r in rows]
        summary = {
            "machine": platform.processor() or platform.machine(), "openvino": device.version(),
            "precision": local.precision, "images": args.images, "rounds": settings.rounds, "pairs": args.pairs,
            "overhead_share_median": float(np.median(overhead)), "overhead_share_max": float(np.max(overhead)),
            "overhead_s_median": float(np.median([r["overhead_s"] for r in rows])),
            "local_stage_s_median": float(np.median([r["local_wall_s"] for r in rows])),
            "median_ratio_median": float(np.median(ratios)), "median_ratio_min": float(np.min(ratios)),
            "median_ratio_max": float(np.max(ratios)),
            "local_median_spread": float(np.max(local_medians) / np.min(local_medians)), "rows": rows,
        }
        args.out.write_text(json.dumps(summary, indent=1))
        print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=1))
    finally:
        worker.terminate()
        worker.wait(30)
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
