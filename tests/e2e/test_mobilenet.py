"""MobileNetV2 and VGG-16 built in; depthwise convs pruned through the expansion conv's filters, counted (MACs),
exported and timed per layer like any other conv.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_mobilenet.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from factories import tiny_mobilenetv2
from mobilenet_cases import MIXED, onnx_macs, schedule_of
from torch import nn
from torch_threads import one_torch_thread  # noqa: F401 (autouse: one torch thread in this module)

from pytest_prunebench import device
from pytest_prunebench.case import CaseRunner
from pytest_prunebench.data import DataSpec
from pytest_prunebench.export import export_onnx
from pytest_prunebench.layercost import layer_profile
from pytest_prunebench.lock import exclusive_measurement, host_gate_for
from pytest_prunebench.models import build_model, count_macs
from pytest_prunebench.pruning import check_layers, prune_to_final
from pytest_prunebench.schedule import load_schedule
from pytest_prunebench.settings import Settings

REPO = Path(__file__).resolve().parents[2]
TINY = "factories:tiny_mobilenetv2"


@pytest.mark.parametrize("path", sorted((REPO / "schedules").glob("mobilenetv2_*.yaml")), ids=lambda p: p.stem)
def test_shipped_mobilenetv2_schedules_thin_and_export_with_onnx_macs_equal_to_ours(path: Path,
                                                                                     tmp_path: Path) -> None:
    schedule = load_schedule(path)
    assert schedule.model_hint() == "mobilenetv2"
    torch.manual_seed(0)
    model = build_model("mobilenetv2", 10)
    check_layers(schedule, model, "mobilenetv2")
    dense_macs = count_macs(model)
    prune_to_final(model, schedule)
    onnx_path = tmp_path / "model.onnx"
    export_onnx(model, onnx_path)
    onnx.checker.check_model(str(onnx_path), full_check=True)
    assert onnx_macs(onnx_path) == count_macs(model) < dense_macs


@pytest.mark.filterwarnings("ignore:dense factories:UserWarning")  # one synthetic epoch: not a baseline worth the name
def test_mobilenetv2_cases_record_the_macs_their_onnx_files_hold(shared_cache: Path, tmp_path: Path) -> None:
    # A real case through the case runner (the plugin's path): a factory model by path, synthetic data, rapid; every
    # kind of MobileNetV2 structure pruned, depthwise convs in the count.
    settings = Settings(data=DataSpec("synthetic"), model=TINY, baseline_epochs=1, epochs=0, rounds=20, warmup=2,
                        cache=shared_cache, artifacts=tmp_path / "artifacts")
    result = CaseRunner(settings).run(schedule_of("mobilenetv2", **MIXED))
    onnx.checker.check_model(result.onnx_path, full_check=True)
    assert result.extra_info()["macs"] == onnx_macs(result.onnx_path) < result.macs_dense
    assert result.macs_dense == count_macs(tiny_mobilenetv2())
    assert result.extra_info()["model"] == TINY
    # The case's per-layer file times the thinned depthwise convs like any other layer.
    layers = {row["layer"]: row for row in json.loads(Path(result.layers_path).read_text())["layers"]}
    assert layers["layer3.2.conv2"]["macs"] == 72 * 9 * 16 * 16 and layers["layer3.2.conv2"]["device_ms"] > 0
    assert sum(row["macs"] for row in layers.values()) == result.macs


# --- device time per layer ---------------------------------------------------------------------------------------


def test_every_depthwise_conv_gets_its_own_device_time(tmp_path: Path) -> None:
    model = tiny_mobilenetv2()
    onnx_path = tmp_path / "tiny.onnx"
    export_onnx(model, onnx_path)
    with exclusive_measurement("CPU", None, 900, host_gate_for("CPU", 900)):
        e2e_ms, counters = device.profile(device.core().read_model(str(onnx_path)), "CPU", None,
                                          np.zeros((1, 3, 32, 32), np.float32), 50)
    profile = layer_profile(model, onnx_path, counters, e2e_ms)
    rows = {row.layer: row for row in profile.layers}
    depthwise = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 6
    for name in depthwise:
        assert rows[name].macs == model.get_submodule(name).weight.numel() * math.prod(
            layer_costs_output(model, name)), name
        assert rows[name].device_ms is not None and rows[name].device_ms > 0, name


def layer_costs_output(model: nn.Module, name: str) -> tuple[int, int]:
    """The output height and width of one conv, from a forward hook of its own."""
    seen: list[tuple[int, int]] = []
    handle = model.get_submodule(name).register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[2:])))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 32, 32))
    handle.remove()
    return seen[0]
