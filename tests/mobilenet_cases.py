"""One-shot schedules and an ONNX MAC count for the MobileNetV2 tests of every layer."""

from __future__ import annotations

import math
from pathlib import Path

import onnx
from onnx import numpy_helper

from pytest_prunebench.schedule import Schedule, parse_schedule
from pytest_prunebench.strategies import distiller_document, pruner_entry


def schedule_of(model: str, **pruners: tuple[str, float, list[str]]) -> Schedule:
    """A one-shot schedule: per pruner (kind, sparsity, layers), L1 ranking."""
    entries = {name: pruner_entry(kind, "l1", sparsity, layers) for name, (kind, sparsity, layers) in pruners.items()}
    return parse_schedule(distiller_document(model, entries, {}), "<test>", name="test")


# Every kind a MobileNetV2 prunes: expansion filters, a depthwise conv's filters, projection input channels, and a
# residual stream (the projection filters of a stage, added block after block).
MIXED = {"expansion": ("filters", 0.5, ["layer2.0.conv1", "layer2.1.conv1"]),
         "depthwise": ("filters", 0.25, ["layer3.2.conv2"]),
         "projection_in": ("channels", 0.5, ["layer3.0.conv3"]),
         "stream": ("filters", 0.25, ["layer3.0.conv3", "layer3.1.conv3", "layer3.2.conv3"])}


# --- MACs from the exported ONNX file: an independent count --------------------------------------------------------


def onnx_macs(path: Path | str) -> int:
    """Conv and Gemm multiply-adds read from the ONNX graph alone: per Conv, output channels x (input channels /
    group) x kernel taps x output positions, with the shapes from ONNX shape inference and the group attribute."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=True)
    graph = model.graph
    shapes = {info.name: [dim.dim_value for dim in info.type.tensor_type.shape.dim]
              for info in (*graph.input, *graph.value_info, *graph.output)}
    weights = {init.name: numpy_helper.to_array(init).shape for init in graph.initializer}
    total = 0
    for node in graph.node:
        if node.op_type == "Conv":
            group = next((attr.i for attr in node.attribute if attr.name == "group"), 1)
            _batch, in_channels, _h, _w = shapes[node.input[0]]
            _batch, out_channels, height, width = shapes[node.output[0]]
            kernel = weights[node.input[1]][2:]
            assert weights[node.input[1]][:2] == (out_channels, in_channels // group)
            total += out_channels * (in_channels // group) * math.prod(kernel) * height * width
        elif node.op_type == "Gemm":
            total += math.prod(weights[node.input[1]])
    return total
