"""--prunebench-rounds auto: blocks until the speed-up's interval is narrow enough, here and on a device worker.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_adaptive_rounds.py, tests/plugin/test_adaptive_rounds.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from pytest_prunebench.intervals import relative_half_width
from pytest_prunebench.settings import Settings

# -- for real: a device worker, and a pytest run --------------------------------------------------------------------


def test_a_device_worker_measures_adaptive_rounds(redis_url: str, tmp_path: Path) -> None:
    from pytest_prunebench.broker import RemoteMeasurer
    from pytest_prunebench.export import export_onnx
    from pytest_prunebench.models import build_model

    torch.manual_seed(0)
    for name in ("dense", "case"):
        export_onnx(build_model("resnet20", 10), tmp_path / f"{name}.onnx")
    log = (tmp_path / "worker.log").open("w")
    command = [sys.executable, "-m", "pytest_prunebench.worker", "--broker", redis_url, "--device", "CPU"]
    worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    try:
        images = np.random.default_rng(0).normal(size=(8, 3, 32, 32)).astype(np.float32)
        labels = np.arange(8, dtype=np.int64)
        # A target 100 rounds cannot reach here: more rounds prove the worker timed adaptively.
        settings = Settings(rounds="auto", precision_target=0.002, max_rounds=400, warmup=2, precision="f32")
        measurement = RemoteMeasurer(redis_url).measure(tmp_path / "case.onnx", tmp_path / "dense.onnx", images,
                                                        labels, settings, "f32")
    finally:
        worker.kill()
        worker.wait(10)
    rounds = len(measurement.latencies_s)
    assert rounds == len(measurement.reference_latencies_s) and rounds % 10 == 0 and 100 < rounds <= 400
    met = relative_half_width(measurement.latencies_s, measurement.reference_latencies_s) <= 0.002
    assert met or rounds == 400  # the worker stopped where the interval was narrow enough, or at the budget
