"""Hypothesis strategies drawing pruning configurations, and the writer that turns a schedule back into YAML.

A drawn configuration must be a schedule like any file's: every group a pruner, sparsities on the step grid,
named by what it does, printable as a YAML file that parses back into the same schedule, and prunable.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_strategies.py.
"""

from __future__ import annotations

import math

import torch
from hypothesis import HealthCheck, given, settings

from pytest_prunebench.models import build_model, count_macs
from pytest_prunebench.pruning import prune_to_final
from pytest_prunebench.schedule import (
    Schedule,
)
from pytest_prunebench.strategies import (
    pruning_schedules,
)

STAGE_WIDTH = {1: 16, 2: 32, 3: 64}


# --- pruning a drawn schedule -------------------------------------------------------------------------------------


@settings(max_examples=5, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(pruning_schedules("resnet20"))
def test_a_drawn_schedule_prunes_resnet20(schedule: Schedule) -> None:
    torch.manual_seed(0)
    model = build_model("resnet20", 10)
    dense = count_macs(model)
    prune_to_final(model, schedule)
    pruned = count_macs(model)

    removed = {}
    for pruner in schedule.pruners:  # block groups: one pruner per residual block, each on its own block
        (block,) = {layer.rsplit(".", 1)[0] for layer in pruner.layers}
        width = STAGE_WIDTH[int(block[len("layer")])]
        removed[block] = min(math.floor(pruner.desired_sparsity * width), width - 1)
        convs = model.get_submodule(block)
        assert convs.conv1.out_channels == convs.conv2.in_channels == width - removed[block], pruner
        assert convs.conv2.out_channels == width  # the residual stream is untouched
    assert pruned <= dense
    if any(removed.values()):
        assert pruned < dense
    else:
        assert pruned == dense
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
