"""Model factories the tests load by path (`--prunebench-model factories:tiny_mobilenetv2`), as a user would load
`torchvision.models:mobilenet_v2`: small depthwise models that train and measure in seconds."""

from __future__ import annotations

from torch import nn

from pytest_prunebench.models import MobileNetV2Cifar

# Three of MobileNetV2's stages (a residual stream in each of the last two), at half width, with a small head.
TINY_STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2))


def tiny_mobilenetv2(num_classes: int = 10) -> nn.Module:
    return MobileNetV2Cifar(num_classes, width=0.5, stages=TINY_STAGES, head=64)
