"""User model factories that go wrong, for `--prunebench-model prunebench_hostile_models:NAME` (tests/hostile)."""

from __future__ import annotations

import sys

from torch import nn

NOT_A_FACTORY = 3


def returns_int(num_classes: int) -> int:
    return 42


def takes_no_images(num_classes: int) -> nn.Module:
    """A model for 10 features, not 3x32x32 images."""
    return nn.Linear(10, num_classes)


def three_classes(num_classes: int) -> nn.Module:
    """Ignores num_classes: 3 logits whatever the dataset has."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def raises(num_classes: int) -> nn.Module:
    raise RuntimeError("the weights file is missing")


def exits(num_classes: int) -> nn.Module:
    sys.exit("factory gave up")
