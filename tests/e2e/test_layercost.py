"""Device time per layer: OpenVINO's performance counters mapped back to the model's conv and fc layers."""

from __future__ import annotations

import subprocess
import sys

from resnet20_figures import RESNET20_LAYERS

from pytest_prunebench.models import build_model, count_macs


def test_prunebench_layers_on_a_device_prints_every_layer_with_its_time() -> None:
    finished = subprocess.run([sys.executable, "-m", "pytest_prunebench.cli", "layers", "resnet20", "--device", "CPU",
                               "--rounds", "10"], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.split()[0] in RESNET20_LAYERS}
    assert set(rows) == RESNET20_LAYERS
    assert all(float(row[3]) > 0 for row in rows.values())  # device ms
    assert sum(int(row[2].replace(",", "")) for row in rows.values()) == count_macs(build_model("resnet20", 10))
    total = next(line for line in lines if line.startswith("total:"))
    assert f"{count_macs(build_model('resnet20', 10)):,} MACs" in total and "per inference on CPU" in total
    assert any(line.startswith("G1: filters of conv1, layer1.0.conv2") for line in lines)


def test_a_device_without_that_name_is_one_error_line() -> None:
    finished = subprocess.run([sys.executable, "-m", "pytest_prunebench.cli", "layers", "resnet20", "--device",
                               "NOSUCH"], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 2
    assert finished.stderr.startswith("prunebench: error: --prunebench-device NOSUCH: OpenVINO") and \
        "Traceback" not in finished.stderr
