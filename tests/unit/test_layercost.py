"""Device time per layer: OpenVINO's performance counters mapped back to the model's conv and fc layers.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/plugin/test_layercost.py, tests/e2e/test_layercost.py.
"""

from __future__ import annotations

import pytest
from resnet20_figures import RESNET20_LAYERS

from pytest_prunebench.device import NodeTime
from pytest_prunebench.layercost import attribute, scope_layer
from pytest_prunebench.models import build_model
from pytest_prunebench.pruning import filter_groups


@pytest.mark.parametrize(
    ("node", "layer"),
    [
        ("/conv1/Conv", "conv1"),
        ("/layer1/layer1.0/conv1/Conv", "layer1.0.conv1"),
        ("/layer2/layer2.0/downsample/downsample.0/Conv", "layer2.0.downsample.0"),
        ("/fc/Gemm", "fc"),
        ("/backbone/stem/Conv", "stem"),  # a custom model's scope: the longest suffix that is a layer
        ("/layer1/layer1.0/relu1/Relu", None),
    ],
)
def test_an_onnx_scope_names_its_torch_layer(node: str, layer: str | None) -> None:
    known = RESNET20_LAYERS | {"stem"}
    assert scope_layer(node, known) == layer


def test_times_go_to_their_layers_fused_nodes_split_by_macs_and_the_rest_is_other() -> None:
    keys = {"/a/Conv": "a", "/b/Conv": "b", "/c/Conv": "c", "logits": "fc"}
    nodes = [NodeTime("/a/Conv/WithoutBiases", ("/a/Conv/WithoutBiases", "/a/Relu"), 1.0, "conv"),
             NodeTime("fused", ("/b/Conv", "/c/Conv/WithoutBiases"), 0.9, "conv"),
             NodeTime("logits", ("logits",), 0.2, "fc"),
             NodeTime("input_reorder", ("input_abcd_/a/Conv",), 0.3, "reorder")]
    per_layer, other, ambiguous = attribute(nodes, keys, {"a": 10, "b": 20, "c": 10, "fc": 1})
    assert per_layer == pytest.approx({"a": 1.0, "b": 0.6, "c": 0.3, "fc": 0.2})
    assert other == pytest.approx(0.3) and ambiguous == {"b", "c"}


def test_filter_groups_follow_the_residual_streams() -> None:
    groups = filter_groups(build_model("resnet20", 10))
    stream = next(g for g in groups if "conv1" in g.members)
    assert stream.members == ("conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2")
    assert "layer2.0.downsample.0" in stream.consumers and "layer1.0.conv1" in stream.consumers
    inner = next(g for g in groups if g.members == ("layer2.1.conv1",))
    assert inner.consumers == ("layer2.1.conv2",)
    members = [m for g in groups for m in g.members]
    assert sorted(members) == sorted(RESNET20_LAYERS - {"fc"})  # every conv in exactly one group
