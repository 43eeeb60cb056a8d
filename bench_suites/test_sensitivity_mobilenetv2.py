"""Sensitivity analysis of MobileNetV2, as test_sensitivity.py does for ResNet-20: each stage pruned alone by its
blocks' expansion filters (the depthwise channels follow), no retraining; one record per (stage, sparsity), so
`prunebench report` draws one curve per stage. Fewer levels than ResNet-20's: its cases cost more."""

import pytest

from pytest_prunebench.strategies import single_group_schedule

pytestmark = pytest.mark.prunebench(on_collapse="record")  # a collapse at 0.8 is a finding, not a failure
MODEL = "mobilenetv2"
GROUPS = [f"layer{stage}" for stage in range(1, 8)]
SPARSITIES = [0.2, 0.4, 0.6, 0.8]
KIND = "filters"


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("group", GROUPS)
def test_sensitivity(prunebench, group, sparsity):
    result = prunebench.run(single_group_schedule(MODEL, group, sparsity, KIND, prunebench={"epochs": 0}))

    assert set(result.sparsities) == {group}
    assert result.macs < result.macs_dense, f"{group} at {sparsity}: thinning removed no MACs"
