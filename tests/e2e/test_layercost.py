"""Device time per layer: OpenVINO's performance counters mapped back to the model's conv and fc layers.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_layercost.py, tests/plugin/test_layercost.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from resnet20_figures import RESNET20_LAYERS

from pytest_prunebench import device
from pytest_prunebench.export import export_onnx
from pytest_prunebench.layercost import layer_profile
from pytest_prunebench.lock import exclusive_measurement, host_gate_for
from pytest_prunebench.models import build_model, count_macs, layer_costs


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

# Sums of per-node medians against the median of per-inference sums: equal up to the noise between inferences.
# Another test worker's training shares the two cores (only gated work pauses), which skews single node times:
# 20 profiled inferences once gave 11% under CI load, so the fixture profiles 60 and allows 15%.
SUM_TOLERANCE = 0.15
TIMED_ROUNDS = 300


@pytest.fixture(scope="module")
def resnet20_profile(tmp_path_factory: pytest.TempPathFactory):
    model = build_model("resnet20", 10)
    onnx_path = tmp_path_factory.mktemp("layers") / "resnet20.onnx"
    export_onnx(model, onnx_path)
    # Measured as the plugin measures: other test workers' gated work pauses for the window.
    with exclusive_measurement("CPU", None, 900, host_gate_for("CPU", 900)):
        e2e_ms, counters = device.profile(device.core().read_model(str(onnx_path)), "CPU", None,
                                          np.zeros((1, 3, 32, 32), np.float32), TIMED_ROUNDS)
    return model, onnx_path, counters, e2e_ms


def test_cpu_counters_are_reported_for_executed_nodes(resnet20_profile) -> None:
    _, _, counters, e2e_ms = resnet20_profile
    assert counters is not None and counters.rounds == TIMED_ROUNDS // 5  # one per five timed inferences
    assert counters.counter_ms > 0 and len(counters.nodes) >= 22
    assert all(node.median_ms >= 0 and node.originals for node in counters.nodes)
    assert 0.5 < counters.share <= 1  # the nodes account for most of a profiled inference's wall time
    assert 0 < counters.device_ms_for(e2e_ms) <= e2e_ms


def test_every_conv_and_the_fc_of_resnet20_has_a_time_and_they_add_up(resnet20_profile) -> None:
    model, onnx_path, counters, e2e_ms = resnet20_profile
    profile = layer_profile(model, onnx_path, counters, e2e_ms)
    assert profile.device_ms == pytest.approx(e2e_ms * counters.share) and profile.counter_ms == counters.counter_ms
    assert {row.layer for row in profile.layers} == RESNET20_LAYERS
    assert all(row.device_ms is not None and row.device_ms > 0 for row in profile.layers), profile.layers
    assert [row.macs for row in profile.layers] == [cost.macs for cost in layer_costs(model)]
    total = sum(row.device_ms for row in profile.layers) + profile.other_ms
    assert total == pytest.approx(profile.device_ms, rel=1e-9)  # scaled together to add up
    assert sum(row.share for row in profile.layers) == pytest.approx(1 - profile.other_ms / profile.device_ms)
    # The scaling is small: the per-node medians add up to about the median of the per-inference sums.
    assert sum(node.median_ms for node in counters.nodes) == pytest.approx(counters.counter_ms, rel=SUM_TOLERANCE)
    document = json.loads(profile.write(onnx_path.with_suffix(".layers.json")).read_text())
    assert len(document["layers"]) == len(RESNET20_LAYERS) and document["device_ms"] == profile.device_ms
