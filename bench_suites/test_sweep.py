"""W&B sweep files as cases (default: sweeps/, or --prunebench-sweep FILE).

`method: grid` sweeps are parametrised: one case per grid point, with a stable id from its values.
`method: random` sweeps are one test each whose cases hypothesis draws from the declared distributions
(run_cap of them, or --prunebench-examples), guided by the sweep's metric through `hypothesis.target`.
Every case writes its own record; collapses are recorded, not failed (sweeps explore, they do not gate).
"""

import pytest

pytestmark = pytest.mark.prunebench(on_collapse="record")


def test_sweep(prunebench, prunebench_sweep) -> None:
    results = prunebench.run_sweep(prunebench_sweep)

    assert results, "the sweep ran no case"
    for result in results:
        # Every case was thinned, measured and recorded with the sweep's sparsities.
        if any(sparsity > 0 for sparsity in result.sparsities.values()):
            assert result.macs < result.macs_dense, f"{result.name}: thinning removed no MACs"
        assert len(result.latencies_s) == prunebench.settings.rounds
        assert set(result.sparsities) == set(prunebench_sweep.sweep.groups())
