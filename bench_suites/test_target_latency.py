"""The seed's target-latency experiment: retraining on, the search guided toward low latency.

Hypothesis draws configurations as in the rapid suite, but each case retrains (2 epochs by default) and
`hypothesis.target` steers generation toward configurations with a lower measured latency. Run with
`--hypothesis-show-statistics` to see the best target score. Collapsed models are recorded, not failed.
"""

import pytest
from hypothesis import given, target

from pytest_prunebench.strategies import SEARCH_SETTINGS, pruning_schedules

pytestmark = pytest.mark.prunebench(on_collapse="record")


@SEARCH_SETTINGS
@given(schedule=pruning_schedules("resnet20", max_sparsity=0.7, prunebench={"epochs": 2}))
def test_target_latency(prunebench, schedule):
    result = prunebench.run(schedule)
    target(-result.latency_ms_rel, label="latency ms, drift-corrected (negated: lower is better)")
    assert result.macs <= result.macs_dense and result.params <= result.params_dense
    if not result.collapsed:  # retraining starts from the pruned model: it must not end below where it began
        assert result.top1 >= result.top1_pruned - 1.0, "retraining lost accuracy"
