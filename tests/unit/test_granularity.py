"""The channel-granularity probe: the step finder on made-up staircases, the probe model, a real probe on CPU.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/e2e/test_granularity.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest

from pytest_prunebench.errors import ScheduleError
from pytest_prunebench.granularity import (
    AUTO_ROUND_TO,
    SPAN,
    Granularity,
    SessionSteps,
    chain_onnx,
    find_step,
)


def staircase(tile: int, top: int = 64, noise: float = 0.01, slope: float = 0.0, seed: int = 0
              ) -> list[tuple[int, float]]:
    """Latency of widths top-SPAN..top when a device computes channels in tiles of `tile` (1: no tiles)."""
    rng = random.Random(seed)
    return [(width, (100.0 + 25.0 * -(-width // tile) * tile / 16 + slope * width) * (1 + rng.uniform(-noise, noise)))
            for width in range(top - SPAN, top + 1)]


@pytest.mark.parametrize("tile", [8, 16, 32])  # a 4-wide tile here rises < MIN_JUMP per step
def test_the_step_is_the_tile_of_a_staircase(tile: int) -> None:
    step, jumps = find_step(staircase(tile))
    assert step == tile
    assert all((width - 1) % tile == 0 for width in jumps)


def test_a_stray_jump_does_not_change_the_step_and_a_missing_one_does() -> None:
    medians = staircase(16)
    spiked = [(w, m * 1.3 if w == 43 else m) for w, m in medians]  # one noisy width: a jump at 43, a drop at 44
    assert find_step(spiked) == (16, (33, 43, 49))
    flattened = [(w, m / 1.2 if w >= 49 else m) for w, m in medians]  # no jump at 49: not a tile of 16
    assert find_step(flattened)[0] == 32


def test_no_tiles_no_step() -> None:
    assert find_step(staircase(1, slope=0.0)) == (1, ())  # 25/16 per width: a smooth rise, no jump
    assert find_step([(w, 100.0) for w in range(32, 65)]) == (1, ())
    assert find_step([(64, 1.0)]) == (1, ())


def test_the_probe_model_is_a_valid_conv_chain_of_the_asked_width() -> None:
    model = onnx.load_from_string(chain_onnx(40, 64, spatial=8, depth=2))
    onnx.checker.check_model(model, full_check=True)
    shapes = [tuple(init.dims) for init in model.graph.initializer]
    assert shapes == [(40, 64, 3, 3), (64, 40, 3, 3), (40, 64, 3, 3), (64, 40, 3, 3)]


# -- round_to: auto: one probe per session -------------------------------------------------------------------------


class Prober:
    """Counts its probes; finds the step it was given."""

    def __init__(self, step: int) -> None:
        self.step, self.calls = step, []

    def __call__(self, device: str, precision: str | None) -> Granularity:
        self.calls.append((device, precision))
        return Granularity(device, precision or "bf16", 64, self.step, (33, 49), ((32, 1.0), (33, 1.3)), 10)


class Window:
    def __init__(self) -> None:
        self.entered = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self.entered += 1
        yield


def test_a_session_probes_each_device_and_precision_once() -> None:
    prober, window = Prober(16), Window()
    steps = SessionSteps(None, prober)
    first, fresh = steps.step("CPU", None, window)
    assert (first.step, fresh) == (16, True) and "step 16" in first.found and first.by.endswith(f":{os.getpid()}")
    assert steps.step("CPU", None, window) == (first, False)
    assert steps.settled("CPU", None) == first and steps.settled("CPU", "f32") is None
    steps.step("CPU", "f32", window)
    assert prober.calls == [("CPU", None), ("CPU", "f32")] and window.entered == 2  # probed under the window


def test_xdist_workers_share_the_first_probe_through_the_directory(tmp_path: Path) -> None:
    """A second worker (another store on the same directory) reads the first one's step instead of probing, even
    when its own probe would have found another."""
    first, second = Prober(16), Prober(32)
    settled, _ = SessionSteps(tmp_path, first).step("CPU", None, Window())
    read, fresh = SessionSteps(tmp_path, second).step("CPU", None, Window())
    assert (read.step, read.found, read.by, fresh) == (16, settled.found, settled.by, False)
    assert second.calls == [] and len(first.calls) == 1
    other, _ = SessionSteps(tmp_path, second).step("GPU", None, Window())  # another device: its own probe
    assert other.step == 32 and second.calls == [("GPU", None)]


def test_round_to_accepts_auto_on_the_command_line_and_in_schedules() -> None:
    from pytest_prunebench.schedule import parse_schedule, schedule_document
    from pytest_prunebench.settings import round_to_spec

    assert round_to_spec(" Auto ") == AUTO_ROUND_TO and round_to_spec("8") == 8
    with pytest.raises(argparse.ArgumentTypeError, match="'0' must be at least 1; use a whole number such as 8, or "
                                                         "auto"):
        round_to_spec("0")
    document = {"pruners": {"p": {"class": "L1RankedStructureParameterPruner", "group_type": "Filters",
                                  "desired_sparsity": 0.3, "weights": ["layer3.0.conv1.weight"]}},
                "policies": [{"pruner": {"instance_name": "p"}, "epochs": [0]}],
                "prunebench": {"model": "resnet20", "round_to": "auto"}}
    schedule = parse_schedule(document, "s.yaml", "s")
    assert schedule.round_to == AUTO_ROUND_TO
    with pytest.raises(ScheduleError, match="prunebench.round_to: auto is measured on the device by a case runner"):
        schedule.rounding()  # pruning it outside a case runner: a clear error, not a TypeError deep in pruning
    assert schedule_document(schedule)["prunebench"]["round_to"] == "auto"  # written back as the user wrote it
    with pytest.raises(ScheduleError, match=r"prunebench.round_to: a whole number >= 1 \(e.g. 8: kept filters in "
                                            r"multiples of 8\) or auto \(measured on the device\), got 'automatic'"):
        parse_schedule({**document, "prunebench": {"round_to": "automatic"}}, "s.yaml", "s")
