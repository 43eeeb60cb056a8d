"""The training tests' BN-poisoning helper and `small` fixture (import `small_dataset` to have it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from pytest_prunebench.data import Dataset


def _poisoned(model: torch.nn.Module) -> torch.nn.Module:
    """Running statistics no real input has: what a pruned model's BN layers hold, taken to the extreme."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.fill_(1e3)
            module.running_var.fill_(1e-3)
    return model


@pytest.fixture(name="small")
def small_dataset(synthetic: Dataset) -> Iterator[Dataset]:
    """One minibatch of training images, on one torch thread: these tests check the timeline, not accuracy, and a
    second thread only contends with whatever else the machine runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Dataset(synthetic.name, synthetic.train_x[:32], synthetic.train_y[:32], synthetic.test_x[:16],
                  synthetic.test_y[:16], synthetic.num_classes)
    torch.set_num_threads(threads)
