"""ResNet-20's figures the tests check against (MACs, prunable layers), for every layer's test files."""

from __future__ import annotations

RESNET20_MACS = 40_813_184


def conv_macs(out_hw: int, filters: int, channels: int, kernel: int = 3) -> int:
    return out_hw * out_hw * filters * channels * kernel * kernel


# FILTERS_SCHEDULE removes floor(0.5 * 16) = 8 filters of layer1.0.conv1 (32x32 maps) and floor(0.5 * 32) = 16
# of layer2.1.conv1 (16x16 maps); each block's conv2 loses the matching input channels.
FILTERS_MACS = RESNET20_MACS - 2 * conv_macs(32, 8, 16) - 2 * conv_macs(16, 16, 32)

RESNET20_LAYERS = {"conv1", "fc", "layer2.0.downsample.0", "layer3.0.downsample.0"} | {
    f"layer{s}.{b}.conv{c}" for s in (1, 2, 3) for b in range(3) for c in (1, 2)}
