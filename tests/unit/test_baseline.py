"""Dense baselines trained to a stated quality: the recipe registry, the early stop, the cache key, the quality floor
and the torch/device precision gap. Pure units first, then real pytest sessions on tiny settings.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/plugin/test_baseline.py, tests/e2e/test_baseline.py.
"""

from __future__ import annotations

import pytest
from baseline_nets import small_net

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
from pytest_prunebench.training import EarlyStop, TrainConfig, train_dense


@pytest.fixture(scope="module")
def synthetic() -> Dataset:
    return load_dataset(DataSpec("synthetic"))


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


def test_a_reached_target_ends_training_at_once(synthetic: Dataset) -> None:
    outcome = train_dense(small_net(), synthetic, TrainConfig(epochs=10, lr=0.05, batch_size=64),
                          early_stop=EarlyStop(patience=5, target_top1=0.0))
    assert (len(outcome.history), outcome.stopped) == (1, "target")


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
