"""Tiny schedules for plugin and end-to-end tests (resnet20, a few layers each)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

# The smallest schedule suite: one case per schedule file the run is given.
SCHEDULE_SUITE = """
def test_schedule(prunebench, prunebench_schedule):
    prunebench.run(prunebench_schedule)
"""

FILTERS_SCHEDULE = """\
version: 1
pruners:
  head_filters:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    weights: [module.layer1.0.conv1.weight, module.layer2.1.conv1.weight]
extensions:
  net_thinner:
    class: FilterRemover
    thinning_func_str: remove_filters
    arch: resnet20_cifar
policies:
  - pruner: {instance_name: head_filters}
    epochs: [0]
  - extension: {instance_name: net_thinner}
    epochs: [0]
"""

CHANNELS_SCHEDULE = """\
version: 1
pruners:
  tail_channels:
    class: L2RankedStructureParameterPruner
    group_type: Channels
    desired_sparsity: 0.25
    weights: [layer3.1.conv2.weight]
policies:
  - pruner: {instance_name: tail_channels}
    epochs: [0]
prunebench:
  model: resnet20
"""

# Gradual filters (span 3: 0.25, 0.602, 0.731, 0.75 of 16 filters), fine-grained elements (span 2: 0.2, 0.55, 0.6),
# and half the fc's input features masked; thinning at epoch 3.
AGP_SCHEDULE = """\
pruners:
  gradual:
    class: L1RankedStructureParameterPruner_AGP
    initial_sparsity: 0.25
    final_sparsity: 0.75
    group_type: Filters
    weights: [module.layer1.0.conv1.weight]
  fine:
    class: AutomatedGradualPruner
    initial_sparsity: 0.2
    final_sparsity: 0.6
    weights: [module.layer3.1.conv1.weight]
  fc_inputs:
    class: L1RankedStructureParameterPruner
    group_type: Rows
    desired_sparsity: 0.5
    weights: [module.fc.weight]
extensions:
  net_thinner: {class: FilterRemover, thinning_func_str: remove_filters, arch: resnet20_cifar}
policies:
  - pruner: {instance_name: gradual}
    starting_epoch: 0
    ending_epoch: 4
    frequency: 1
  - pruner: {instance_name: fine}
    starting_epoch: 0
    ending_epoch: 3
    frequency: 1
  - pruner: {instance_name: fc_inputs}
    epochs: [0]
  - extension: {instance_name: net_thinner}
    epochs: [3]
"""

# Dynamic network surgery on one conv, as Distiller's network_surgery example runs it (masks every minibatch, on the
# forward pass only, kept at the end of the policy's last epoch, 0).
SPLICING_SCHEDULE = """\
pruners:
  surgery:
    class: SplicingPruner
    low_thresh_mult: 0.9
    hi_thresh_mult: 1.1
    sensitivity_multiplier: 0.015
    sensitivities: {module.layer3.1.conv1.weight: 0.5}
policies:
  - pruner:
      instance_name: surgery
      args: {keep_mask: true, mini_batch_pruning_frequency: 1, mask_on_forward_only: true}
    starting_epoch: 0
    ending_epoch: 1
prunebench:
  model: resnet20
"""


def seed_baselines(shared_cache: Path, cache: Path) -> None:
    """Give a run's own cache the session's trained baselines (entries only: no locks, no partial builds)."""
    import shutil

    if (shared_cache / "baselines").is_dir():
        shutil.copytree(shared_cache / "baselines", cache / "baselines",
                        ignore=shutil.ignore_patterns(".partial-*", "*.lock", "*.holder"))


def tiny_arguments(cache: Path) -> list[str]:
    """The options of a tiny run (synthetic data, one baseline epoch, few rounds) with its cache in `cache`."""
    return [
        "--prunebench-data", "synthetic", "--prunebench-baseline-epochs", "1", "--prunebench-rounds", "20",
        # `--opt=PATH`: pytest picks its rootdir before plugins add options, so a separate existing path would
        # count as a test path.
        "--prunebench-warmup", "2", f"--prunebench-cache={cache}", "-p", "no:cacheprovider",
    ]


def write_schedules(root: Path, **schedules: str) -> Path:
    folder = root / "schedules"
    folder.mkdir(exist_ok=True)
    for name, text in schedules.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


def run_schedule_suite(pytester: pytest.Pytester, tiny_args: list[str], *args: str) -> pytest.RunResult:
    """SCHEDULE_SUITE (as test_suite.py) on the filters and channels schedules, its records in out.json."""
    write_schedules(pytester.path, filters=FILTERS_SCHEDULE, channels=CHANNELS_SCHEDULE)
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    return pytester.runpytest_subprocess(*tiny_args, "--prunebench-artifacts=artifacts", "--benchmark-json=out.json",
                                         *args)
