"""ONNX export: one checked file, no temp files left, and the thinned shapes really are in the graph."""

from __future__ import annotations

from pathlib import Path

import onnx
import torch
from onnx import numpy_helper

from pytest_prunebench.export import export_onnx
from pytest_prunebench.models import build_model
from pytest_prunebench.pruning import Mask, thin


def conv_weight_shapes(path: Path) -> list[tuple[int, ...]]:
    graph = onnx.load(str(path)).graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    shapes = []
    for node in graph.node:
        if node.op_type == "Conv":
            shapes.append(tuple(weights[node.input[1]].shape))
    return shapes


def test_export_writes_one_checked_file_with_the_thinned_shapes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("resnet20", 10)
    thin(model, [Mask("p", "layer1.0.conv1", "filters", tuple(range(6)), 16)])
    path = tmp_path / "case" / "model.onnx"

    size = export_onnx(model, path)

    assert size == path.stat().st_size > 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]  # no temp or side files
    onnx.checker.check_model(str(path), full_check=True)
    shapes = conv_weight_shapes(path)
    assert len(shapes) == 21  # 19 3x3 convs + 2 downsample convs; BN folds into them on export
    assert shapes[1][0] == 10 and shapes[2][1] == 10  # layer1.0.conv1 keeps 16 - 6 filters; conv2 reads 10
    assert model.training, "export must leave the model's mode as it found it"


def test_thinning_keeps_the_training_mode() -> None:
    model = build_model("resnet20", 10)
    thin(model, [Mask("p", "layer1.0.conv1", "filters", (0, 1), 16)])
    assert model.training and model.layer1[0].conv1.out_channels == 14
    model.eval()
    thin(model, [Mask("p", "layer1.0.conv1", "filters", (0,), 14)])
    assert not model.training and model.layer1[0].conv1.out_channels == 13
