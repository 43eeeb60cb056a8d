"""The seed's rapid-pruning experiment: many configurations, no retraining, latency minimised.

Hypothesis draws which residual blocks to prune (filters of the block's first conv or input channels of its
second), the ranker and a sparsity in 0.02 steps; every example is one case and one record, named by its
configuration. Each record carries every group's sparsity (0 where not drawn), so the seed's correlation of
sparsity with latency and top1 can be computed from the JSON. Three searches (filters only, channels only,
both mixed, which Distiller could not do) are three items, so `-n 2` spreads them over workers. Collapsed
models are data here: recorded, not failed. `--prunebench-examples N` sets how many configurations each
search draws.
"""

import pytest
from hypothesis import given, target
from hypothesis import strategies as st

from pytest_prunebench.strategies import SEARCH_SETTINGS, pruning_schedules

pytestmark = pytest.mark.prunebench(on_collapse="record")
SEARCHES = {"filters": ("filters",), "channels": ("channels",), "mixed": ("filters", "channels")}


@pytest.mark.parametrize("search", SEARCHES)
@SEARCH_SETTINGS
@given(data=st.data())
def test_rapid_pruning(prunebench, search, data):
    schedule = data.draw(pruning_schedules("resnet56", kinds=SEARCHES[search], prunebench={"epochs": 0}),
                         label="schedule")
    result = prunebench.run(schedule)
    target(-result.latency_ms_rel, label="latency ms, drift-corrected (negated: lower is better)")
    # Thinning removes structures and never adds any: fewer (or equal) MACs and parameters than dense.
    assert result.macs <= result.macs_dense and result.params <= result.params_dense
    # No retraining: the deployed model's top1 is the pruned model's, up to the device's arithmetic.
    assert abs(result.top1 - result.top1_pruned) <= 1.0
