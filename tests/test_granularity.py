"""The channel-granularity probe: the step finder on made-up staircases, the probe model, a real probe on CPU."""

from __future__ import annotations

import random

import onnx
import pytest

from pytest_prunebench.cli import main
from pytest_prunebench.granularity import SPAN, STEPS, chain_onnx, find_step, probe


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
