"""Dense baselines trained to a stated quality: the recipe registry, the early stop, the cache key, the quality floor
and the torch/device precision gap. Pure units first, then real pytest sessions on tiny settings.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_baseline.py, tests/plugin/test_baseline.py.
"""

from __future__ import annotations

import pytest
import torch
from baseline_nets import small_net
from torch import nn

from pytest_prunebench import training
from pytest_prunebench.data import Dataset, DataSpec, load_dataset
from pytest_prunebench.training import EarlyStop, EvalResult, TrainConfig, train_dense


@pytest.fixture(scope="module")
def synthetic() -> Dataset:
    return load_dataset(DataSpec("synthetic"))


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
