"""Retraining on a schedule's timeline, on synthetic data with a tiny budget.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/e2e/test_training.py.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tiny import AGP_SCHEDULE, write_schedules
from training_cases import _poisoned, small_dataset  # noqa: F401 (the `small` fixture)

from pytest_prunebench.data import Dataset, DataSpec, load_dataset
from pytest_prunebench.models import build_model
from pytest_prunebench.pruning import rank_pruner
from pytest_prunebench.schedule import load_schedule
from pytest_prunebench.training import (
    TrainConfig,
    _thin_with_optimizer,
    firing_target,
    recalibrate_batchnorm,
    regularization,
    retrain,
)


@pytest.fixture(scope="module")
def synthetic() -> Dataset:
    return load_dataset(DataSpec("synthetic"))


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
