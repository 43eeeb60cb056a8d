"""Where the device time goes: OpenVINO's executed nodes mapped back to the model's conv and fc layers.

OpenVINO fuses ops (a conv with its BN, ReLU and residual Add), renames some (a graph output's op takes the
output's name) and adds its own (layout reorders). Each executed node lists the original ONNX ops fused into it;
an ONNX Conv or Gemm op is traced to its torch module by its scope (`/layer1/layer1.0/conv1/Conv` is
`layer1.0.conv1`) or by its output tensor name. A node that fused two layers' ops is ambiguous: its time is
split between them by MACs and the layer is marked `ambiguous`. Executed nodes of no layer (reorders, pooling,
the input conversion) are `other_ms`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LAYER_OPS = ("Conv", "Gemm", "MatMul")


@dataclass(frozen=True)
class LayerTime:
    layer: str
    kind: str  # conv | fc
    macs: int
    device_ms: float | None  # None: no executed node maps to it
    share: float | None  # of the whole device time
    ambiguous: bool = False

    @property
    def ns_per_mac(self) -> float | None:
        return self.device_ms * 1e6 / self.macs if self.device_ms is not None and self.macs else None


@dataclass(frozen=True)
class LayerProfile:
    """Times in ms of a timed (unprofiled) inference: each node's median, all scaled by one factor so that the
    layers and `other_ms` add up to `device_ms`."""

    device_ms: float  # the device's own time per inference: e2e median x the counted share
    other_ms: float  # executed nodes that belong to no conv or fc
    layers: tuple[LayerTime, ...]
    counter_ms: float  # the raw sum of the counters in a profiled inference (counting slows the nodes)

    def document(self) -> dict[str, Any]:
        return {"device_ms": self.device_ms, "other_ms": self.other_ms, "counter_ms": self.counter_ms,
                "layers": [{**asdict(row), "ns_per_mac": row.ns_per_mac} for row in self.layers]}

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.document(), indent=1), encoding="utf-8")
        return path


def onnx_layer_keys(onnx_path: Path, layers: Iterable[str]) -> dict[str, str]:
    """Names OpenVINO may report for each layer's op (the ONNX node name, its output names) -> torch layer."""
    import onnx

    known = set(layers)
    keys: dict[str, str] = {}
    for node in onnx.load(str(onnx_path), load_external_data=False).graph.node:
        if node.op_type not in LAYER_OPS:
            continue
        layer = scope_layer(node.name, known)
        if layer is not None:
            keys.update(dict.fromkeys([node.name, *node.output], layer))
    return keys


def scope_layer(node_name: str, known: set[str]) -> str | None:
    """`/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`: the longest dotted suffix of the scope that is a layer.

    The exporter names a Sequential's child `<sequential>.<index>` inside the Sequential's own scope
    (`/layer2/layer2.0/downsample/downsample.0/Conv`), so such a part replaces its parent's.
    """
    parts: list[str] = []
    for part in node_name.strip("/").split("/")[:-1]:  # the last part is the op
        if parts and part.startswith(parts[-1] + "."):
            parts[-1] = part
        else:
            parts.append(part)
    for start in range(len(parts)):
        candidate = ".".join(parts[start:])
        if candidate in known:
            return candidate
    return None


def _layers_of(originals: Sequence[str], keys: Mapping[str, str]) -> set[str]:
    found = set()
    for original in originals:
        for key, layer in keys.items():
            if original == key or original.startswith(key + "/"):
                found.add(layer)
    return found


def attribute(nodes: Iterable[Any], keys: Mapping[str, str], macs: Mapping[str, int]
              ) -> tuple[dict[str, float], float, set[str]]:
    """Split executed nodes' times over layers: (ms per layer, ms of no layer, layers sharing a node)."""
    per_layer: dict[str, float] = {}
    other, ambiguous = 0.0, set()
    for node in nodes:
        layers = _layers_of(node.originals, keys)
        if not layers:
            other += node.median_ms
            continue
        if len(layers) > 1:
            ambiguous |= layers
        total = sum(macs.get(layer, 0) for layer in layers)
        for layer in layers:  # a node fusing two layers: its time split by their MACs
            weight = macs.get(layer, 0) / total if total else 1 / len(layers)
            per_layer[layer] = per_layer.get(layer, 0.0) + node.median_ms * weight
    return per_layer, other, ambiguous


def layer_profile(model: Any, onnx_path: Path, counters: Any, e2e_ms: float) -> LayerProfile:
    """Per conv / fc layer of `model` (the exported one): MACs, and device time in an inference of `e2e_ms`."""
    from .models import layer_costs

    costs = layer_costs(model)
    macs = {cost.name: cost.macs for cost in costs}
    keys = onnx_layer_keys(onnx_path, macs)
    per_layer, other, ambiguous = attribute(counters.nodes, keys, macs)
    device_ms = counters.device_ms_for(e2e_ms)
    # Per-node medians, scaled together so that layers and other add up to device_ms exactly.
    node_total = sum(node.median_ms for node in counters.nodes)
    scale = device_ms / node_total if node_total else 0.0
    rows = tuple(LayerTime(cost.name, cost.kind, cost.macs,
                           per_layer[cost.name] * scale if cost.name in per_layer else None,
                           per_layer[cost.name] / node_total if cost.name in per_layer else None,
                           cost.name in ambiguous) for cost in costs)
    return LayerProfile(device_ms, other * scale, rows, counters.counter_ms)
