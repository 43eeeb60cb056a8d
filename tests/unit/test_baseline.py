"""Dense baselines trained to a stated quality: the recipe registry, the early stop, the cache key, the quality floor
and the torch/device precision gap. Pure units first, then real pytest sessions on tiny settings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pytest_prunebench import training
from pytest_prunebench.baseline import (
    DATASET_TARGETS,
    DEEP_RESNET,
    DEFAULT_RECIPE,
    FAMILY_RECIPES,
    baseline_key,
    baseline_recipe,
)
from pytest_prunebench.case import DENSE_TOP1_FLOORS, dense_floor, precision_gap, weak_baseline
from pytest_prunebench.data import Dataset, DataSpec, load_dataset
from pytest_prunebench.settings import Settings
from pytest_prunebench.training import EarlyStop, EvalResult, TrainConfig, train_dense


@pytest.fixture(scope="module")
def synthetic() -> Dataset:
    return load_dataset(DataSpec("synthetic"))


def small_net() -> nn.Module:
    """No batch norm: with lr 0 its weights and therefore its predictions stay exactly as they are."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10))


# --- the recipe -------------------------------------------------------------------------------------------------

def test_each_model_family_has_its_recipe_and_a_forced_count_turns_the_early_stop_off() -> None:
    resnet = baseline_recipe("resnet56", "digits", None)
    assert (resnet.lr, resnet.batch_size, resnet.warmup_epochs) == (FAMILY_RECIPES["resnet"].lr, 32, 1)
    assert resnet.patience is not None and resnet.target_top1 == DATASET_TARGETS["digits"]
    assert baseline_recipe("resnet110", "digits", None).lr == DEEP_RESNET.lr < resnet.lr
    assert baseline_recipe("my.models:net", "cifar10", None).lr == DEFAULT_RECIPE.lr
    assert baseline_recipe("resnet20", "cifar10", None).target_top1 is None  # no known ceiling there
    forced = baseline_recipe("resnet56", "digits", 3)
    assert (forced.max_epochs, forced.patience, forced.target_top1, forced.early_stop()) == (3, None, None, None)
    assert "exactly 3 epoch(s)" in forced.describe() and "patience" in resnet.describe()


def test_the_baseline_key_covers_the_recipe_and_torchs_thread_count() -> None:
    settings, spec = Settings(), DataSpec("digits")
    recipe = baseline_recipe("resnet20", "digits", None)
    key = baseline_key("resnet20", spec, "d" * 32, recipe, settings, threads=2)
    assert key == baseline_key("resnet20", spec, "d" * 32, recipe, settings, threads=2)
    others = {
        baseline_key("resnet20", spec, "d" * 32, recipe, settings, threads=1),
        baseline_key("resnet20", spec, "d" * 32, baseline_recipe("resnet20", "digits", 5), settings, threads=2),
        baseline_key("resnet56", spec, "d" * 32, recipe, settings, threads=2),
        baseline_key("resnet20", spec, "e" * 32, recipe, settings, threads=2),
        baseline_key("resnet20", spec, "d" * 32, recipe, Settings(seed=1), threads=2),
    }
    assert key not in others and len(others) == 5


# --- the early stop ---------------------------------------------------------------------------------------------

def test_a_forced_count_trains_exactly_that_many_epochs_and_keeps_the_last(synthetic: Dataset) -> None:
    outcome = train_dense(small_net(), synthetic, TrainConfig(epochs=3, lr=0.05, batch_size=64), warmup_epochs=1)
    assert [record.epoch for record in outcome.history] == [0, 1, 2]
    assert (outcome.kept_epoch, outcome.stopped) == (3, "budget")
    assert outcome.result.top1 == outcome.history[-1].top1


def test_patience_ends_training_when_top1_stops_improving(synthetic: Dataset) -> None:
    # lr 0 and no batch norm: every epoch's top1 equals the first, so none is better than it.
    outcome = train_dense(small_net(), synthetic, TrainConfig(epochs=10, lr=0.0, batch_size=64),
                          early_stop=EarlyStop(patience=2))
    assert (len(outcome.history), outcome.kept_epoch, outcome.stopped) == (3, 1, "patience")


def test_a_reached_target_ends_training_at_once(synthetic: Dataset) -> None:
    outcome = train_dense(small_net(), synthetic, TrainConfig(epochs=10, lr=0.05, batch_size=64),
                          early_stop=EarlyStop(patience=5, target_top1=0.0))
    assert (len(outcome.history), outcome.stopped) == (1, "target")


def test_the_best_epochs_weights_are_kept(synthetic: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real training with a scripted test top1 (50, 70, 60, 65, 40): epoch 2's weights are the baseline."""
    model = small_net()
    scripted = iter((50.0, 70.0, 60.0, 65.0, 40.0))
    snapshots: list[dict[str, torch.Tensor]] = []

    def evaluate(net: nn.Module, _x: torch.Tensor, _y: torch.Tensor) -> EvalResult:
        snapshots.append({name: value.clone() for name, value in net.state_dict().items()})
        return EvalResult(next(scripted), 90.0, 1.0, 10)

    monkeypatch.setattr(training, "evaluate", evaluate)
    outcome = train_dense(model, synthetic, TrainConfig(epochs=8, lr=0.05, batch_size=64),
                          early_stop=EarlyStop(patience=3))
    assert (len(outcome.history), outcome.kept_epoch, outcome.stopped, outcome.result.top1) == (5, 2, "patience", 70)
    kept = model.state_dict()
    assert all(torch.equal(kept[name], value) for name, value in snapshots[1].items())
    assert not all(torch.equal(kept[name], value) for name, value in snapshots[-1].items())


# --- the floor and the precision gap ----------------------------------------------------------------------------

def test_the_floor_is_the_datasets_unless_set_and_off_means_none() -> None:
    digits = DataSpec("digits")
    assert dense_floor(digits, None) == DENSE_TOP1_FLOORS["digits"] == 90.0
    assert dense_floor(DataSpec("synthetic"), None) is None
    assert dense_floor(digits, 0.0) is None and dense_floor(digits, 50.0) == 50.0
    assert weak_baseline("resnet20", digits, 90.0, 5, None) is None
    message = weak_baseline("resnet56", digits, 45.61, 5, None)
    assert message is not None and "\n" not in message
    for part in ("resnet56", "digits", "45.61%", "5 epoch(s)", "90%", "--prunebench-min-dense-top1"):
        assert part in message
    assert weak_baseline("resnet56", digits, 45.61, 5, 0.0) is None


def test_a_gap_over_a_point_between_torch_and_the_device_names_the_precision() -> None:
    assert precision_gap("resnet20", "CPU", "bf16", 98.0, 97.0) is None
    warning = precision_gap("resnet20", "CPU", "bf16", 98.0, 96.5)
    assert warning is not None and "bf16" in warning and "1.50 points" in warning and "f32" in warning
