"""MobileNetV2 and VGG-16 built in; depthwise convs pruned through the expansion conv's filters, counted (MACs),
exported and timed per layer like any other conv.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/e2e/test_mobilenet.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from factories import tiny_mobilenetv2
from mobilenet_cases import MIXED, onnx_macs, schedule_of
from torch import nn
from torch_threads import one_torch_thread  # noqa: F401 (autouse: one torch thread in this module)

from pytest_prunebench.errors import ScheduleError
from pytest_prunebench.export import export_onnx
from pytest_prunebench.models import build_model, count_macs, layer_costs
from pytest_prunebench.pruning import check_layers, filter_groups, layer_sizes, prune_to_final, reached_sparsity
from pytest_prunebench.schedule import Schedule, parse_schedule
from pytest_prunebench.settings import model_from_file_name, model_name
from pytest_prunebench.strategies import distiller_document, group_layers, layer_groups

# --- the models --------------------------------------------------------------------------------------------------


def test_mobilenetv2_has_distiller_style_names_and_the_papers_widths() -> None:
    model = build_model("mobilenetv2", 10)
    modules = dict(model.named_modules())
    assert [len(getattr(model, f"layer{s}")) for s in range(1, 8)] == [1, 2, 3, 4, 3, 3, 1]
    expansion, dw, projection = (modules[f"layer4.2.conv{c}"] for c in (1, 2, 3))
    assert (expansion.in_channels, expansion.out_channels) == (64, 384)
    assert dw.groups == dw.in_channels == dw.out_channels == 384 and dw.kernel_size == (3, 3)
    assert (projection.in_channels, projection.out_channels) == (384, 64)
    assert isinstance(modules["layer4.2.relu1"], nn.ReLU) and isinstance(modules["layer4.2.relu2"], nn.ReLU)
    assert "layer4.2.relu3" not in modules  # the projection is linear
    assert (modules["conv2"].out_channels, model.fc.in_features) == (1280, 1280)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    # Residual only where stride and width allow: stage 4's first block changes width, the other three add.
    assert [block.residual for block in model.layer4] == [False, True, True, True]


def test_vgg16_bn_has_distillers_layer_names() -> None:
    model = build_model("vgg16_bn_cifar", 7)  # Distiller's arch name
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and convs[:4] == ["features.0", "features.3", "features.7", "features.10"]
    assert model.classifier.in_features == 512 and model(torch.zeros(1, 3, 32, 32)).shape == (1, 7)


@pytest.mark.parametrize("name", ["mobilenetv2", "vgg16_bn"])
def test_builtin_names_are_accepted_and_found_in_file_names(name: str) -> None:
    assert model_name(name.upper()) == name
    assert model_from_file_name(f"{name}_filters.yaml") == name


def test_grouped_conv_macs_are_weight_elements_times_output_positions() -> None:
    # A depthwise conv does in/groups = 1 multiply-add per filter tap: C * 9 * H * W, not C * C * 9 * H * W.
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                          nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=4))
    costs = layer_costs(model)
    assert [c.macs for c in costs] == [3 * 8 * 32 * 32, 8 * 9 * 32 * 32, 16 * 2 * 9 * 16 * 16]


# --- pruning -----------------------------------------------------------------------------------------------------


def test_depthwise_channels_follow_the_expansion_filters_and_streams_thin_together() -> None:
    torch.manual_seed(0)
    model = tiny_mobilenetv2()
    schedule = schedule_of("mobilenetv2", **MIXED)
    check_layers(schedule, model, "mobilenetv2")
    dense = layer_sizes(model, schedule)
    macs = count_macs(model)

    prune_to_final(model, schedule)

    shapes = {name: tuple(m.weight.shape) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    # layer2 hidden widths 48 and 96 halve; each block's depthwise conv and projection inputs follow.
    assert shapes["layer2.0.conv1"][0] == shapes["layer2.0.conv2"][0] == shapes["layer2.0.conv3"][1] == 24
    assert shapes["layer2.1.conv2"] == (48, 1, 3, 3) and model.layer2[1].conv2.groups == 48
    # A depthwise conv's own filters take the expansion conv's with them: 96 -> 72.
    assert shapes["layer3.2.conv1"][0] == shapes["layer3.2.conv2"][0] == shapes["layer3.2.conv3"][1] == 72
    # Projection input channels: the block's expansion filters and depthwise channels go too.
    assert shapes["layer3.0.conv1"][0] == shapes["layer3.0.conv2"][0] == shapes["layer3.0.conv3"][1] == 48
    # The stream: every projection of stage 3 and every reader of the stream lose the same 4 of 16 channels.
    assert {shapes[f"layer3.{b}.conv3"][0] for b in range(3)} == {12}
    assert shapes["layer3.1.conv1"][1] == shapes["layer3.2.conv1"][1] == shapes["conv2"][1] == 12
    assert reached_sparsity(model, schedule, dense) == {"expansion": 0.5, "depthwise": 0.25, "projection_in": 0.5,
                                                        "stream": 0.25}
    assert count_macs(model) < macs and model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_a_stream_pruner_ranks_its_coupled_projections_together() -> None:
    torch.manual_seed(1)
    model = tiny_mobilenetv2()
    stream = [f"layer3.{b}.conv3" for b in range(3)]
    prune_to_final(model, schedule_of("mobilenetv2", stream=("filters", 0.5, stream)))
    # One choice for the added stream: the residual adds still line up after thinning.
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    assert {model.layer3[b].conv3.out_channels for b in range(3)} == {8}


@pytest.mark.parametrize(("layer", "kind", "expected"), [
    ("layer3.1.conv2", "channels", "'layer3.1.conv2' is a depthwise convolution"),
    ("layer9.0.conv1", "filters", "has no layer 'layer9.0.conv1'"),
])
def test_check_layers_refuses_a_depthwise_convs_channels(layer: str, kind: str, expected: str) -> None:
    with pytest.raises(ScheduleError, match=expected):
        check_layers(schedule_of("mobilenetv2", p=(kind, 0.5, [layer])), tiny_mobilenetv2(), "mobilenetv2")


def test_other_grouped_convs_are_still_refused() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 16, 3, groups=4))
    with pytest.raises(ScheduleError, match="'1' is a grouped convolution .4 groups."):
        check_layers(schedule_of("x", p=("filters", 0.5, ["1"])), model, "x")


def test_filter_groups_put_the_depthwise_conv_with_its_expansion_conv() -> None:
    groups = {g.members: g.consumers for g in filter_groups(tiny_mobilenetv2())}
    assert groups[("layer3.1.conv1", "layer3.1.conv2")] == ("layer3.1.conv3",)
    assert groups[("layer3.0.conv3", "layer3.1.conv3", "layer3.2.conv3")] == ("layer3.1.conv1", "layer3.2.conv1",
                                                                               "conv2")


def test_strategies_and_sensitivity_groups_use_mobilenetv2s_inner_layers() -> None:
    blocks = layer_groups("mobilenetv2")
    assert len(blocks) == 17 and blocks[3].name == "layer3.0"
    assert blocks[3].layers_for("filters") == ("layer3.0.conv1",)  # the expansion conv
    assert blocks[3].layers_for("channels") == ("layer3.0.conv3",)  # the projection's inputs, not the depthwise's
    assert group_layers("mobilenetv2", "layer4", "filters") == tuple(f"layer4.{b}.conv1" for b in range(4))
    assert group_layers("mobilenetv2", "layer4.1.conv2", "filters") == ("layer4.1.conv2",)
    with pytest.raises(ValueError, match="depthwise"):
        group_layers("mobilenetv2", "layer4.1.conv2", "channels")


def test_onnx_mac_count_counts_a_depthwise_conv_once_per_channel(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    export_onnx(model, tmp_path / "m.onnx")
    assert onnx_macs(tmp_path / "m.onnx") == 3 * 8 * 9 * 32 * 32 + 8 * 9 * 16 * 16 + 8 * 4


def test_prunebench_layers_lists_mobilenetv2_with_its_depthwise_convs(capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_prunebench.cli import main

    assert main(["layers", "mobilenetv2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.split()[0].startswith(("layer", "conv", "fc"))}
    assert sum(row[1] == "dw" for row in rows.values()) == 17
    assert rows["layer4.1.conv2"][1:5] == ["dw", "384x1x3x3", "384", "384"]  # filters and channels: 384 each
    assert rows["layer4.1.conv2"][5] == f"{384 * 9 * 8 * 8:,}"
    total = sum(int(row[-1].replace(",", "")) for row in rows.values())
    assert total == count_macs(build_model("mobilenetv2", 10)) and f"{total:,} MACs" in lines[-2]


def test_a_sweep_on_mobilenetv2_expands_stages_and_a_depthwise_conv() -> None:
    from pytest_prunebench.sweep import check_groups, parse_sweep, point_schedule

    sweep = parse_sweep({"method": "grid", "parameters": {
        "model": {"value": "mobilenetv2"}, "epochs": {"value": 0}, "sparsity.layer3": {"values": [0.25, 0.5]},
        "sparsity.layer4.1.conv2": {"value": 0.5}}}, "<sweep>")
    check_groups(sweep, "mobilenetv2")
    schedule = point_schedule(sweep, {"model": "mobilenetv2", "epochs": 0, "sparsity.layer3": 0.5,
                                      "sparsity.layer4.1.conv2": 0.5}, "mobilenetv2")
    assert {p.name: p.layers for p in schedule.pruners} == {
        "layer3": ("layer3.0.conv1", "layer3.1.conv1", "layer3.2.conv1"), "layer4.1.conv2": ("layer4.1.conv2",)}
    model = build_model("mobilenetv2", 10)
    prune_to_final(model, schedule)
    assert model.layer4[1].conv1.out_channels == model.layer4[1].conv2.groups == 192  # 384 halved, both sides


def activation_schedule(ranker: str, layers: list[str], sparsity: float = 0.25) -> Schedule:
    name = {"apoz": "ActivationAPoZRankedFilterPruner", "mean": "ActivationMeanRankedFilterPruner"}[ranker]
    document = distiller_document("mobilenetv2", {"act": {"class": name, "group_type": "Filters",
                                                          "desired_sparsity": sparsity,
                                                          "weights": [f"{layer}.weight" for layer in layers]}}, {})
    return parse_schedule(document, "<test>", name="test")


def test_activation_rankers_read_the_relu_after_an_expansion_or_depthwise_conv() -> None:
    torch.manual_seed(2)
    model = tiny_mobilenetv2()
    with torch.no_grad():  # expansion filter 5 of layer3.1 never fires: APoZ removes it first
        model.layer3[1].bn1.bias[5] = -1e4
    images = torch.randn(4, 3, 32, 32)
    schedule = activation_schedule("apoz", ["layer3.1.conv1"], 0.02)
    check_layers(schedule, model, "mobilenetv2")
    (mask,) = prune_to_final(model, schedule, images)
    assert mask.indices == (5,) and model.layer3[1].conv2.out_channels == 95  # the depthwise conv follows
    depthwise = activation_schedule("mean", ["layer3.2.conv2"])
    check_layers(depthwise, model, "mobilenetv2")
    prune_to_final(model, depthwise, images)
    assert model.layer3[2].conv1.out_channels == model.layer3[2].conv2.out_channels == 72
    with pytest.raises(ScheduleError, match="'layer3.1.relu3'"):  # the projection is linear: no ReLU to read
        check_layers(activation_schedule("apoz", ["layer3.1.conv3"]), model, "mobilenetv2")
