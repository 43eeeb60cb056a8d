"""Retraining on a schedule's timeline, on synthetic data with a tiny budget.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_training.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from tiny import AGP_SCHEDULE, FILTERS_SCHEDULE, write_schedules
from training_cases import _poisoned, small_dataset  # noqa: F401 (the `small` fixture)

from pytest_prunebench.data import Dataset, DataSpec, load_dataset
from pytest_prunebench.models import build_model, count_macs
from pytest_prunebench.schedule import load_schedule
from pytest_prunebench.training import (
    TrainConfig,
    evaluate,
    retrain,
)

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "distiller-schedules"

@pytest.fixture(scope="module")
def synthetic() -> Dataset:
    return load_dataset(DataSpec("synthetic"))


def test_a_pruner_scheduled_past_the_last_epoch_is_reported(tmp_path: Path, synthetic: Dataset) -> None:
    late = FILTERS_SCHEDULE.replace("  - pruner: {instance_name: head_filters}\n    epochs: [0]",
                                    "  - pruner: {instance_name: head_filters}\n    epochs: [5]")
    schedule = load_schedule(write_schedules(tmp_path, late=late) / "late.yaml")
    model = build_model("resnet20", 10)
    with pytest.warns(UserWarning, match=r"timeline is cut at 1 epoch\(s\), before its pruning ends \(epoch 6\): "
                                         r"never fired: pruner head_filters \(from epoch 5\)"):
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


def test_a_pruned_model_is_judged_on_recalibrated_statistics(tmp_path: Path, synthetic: Dataset) -> None:
    schedule = load_schedule(write_schedules(tmp_path, filters=FILTERS_SCHEDULE) / "filters.yaml")
    small_set = Dataset(synthetic.name, synthetic.train_x[:64], synthetic.train_y[:64], synthetic.test_x[:16],
                        synthetic.test_y[:16], synthetic.num_classes)
    at_judgement: dict[int, float] = {}
    for images in (0, 64):
        torch.manual_seed(0)
        model = _poisoned(build_model("resnet20", 10))

        def judged(message: str, images: int = images, model: torch.nn.Module = model) -> None:
            if message.startswith("pruned at epoch 0"):  # printed right after the judgement
                at_judgement[images] = float(model.layer3[2].bn2.running_mean.abs().max())

        retrain(model, schedule, small_set, TrainConfig(epochs=1, stop_on_collapse=False,
                                                        recalibration_images=images), judged)
    assert at_judgement[0] == 1e3, "off: the statistics pruning left"
    assert at_judgement[64] < 100, "re-estimated before the pruned model is evaluated"


def zero_filters(model: torch.nn.Module) -> int:
    return int((model.layer1[0].conv1.weight.detach().abs().amax(dim=(1, 2, 3)) == 0).sum())


def test_agp_masks_follow_the_cubic_target_and_thinning_waits_for_its_epoch(tmp_path: Path, small: Dataset) -> None:
    schedule = load_schedule(write_schedules(tmp_path, agp=AGP_SCHEDULE) / "agp.yaml")
    torch.manual_seed(0)
    model = build_model("resnet20", 10)
    seen: list[tuple[int, int, float]] = []

    def at_epoch_end(message: str) -> None:  # filters zero / still there, and layer3.1.conv1's zero share
        if message.startswith("retrain epoch"):
            fine = model.layer3[1].conv1.weight.detach()
            seen.append((zero_filters(model), model.layer1[0].conv1.out_channels, (fine == 0).float().mean().item()))

    # span 3, targets 0.25, 0.602, 0.731, 0.75 of 16 filters: 4, 9, 11, 12. Fine: span 2, 0.2, 0.55, 0.6.
    outcome = retrain(model, schedule, small, TrainConfig(epochs=5, stop_on_collapse=False), at_epoch_end)
    assert [(zeros, width) for zeros, width, _ in seen] == [(4, 16), (9, 16), (11, 16), (0, 4), (0, 4)]
    assert [round(share, 3) for _, _, share in seen] == [0.2, 0.55, 0.6, 0.6, 0.6]  # held through training
    assert outcome.reached == {"gradual": 0.75, "fine": pytest.approx(0.6, abs=1e-3), "fc_inputs": 0.5}
    assert tuple(model.fc.weight.shape) == (10, 64) and int((model.fc.weight == 0).all(dim=0).sum()) == 32


def test_a_corpus_agp_file_on_its_whole_timeline_reaches_its_targets_and_distillers_macs(small: Dataset) -> None:
    # Distiller's agp_4 through all its 50 epochs (8 training images each, the timeline is what is checked):
    # gradual filters with a Leader group, thinning at 32, fine-grained and fc-input masks on the thinned tensors.
    if not CORPUS.is_dir():
        pytest.skip(f"Distiller schedule corpus not found at {CORPUS}")
    schedule = load_schedule(CORPUS / "resnet20_filters.schedule_agp_4.yaml")
    tiny = Dataset(small.name, small.train_x[:8], small.train_y[:8], small.test_x[:8], small.test_y[:8],
                   small.num_classes)
    model = build_model("resnet20", 10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = retrain(model, schedule, tiny, TrainConfig(epochs=50, stop_on_collapse=False))
    assert not [w for w in caught if "timeline" in str(w.message)]  # nothing was cut short
    assert count_macs(model) == 24_723_776  # the file's header
    assert outcome.reached == {"low_pruner": 0.5, "low_pruner_2": 0.5, "fine_pruner": pytest.approx(0.7, abs=1e-4),
                               "fc_pruner": 0.5}
    assert tuple(model.fc.weight.shape) == (10, 32) and tuple(model.layer3[1].conv1.weight.shape) == (64, 32, 3, 3)
