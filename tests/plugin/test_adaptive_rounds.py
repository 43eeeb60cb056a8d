"""--prunebench-rounds auto: blocks until the speed-up's interval is narrow enough, here and on a device worker.

This file holds the plugin layer's tests (pytester runs); the topic's other tests are in
tests/unit/test_adaptive_rounds.py, tests/e2e/test_adaptive_rounds.py.
"""

from __future__ import annotations

import json

import pytest
from tiny import CHANNELS_SCHEDULE, SCHEDULE_SUITE, write_schedules


def test_a_pytest_run_records_rounds_used_and_whether_the_target_was_met(pytester: pytest.Pytester,
                                                                        tiny_args: list[str]) -> None:
    write_schedules(pytester.path, channels=CHANNELS_SCHEDULE)
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    args = list(tiny_args)
    args[args.index("--prunebench-rounds") + 1] = "auto"  # instead of tiny_args' 20
    result = pytester.runpytest_subprocess(*args, "--prunebench-precision-target=3%", "--prunebench-max-rounds=300",
                                           "--prunebench-epochs", "0", "--prunebench-artifacts=artifacts",
                                           "--benchmark-json=out.json")
    result.assert_outcomes(passed=1)
    (record,) = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    info = record["extra_info"]
    assert info["latency_rounds"] == record["stats"]["rounds"] and 100 <= info["latency_rounds"] <= 300
    assert info["latency_precision_target"] == 0.03
    low, high = info["latency_speedup_ci"]
    half_width = max(info["latency_speedup"] - low, high - info["latency_speedup"]) / info["latency_speedup"]
    assert info["latency_precision"] == pytest.approx(half_width)
    assert info["latency_precision_met"] is (half_width <= 0.03)
    assert info["latency_precision_met"] or info["latency_rounds"] == 300
