"""The channel-granularity probe: the step finder on made-up staircases, the probe model, a real probe on CPU.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_granularity.py.
"""

from __future__ import annotations

import pytest

from pytest_prunebench.cli import main
from pytest_prunebench.granularity import (
    STEPS,
    probe,
)


def test_a_real_probe_times_every_width_on_the_cpu() -> None:
    found = probe("CPU", None, width=48, rounds=20, warmup=2)
    assert [width for width, _ in found.medians_us] == list(range(16, 49))
    assert all(median > 0 for _, median in found.medians_us)
    assert found.step in (1, *STEPS) and found.precision in ("f32", "bf16", "f16")
    assert found.summary().startswith("CPU (")


def test_the_granularity_command_prints_the_table_and_refuses_a_narrow_width(capsys: pytest.CaptureFixture[str]
                                                                             ) -> None:
    assert main(["granularity", "--width", "40", "--rounds", "10"]) == 0
    out = capsys.readouterr().out
    assert "width    8:" in out and "width   40:" in out and "CPU (" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["granularity", "--width", "20"])
    assert exit_info.value.code == 2
    assert "20: probe a width above 32" in capsys.readouterr().err
