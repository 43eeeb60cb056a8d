"""End-to-end runs on tiny settings: resnet20, synthetic data, a 1-epoch baseline, 20 timed inferences.

Everything is real: Torch-Pruning thinning, ONNX files checked by onnx.checker, OpenVINO compile and inference
on the CPU, pytest-benchmark JSON read back and by `pytest-benchmark compare`.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/plugin/test_end_to_end.py.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper
from resnet20_figures import FILTERS_MACS, conv_macs
from tiny import AGP_SCHEDULE, FILTERS_SCHEDULE, SPLICING_SCHEDULE, write_schedules

from pytest_prunebench.case import CaseRunner
from pytest_prunebench.data import DataSpec
from pytest_prunebench.errors import ScheduleError
from pytest_prunebench.schedule import load_schedule
from pytest_prunebench.settings import Settings


@pytest.fixture
def settings(shared_cache: Path, tmp_path: Path) -> Settings:
    return Settings(data=DataSpec("synthetic"), baseline_epochs=1, rounds=20, warmup=2, cache=shared_cache,
                    artifacts=tmp_path / "artifacts")


def test_retraining_follows_the_schedule_through_the_library(settings: Settings) -> None:
    with_lr = (FILTERS_SCHEDULE + "lr_schedulers:\n  decay:\n    class: ExponentialLR\n    gamma: 0.5\n").replace(
        "policies:\n", "policies:\n  - lr_scheduler: {instance_name: decay}\n    starting_epoch: 0\n"
                       "    ending_epoch: 5\n")
    schedule_path = write_schedules(settings.artifacts.parent, lr=with_lr) / "lr.yaml"
    schedule = load_schedule(schedule_path)
    result = CaseRunner(settings).run(schedule)

    assert result.epochs == schedule.pruning_horizon() + 2 == 3  # pruned at epoch 0, then two fine-tune epochs
    assert [row["lr"] for row in result.history] == [0.01, 0.005, 0.0025]  # the schedule's ExponentialLR
    assert result.macs == FILTERS_MACS
    assert 0 <= result.top1_pruned <= 100 and result.history[-1]["top1"] >= 0
    onnx.checker.check_model(result.onnx_path, full_check=True)
    assert sys.modules.get("openvino_telemetry", "absent") in (None, "absent")  # never imported: nothing sent


def test_thinning_waits_for_its_epoch_and_masks_hold_until_then(settings: Settings) -> None:
    delayed = FILTERS_SCHEDULE.replace("  - extension: {instance_name: net_thinner}\n    epochs: [0]",
                                       "  - extension: {instance_name: net_thinner}\n    epochs: [1]")
    schedule = load_schedule(write_schedules(settings.artifacts.parent, delayed=delayed) / "delayed.yaml")
    runner = CaseRunner(replace(settings, epochs=2))
    result = runner.run(schedule)
    assert result.macs == FILTERS_MACS and len(result.history) == 2


def test_the_round_to_option_rounds_kept_filters_and_is_recorded(settings: Settings) -> None:
    from dataclasses import replace as with_values

    schedule_path = write_schedules(settings.artifacts.parent, filters=FILTERS_SCHEDULE) / "filters.yaml"
    result = CaseRunner(with_values(settings, round_to=16, epochs=0)).run(load_schedule(schedule_path))

    # 50% of layer1.0.conv1's and layer2.1.conv1's filters: 8 of 16 kept rounds up to all 16; 16 of 32 kept is a
    # multiple already. So only layer2.1.conv1 loses half its filters, and layer2.1.conv2 half its inputs.
    assert result.macs_dense - result.macs == 1_179_648 + 1_179_648 and result.round_to == 16
    assert result.macs > FILTERS_MACS  # without rounding both layers lose half
    assert result.extra_info()["round_to"] == 16
    assert result.schedule_hash != load_schedule(schedule_path).semantic_hash()  # round_to is part of the config


def test_round_to_auto_rounds_to_the_step_probed_once_on_the_device(settings: Settings) -> None:
    """A real probe on the CPU (whatever step this machine shows), the case thinned to multiples of it."""
    from dataclasses import replace as with_values

    schedule = load_schedule(write_schedules(settings.artifacts.parent, filters=FILTERS_SCHEDULE) / "filters.yaml")
    messages: list[str] = []
    runner = CaseRunner(with_values(settings, round_to="auto", epochs=0), messages.append)
    result = runner.run(schedule)

    step = result.round_to
    settled = runner.steps.settled("CPU", None)
    assert settled is not None and settled.step == step and f"step {step}" in settled.found
    info = result.extra_info()
    assert info["round_to"] == step and info["round_to_auto"] is True and info["round_to_probe"] == settled.found
    # 8 of layer1.0.conv1's 16 filters and 16 of layer2.1.conv1's 32 kept, each rounded up to a multiple of step
    kept1, kept2 = min(16, -(-8 // step) * step), min(32, -(-16 // step) * step)
    assert result.macs_dense - result.macs == 2 * conv_macs(32, 16 - kept1, 16) + 2 * conv_macs(16, 32 - kept2, 32)
    assert sum("probing the channel granularity" in m for m in messages) == 1
    runner._resolve_round_to(schedule, "again")  # the session's step, not a second probe
    assert sum("probing the channel granularity" in m for m in messages) == 1
    given = load_schedule(write_schedules(settings.artifacts.parent, filters=FILTERS_SCHEDULE) / "filters.yaml")
    assert runner._resolve_round_to(given, "given") == (given, "")  # a schedule's own N, no probe


def test_round_to_auto_with_a_broker_names_the_command_to_run_on_the_worker_host(settings: Settings) -> None:
    from dataclasses import replace as with_values

    auto = FILTERS_SCHEDULE + "prunebench: {round_to: auto}\n"
    path = write_schedules(settings.artifacts.parent, auto=auto) / "auto.yaml"
    schedule = load_schedule(path)
    assert schedule.round_to == "auto"
    runner = CaseRunner(with_values(settings, broker="redis://127.0.0.1:9/0"))
    with pytest.raises(ScheduleError, match=r"prunebench.round_to: auto probes CPU in this process, which "
                                            r"--prunebench-broker measures on a device worker: run `prunebench "
                                            r"granularity --device CPU` on the worker's host"):
        runner.run(schedule)


def test_a_cut_agp_case_records_the_sparsity_reached_and_exports_its_zeros(settings: Settings) -> None:
    schedule = load_schedule(write_schedules(settings.artifacts.parent, agp=AGP_SCHEDULE) / "agp.yaml")
    with pytest.warns(UserWarning, match=r"timeline is cut at 1 epoch\(s\)"):
        result = CaseRunner(replace(settings, epochs=1)).run(schedule, stop_on_collapse=False)
    info = result.extra_info()
    assert (info["sparsity.gradual"], info["reached.gradual"]) == (0.75, 4 / 16)  # only epoch 0's target, 0.25
    assert info["sparsity.fine"] == 0.6 and info["reached.fine"] == pytest.approx(0.2, abs=1e-3)
    assert (info["kind.fine"], info["kind.fc_inputs"], info["reached.fc_inputs"]) == ("elements", "rows", 0.5)
    # The fine-grained zeros held through the retraining epoch and are in the exported file (BN folded into the
    # conv scales each filter, so zeros stay zeros); no other 64x64 conv has any.
    weights = [numpy_helper.to_array(init) for init in onnx.load(result.onnx_path).graph.initializer]
    shares = sorted(float((w == 0).mean()) for w in weights if w.shape == (64, 64, 3, 3))
    assert shares[-1] == pytest.approx(info["reached.fine"]) and shares[-2] == 0
    (fc,) = [w for w in weights if w.shape == (10, 64)]  # every class kept; half the input features zero
    assert int((fc == 0).all(axis=0).sum()) == 32


def test_a_splicing_case_keeps_its_masks_and_exports_their_zeros(settings: Settings) -> None:
    schedule = load_schedule(write_schedules(settings.artifacts.parent, splicing=SPLICING_SCHEDULE) / "splicing.yaml")
    result = CaseRunner(replace(settings, epochs=1)).run(schedule, stop_on_collapse=False)
    info = result.extra_info()
    assert (info["kind.surgery"], info["ranker.surgery"]) == ("elements", "splicing")
    assert "sparsity.surgery" not in info  # SplicingPruner has no target sparsity
    # |w| below 0.9 * (mean + 0.5 std) of the dense weights goes: about half of a trained conv's weights.
    assert 0.2 < info["reached.surgery"] < 0.9
    # keep_mask applied the masks at the end of epoch 0, the policy's last, after weights revived during it: the
    # exported conv holds exactly the recorded zeros; no other 64x64 conv has any.
    weights = [numpy_helper.to_array(init) for init in onnx.load(result.onnx_path).graph.initializer]
    shares = sorted(float((w == 0).mean()) for w in weights if w.shape == (64, 64, 3, 3))
    assert shares[-1] == pytest.approx(info["reached.surgery"]) and shares[-2] == 0
