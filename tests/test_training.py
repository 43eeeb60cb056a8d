"""Retraining on a schedule's timeline, on synthetic data with a tiny budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny import FILTERS_SCHEDULE, write_schedules

from pytest_prunebench.data import Dataset, DataSpec, load_dataset
from pytest_prunebench.models import build_model
from pytest_prunebench.schedule import load_schedule
from pytest_prunebench.training import TrainConfig, evaluate, retrain


@pytest.fixture(scope="module")
def synthetic() -> Dataset:
    return load_dataset(DataSpec("synthetic"))


def test_a_pruner_scheduled_past_the_last_epoch_is_reported(tmp_path: Path, synthetic: Dataset) -> None:
    late = FILTERS_SCHEDULE.replace("  - pruner: {instance_name: head_filters}\n    epochs: [0]",
                                    "  - pruner: {instance_name: head_filters}\n    epochs: [5]")
    schedule = load_schedule(write_schedules(tmp_path, late=late) / "late.yaml")
    model = build_model("resnet20", 10)
    with pytest.warns(UserWarning, match=r"pruner head_filters is scheduled from epoch 5 but the case retrains "
                                         r"for 1 epoch\(s\): it never fired"):
        outcome = retrain(model, schedule, synthetic, TrainConfig(epochs=1))
    assert model.layer1[0].conv1.out_channels == 16 and outcome.pruned_eval is None


def test_masks_hold_through_training_until_the_thinning_epoch(tmp_path: Path, synthetic: Dataset) -> None:
    delayed = FILTERS_SCHEDULE.replace("  - extension: {instance_name: net_thinner}\n    epochs: [0]",
                                       "  - extension: {instance_name: net_thinner}\n    epochs: [1]")
    schedule = load_schedule(write_schedules(tmp_path, delayed=delayed) / "delayed.yaml")
    torch.manual_seed(0)
    model = build_model("resnet20", 10)
    seen: list[int] = []

    def after_epoch_zero(message: str) -> None:  # progress lines mark the end of each epoch
        if message.startswith("retrain epoch 1/"):
            weight = model.layer1[0].conv1.weight
            seen.append(int((weight.detach().abs().amax(dim=(1, 2, 3)) == 0).sum()))

    # An untrained model predicts one class: collapse detection would stop it before it trains at all.
    outcome = retrain(model, schedule, synthetic, TrainConfig(epochs=2, stop_on_collapse=False), after_epoch_zero)
    assert seen == [8]  # still 16 filters after epoch 0, of which floor(0.5 * 16) = 8 held at zero
    assert model.layer1[0].conv1.out_channels == 8  # thinned at epoch 1
    assert [m.layer for m in outcome.masks] == ["layer1.0.conv1", "layer2.1.conv1"]
    assert 0 <= evaluate(model, synthetic.test_x, synthetic.test_y).top1 <= 100


def test_evaluate_leaves_the_model_in_the_mode_it_found(synthetic: Dataset) -> None:
    model = build_model("resnet20", 10)
    evaluate(model, synthetic.test_x[:8], synthetic.test_y[:8])
    assert model.training
    model.eval()
    evaluate(model, synthetic.test_x[:8], synthetic.test_y[:8])
    assert not model.training


def test_a_model_that_collapses_when_pruned_is_not_retrained(tmp_path: Path, synthetic: Dataset) -> None:
    delayed = FILTERS_SCHEDULE.replace("  - extension: {instance_name: net_thinner}\n    epochs: [0]",
                                       "  - extension: {instance_name: net_thinner}\n    epochs: [1]")
    schedule = load_schedule(write_schedules(tmp_path, delayed=delayed) / "delayed.yaml")
    torch.manual_seed(0)
    model = build_model("resnet20", 10)  # untrained: it predicts a single class, as a collapsed model does
    lines: list[str] = []
    outcome = retrain(model, schedule, synthetic, TrainConfig(epochs=3), lines.append)

    assert outcome.pruned_eval is not None and outcome.pruned_eval.collapsed(10)
    assert outcome.stopped_at == 0 and outcome.history == []  # not one epoch of retraining
    assert any(line.startswith("collapsed: it predicts a single class") for line in lines), lines
    # Thinning was due at epoch 1: the stopped timeline still thins, so latency reflects the schedule.
    assert model.layer1[0].conv1.out_channels == 8 and model.layer2[1].conv1.out_channels == 16
