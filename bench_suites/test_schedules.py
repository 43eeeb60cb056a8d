"""One case per schedule file matched by --prunebench-schedules (default: schedules/).

Each case prunes and thins the model, retrains it on the schedule's timeline, exports ONNX, measures it on the
device and writes one pytest-benchmark record named after the file. Declarative thresholds in a schedule's
`prunebench:` section are checked by the plugin; the asserts below hold for every case.
"""

from pathlib import Path


def test_schedule(prunebench, prunebench_schedule: Path) -> None:
    result = prunebench.run(prunebench_schedule)

    # Physical thinning: a model pruned in filters or channels is smaller and cheaper than its dense baseline.
    # (Fine-grained and fc-input masks leave dense shapes, and a regularizer-only schedule prunes nothing.)
    if any(kind in ("filters", "channels") for kind in result.pruner_kinds.values()):
        assert result.macs < result.macs_dense, f"{result.name}: thinning removed no MACs"
        assert result.params < result.params_dense
    # The exported model ran on the device and was timed.
    assert len(result.latencies_s) == prunebench.settings.rounds
    assert 0 < result.latency_ms < 1000
    assert 0 <= result.top1 <= 100
