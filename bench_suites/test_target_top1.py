"""The seed's target-top1 experiment: retraining on, the search guided toward high top1.

As the target-latency suite, but `hypothesis.target` maximises the deployed model's top1 (measured on the
device, after retraining). Run with `--hypothesis-show-statistics` to see the best target score.
"""

import pytest
from hypothesis import given, target

from pytest_prunebench.strategies import SEARCH_SETTINGS, pruning_schedules

pytestmark = pytest.mark.prunebench(on_collapse="record")


@SEARCH_SETTINGS
@given(schedule=pruning_schedules("resnet20", max_sparsity=0.7, prunebench={"epochs": 2}))
def test_target_top1(prunebench, schedule):
    result = prunebench.run(schedule)
    target(result.top1, label="top1 %")
    assert result.macs <= result.macs_dense and result.params <= result.params_dense
    if not result.collapsed:
        assert result.top1 >= result.top1_pruned - 1.0, "retraining lost accuracy"
