"""Device time per layer: OpenVINO's performance counters mapped back to the model's conv and fc layers.

This file holds the plugin layer's tests (pytester runs); the topic's other tests are in
tests/unit/test_layercost.py, tests/e2e/test_layercost.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import run_schedule_suite


def test_records_carry_device_and_end_to_end_time_and_a_layer_file(pytester: pytest.Pytester,
                                                                   tiny_args: list[str]) -> None:
    result = run_schedule_suite(pytester, tiny_args, "--prunebench-epochs", "0")
    result.assert_outcomes(passed=2)
    for bench in json.loads((pytester.path / "out.json").read_text())["benchmarks"]:
        info = bench["extra_info"]
        assert info["e2e_ms"] == info["latency_ms"] == pytest.approx(bench["stats"]["median"] * 1000)
        assert 0 < info["device_ms"] <= info["e2e_ms"], info
        layers = json.loads(Path(info["layers_path"]).read_text())
        assert layers["device_ms"] == info["device_ms"]
        assert sum(row["macs"] for row in layers["layers"]) == info["macs"]
        assert all(row["device_ms"] is not None for row in layers["layers"])
