"""Sensitivity analysis, as Distiller's `--sense`: each layer group pruned alone at 0.1 ... 0.9, no retraining.

Every (group, sparsity) pair is one case and one record carrying only that group's sparsity, so
`prunebench report` draws one top1 and one latency curve per group (sensitivity.png) and lists the least and
most sensitive groups. The groups are ResNet-20's residual blocks, each pruned by its first conv's filters
(the block's inner width, which never cuts the residual stream). Change MODEL, GROUPS or KIND to analyse
another model, convs (`layer2.1.conv1`) or stages (`layer3`).
"""

import pytest

from pytest_prunebench.strategies import single_group_schedule

pytestmark = pytest.mark.prunebench(on_collapse="record")  # a collapse at 0.9 is a finding, not a failure
MODEL = "resnet20"
GROUPS = [f"layer{stage}.{block}" for stage in (1, 2, 3) for block in range(3)]
SPARSITIES = [round(0.1 * step, 1) for step in range(1, 10)]
KIND = "filters"


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("group", GROUPS)
def test_sensitivity(prunebench, group, sparsity):
    result = prunebench.run(single_group_schedule(MODEL, group, sparsity, KIND, prunebench={"epochs": 0}))

    assert set(result.sparsities) == {group}  # one group alone: the record is a point of that group's curve
    assert result.macs < result.macs_dense, f"{group} at {sparsity}: thinning removed no MACs"
