"""Does pruning still pay once the model is quantized? Dense and pruned, at f32 and INT8, on one device, one session.

Each schedule matched by --prunebench-schedules (default: schedules/) runs twice: at f32 and quantized to INT8 by
NNCF's post-training quantization (calibrated on a seeded subset of the training split). Each case times its
pruned model interleaved with the dense model deployed the same way, so the two records of a schedule hold the
four variants: dense-f32, pruned-f32, dense-int8, pruned-int8. `prunebench report` draws their latency and top1
side by side (quantization.png) and says, per schedule, whether pruning still pays after INT8 on this device.
The pruned and retrained model is built once (the artifact cache) and deployed twice.

    pytest bench_suites/test_pruning_vs_quantization.py --benchmark-json=out.json && prunebench report out.json
"""

from dataclasses import replace

import pytest

from pytest_prunebench.schedule import load_schedule

PRECISIONS = ("f32", "int8")  # f32, not the device's default (bf16 on AMX hosts): INT8 against full precision


@pytest.mark.parametrize("precision", PRECISIONS)
def test_pruning_vs_quantization(prunebench, prunebench_schedule, precision):
    if prunebench.settings.precision is not None:
        pytest.fail(f"this suite deploys every schedule at {' and '.join(PRECISIONS)} itself; run it without "
                    f"--prunebench-precision ({prunebench.settings.precision})", pytrace=False)
    result = prunebench.run(replace(load_schedule(prunebench_schedule), precision=precision))

    assert result.precision == precision or precision == "f32"  # f32 is a hint: the record names what compiled
    if precision == "int8":
        info = result.extra_info()
        assert info["quantized_layers"] > 0, "NNCF quantized no conv or fc layer"
        assert info["ir_path"].endswith(".int8.xml") and info["ir_bytes"] > 0
    assert 0 < result.latency_ms < 1000
