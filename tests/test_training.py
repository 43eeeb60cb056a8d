"""Retraining on a schedule's timeline, on synthetic data with a tiny budget."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tiny import AGP_SCHEDULE, FILTERS_SCHEDULE, write_schedules

from pytest_prunebench.data import Dataset, DataSpec, load_dataset
from pytest_prunebench.models import build_model, count_macs
from pytest_prunebench.pruning import rank_pruner
from pytest_prunebench.schedule import load_schedule
from pytest_prunebench.training import (
    TrainConfig,
    _thin_with_optimizer,
    evaluate,
    firing_target,
    recalibrate_batchnorm,
    regularization,
    retrain,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "distiller-schedules"

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




def _poisoned(model: torch.nn.Module) -> torch.nn.Module:
    """Running statistics no real input has: what a pruned model's BN layers hold, taken to the extreme."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.fill_(1e3)
            module.running_var.fill_(1e-3)
    return model


def test_recalibration_sets_batchnorm_statistics_to_those_of_its_inputs() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3)
    model = _poisoned(torch.nn.Sequential(conv, torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1),
                                          torch.nn.BatchNorm2d(2)))
    images = torch.randn(256, 3, 8, 8)
    weights = {name: value.clone() for name, value in model.named_parameters()}
    model.eval()

    assert recalibrate_batchnorm(model, images, batch_size=128) == 2

    with torch.no_grad():
        outputs = [conv(half).transpose(0, 1).flatten(1) for half in images.split(128)]
    first = model[1]
    # Two equal batches, averaged (momentum None): the mean over all images, the mean of the batch variances.
    torch.testing.assert_close(first.running_mean, torch.cat(outputs, dim=1).mean(dim=1))
    torch.testing.assert_close(first.running_var, torch.stack([out.var(dim=1) for out in outputs]).mean(dim=0))
    assert model[4].running_mean.abs().max() < 100, "every BN is re-estimated, not only the first"
    assert first.momentum == 0.1 and model[4].momentum == 0.1 and not model.training, "mode and momentum restored"
    assert all(torch.equal(value, weights[name]) for name, value in model.named_parameters()), "weights untouched"


def test_recalibration_joins_a_one_image_last_batch_and_skips_what_it_cannot_estimate() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3), torch.nn.BatchNorm1d(3)).train()
    images = torch.randn(129, 3, 2, 2)  # 128 + 1: a 1-image batch would make BatchNorm1d raise
    assert recalibrate_batchnorm(model, images, batch_size=128) == 1
    with torch.no_grad():
        torch.testing.assert_close(model[2].running_mean, model[1](images.flatten(1)).mean(dim=0))
    assert model.training
    assert recalibrate_batchnorm(model, images[:1]) == 0 and recalibrate_batchnorm(torch.nn.Linear(2, 2),
                                                                                   images) == 0


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


@pytest.fixture
def small(synthetic: Dataset) -> Iterator[Dataset]:
    """One minibatch of training images, on one torch thread: these tests check the timeline, not accuracy, and a
    second thread only contends with whatever else the machine runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Dataset(synthetic.name, synthetic.train_x[:32], synthetic.train_y[:32], synthetic.test_x[:16],
                  synthetic.test_y[:16], synthetic.num_classes)
    torch.set_num_threads(threads)


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


def test_a_cut_timeline_warns_what_never_fired_and_the_sparsity_reached(tmp_path: Path, small: Dataset) -> None:
    schedule = load_schedule(write_schedules(tmp_path, agp=AGP_SCHEDULE) / "agp.yaml")
    torch.manual_seed(0)
    model = build_model("resnet20", 10)
    with pytest.warns(UserWarning) as caught:
        outcome = retrain(model, schedule, small, TrainConfig(epochs=2, stop_on_collapse=False))
    (message,) = [str(w.message) for w in caught if "timeline is cut" in str(w.message)]
    assert "cut at 2 epoch(s), before its pruning ends (epoch 4)" in message
    assert "never fired: extension net_thinner (from epoch 3) (masked structures were thinned at the end)" in message
    assert "gradual 0.562 of 0.75, fine 0.550 of 0.6, fc_inputs 0.500 of 0.5" in message
    assert outcome.reached["gradual"] == 9 / 16 and model.layer1[0].conv1.out_channels == 7


def test_thinning_carries_the_momentum_of_the_kept_filters(tmp_path: Path, small: Dataset) -> None:
    schedule = load_schedule(write_schedules(tmp_path, agp=AGP_SCHEDULE) / "agp.yaml")
    torch.manual_seed(0)
    model = build_model("resnet20", 10)
    config = TrainConfig(epochs=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(small.train_x[:8]).sum().backward()
    optimizer.step()
    before = optimizer.state[model.layer1[0].conv1.weight]["momentum_buffer"].clone()
    masks = rank_pruner(model, schedule.pruner("gradual"), 0.5)
    thinned = _thin_with_optimizer(model, masks, optimizer, config)
    kept = [i for i in range(16) if i not in masks[0].indices]
    after = thinned.state[model.layer1[0].conv1.weight]["momentum_buffer"]
    assert torch.equal(after, before[kept])
    next_conv = thinned.state[model.layer1[0].conv2.weight]["momentum_buffer"]
    assert next_conv.shape == (16, 8, 3, 3)


def test_activation_and_random_level_pruners_fire_on_the_timeline(tmp_path: Path, small: Dataset) -> None:
    text = """\
pruners:
  apoz:
    class: ActivationAPoZRankedFilterPruner_AGP
    initial_sparsity: 0.25
    final_sparsity: 0.5
    group_type: Filters
    weights: [module.layer1.0.conv1.weight]
  level:
    class: RandomLevelStructureParameterPruner
    sparsity_range: [0.2, 0.4]
    group_type: Filters
    weights: [module.layer2.0.conv1.weight]
policies:
  - pruner: {instance_name: apoz}
    starting_epoch: 0
    ending_epoch: 3
  - pruner: {instance_name: level}
    epochs: [0]
"""
    schedule = load_schedule(write_schedules(tmp_path, act=text) / "act.yaml")
    levels = [firing_target(schedule, schedule.pruner_policies[1], epoch, seed) for seed in (0, 1) for epoch in (0, 1)]
    assert all(0.2 <= level <= 0.4 for level in levels) and len(set(levels)) == 4
    assert levels == [firing_target(schedule, schedule.pruner_policies[1], epoch, seed) for seed in (0, 1)
                      for epoch in (0, 1)]
    torch.manual_seed(0)
    model = build_model("resnet20", 10)
    with pytest.warns(UserWarning, match="timeline is cut at 1 epoch"):
        outcome = retrain(model, schedule, small, TrainConfig(epochs=1, stop_on_collapse=False))
    assert outcome.reached["apoz"] == 4 / 16  # epoch 0's AGP target, ranked on activations, thinned at the end
    assert model.layer1[0].conv1.out_channels == 12
    drawn = firing_target(schedule, schedule.pruner_policies[1], 0, 0)
    assert model.layer2[0].conv1.out_channels == 32 - int(drawn * 32)


def test_regularizers_add_their_penalty_inside_their_window(tmp_path: Path, small: Dataset) -> None:
    text = """\
regularizers:
  slim: {class: L1Regularizer, reg_regims: {module.layer1.0.bn2.weight: 0.5}}
  lasso: {class: GroupLassoRegularizer, reg_regims: {layer1.0.conv1.weight: [0.25, Filters]}}
policies:
  - regularizer: {instance_name: slim}
    starting_epoch: 0
    ending_epoch: 1
  - regularizer: {instance_name: lasso}
    epochs: [1]
prunebench: {model: resnet20}
"""
    schedule = load_schedule(write_schedules(tmp_path, reg=text) / "reg.yaml")
    model = build_model("resnet20", 10)
    block = model.layer1[0]
    penalty = regularization(model, schedule, 0)
    assert penalty is not None
    assert float(penalty().detach()) == pytest.approx(0.5 * float(block.bn2.weight.detach().abs().sum()))
    filters = [float(block.conv1.weight[i].detach().pow(2).sum().sqrt()) for i in range(16)]
    assert float(regularization(model, schedule, 1)().detach()) == pytest.approx(0.25 * sum(filters), rel=1e-5)
    assert regularization(model, schedule, 2) is None
    # Training under the L1 term pulls the BN scales down, further than training without it.
    gammas = {}
    for name, strength in (("plain", None), ("slim", "0.5")):
        torch.manual_seed(0)
        model = build_model("resnet20", 10)
        used = schedule if strength else replace(schedule, regularizers=())
        stops = r"timeline stops at 1 epoch\(s\): never fired: regularizer lasso \(from epoch 1\) \(raise"
        with pytest.warns(UserWarning, match=stops) if strength else contextlib.nullcontext():
            retrain(model, used, small, TrainConfig(epochs=1, lr=0.1, stop_on_collapse=False))
        gammas[name] = float(model.layer1[0].bn2.weight.detach().abs().sum())
    # One SGD step on one minibatch: the same cross-entropy gradient in both runs, plus lr * 0.5 * sign(gamma) on each
    # of the 16 scales (all start at 1).
    assert gammas["plain"] - gammas["slim"] == pytest.approx(0.1 * 0.5 * 16, abs=1e-3)


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
