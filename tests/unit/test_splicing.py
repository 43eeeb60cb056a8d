"""SplicingPruner's threshold and mask math, Distiller's per-minibatch masking and the regularizers' thresholds,
against hand computations on small tensors."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from torch import nn

from pytest_prunebench.masking import Masks, MinibatchMasking, compute_for, threshold_zeros
from pytest_prunebench.schedule import PrunerSpec, SplicingParams, parse_schedule
from pytest_prunebench.splicing import Splicer, grown_sensitivity, splice_to_final

WEIGHTS = [0.1, -0.5, 1.0, -2.0, 3.0]
# By hand: mean |w| = 6.6 / 5 = 1.32; squared deviations 1.4884 + 0.6724 + 0.1024 + 0.4624 + 2.8224 = 5.548, so
# the (unbiased, as torch.std) std is sqrt(5.548 / 4).
MEAN, STD = 1.32, math.sqrt(5.548 / 4)


def one_layer(weights: list[float] = WEIGHTS) -> nn.Module:
    model = nn.Sequential(nn.Linear(len(weights), 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([weights]))
    return model


def splicer(sensitivity: float = 0.5, multiplier: float = 0.0, starting_epoch: int = 0) -> Splicer:
    pruner = PrunerSpec(name="s", class_name="SplicingPruner", kind="elements", ranker="splicing",
                        desired_sparsity=0.0, layers=("0",),
                        splicing=SplicingParams(0.9, 1.1, multiplier, (sensitivity,)))
    return Splicer(pruner, starting_epoch)


def kept(splice: Splicer, model: nn.Module, epoch: int) -> list[int]:
    (mask,) = splice.masks(model, epoch)
    return (~mask.zeros).int().flatten().tolist()


def test_thresholds_and_the_hysteresis_band_match_a_hand_computation() -> None:
    # sensitivity 0.5: base = 1.32 + 0.5 * 1.17771 = 1.90886; low = 0.9 * base = 1.71797, high = 1.1 * base = 2.09974.
    low, high = 0.9 * (MEAN + 0.5 * STD), 1.1 * (MEAN + 0.5 * STD)
    assert (round(low, 4), round(high, 4)) == (1.718, 2.0997)
    model, splice = one_layer(), splicer()
    # |w| 0.1, 0.5, 1.0 are below low: 0. |w| 2.0 is in the band: the previous mask (all ones at first). 3.0: 1.
    assert kept(splice, model, 0) == [0, 0, 0, 1, 1]
    # Weight 3 drops below low (pruned); the statistics stay those of the first computation.
    with torch.no_grad():
        model[0].weight[0, 3] = 0.3
    assert kept(splice, model, 0) == [0, 0, 0, 0, 1]
    # Back into the band: it keeps its previous mask, 0. Weight 0 grows into the band from 0: it stays 0 too.
    with torch.no_grad():
        model[0].weight[0, 3] = -2.0
        model[0].weight[0, 0] = 1.9
    assert kept(splice, model, 0) == [0, 0, 0, 0, 1]
    # Past high, a pruned weight is spliced back.
    with torch.no_grad():
        model[0].weight[0, 3] = 2.2
    assert kept(splice, model, 0) == [0, 0, 0, 1, 1]


def test_the_sensitivity_grows_linearly_from_the_starting_epoch() -> None:
    assert grown_sensitivity(0.05, 0.015, epoch=10, starting_epoch=2) == pytest.approx(0.05 * (8 * 0.015 + 1))
    assert grown_sensitivity(0.05, 0.0, epoch=10, starting_epoch=2) == 0.05  # Distiller grows it only when > 0
    # Multiplier 1, epoch 1: sensitivity 0.5 * 2 = 1, low = 0.9 * (1.32 + 1.17771) = 2.24794 > |w| 2.0: pruned.
    model = one_layer()
    assert kept(splicer(multiplier=1.0), model, 0) == [0, 0, 0, 1, 1]
    assert kept(splicer(multiplier=1.0), model, 1) == [0, 0, 0, 0, 1]
    assert kept(splicer(multiplier=1.0, starting_epoch=1), model, 1) == [0, 0, 0, 1, 1]


def test_without_training_the_masks_come_from_the_last_epochs_sensitivity() -> None:
    schedule = splicing_schedule({}, ending_epoch=2, multiplier=1.0)
    (mask,) = splice_to_final(one_layer(), schedule, schedule.pruner("s"))
    assert (~mask.zeros).int().flatten().tolist() == [0, 0, 0, 0, 1]  # epoch 1's thresholds, as above


def splicing_schedule(args: dict[str, object], ending_epoch: int = 2, multiplier: float = 0.0):  # noqa: ANN201
    document = {
        "pruners": {"s": {"class": "SplicingPruner", "low_thresh_mult": 0.9, "hi_thresh_mult": 1.1,
                          "sensitivity_multiplier": multiplier, "sensitivities": {"module.0.weight": 0.5}}},
        "policies": [{"pruner": {"instance_name": "s", "args": args}, "starting_epoch": 0,
                      "ending_epoch": ending_epoch}],
    }
    return parse_schedule(yaml.safe_load(yaml.safe_dump(document)), "<test>", "test")


def masking_for(model: nn.Module, args: dict[str, object], ending_epoch: int = 2) -> MinibatchMasking:
    schedule = splicing_schedule(args, ending_epoch)
    return MinibatchMasking(model, schedule, Masks(), compute_for(model, schedule, None, None, lambda p, e: 0.0))


def step(model: nn.Module, masking: MinibatchMasking, index: int, per_epoch: int = 3) -> torch.Tensor:
    """One SGD step as train_epoch runs it; returns the weights the forward pass saw."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    masking.minibatch_begin(index, per_epoch)
    seen = model[0].weight.detach().clone()
    loss = model(torch.ones(1, 5)).sum()
    optimizer.zero_grad()
    loss.backward()
    masking.before_step()
    optimizer.step()
    masking.minibatch_end(index, per_epoch)
    return seen


def test_mask_on_forward_only_lets_weights_revive_until_keep_mask_zeroes_them() -> None:
    model = one_layer()
    masking = masking_for(model, {"mask_on_forward_only": True, "keep_mask": True,
                                  "mini_batch_pruning_frequency": 1})
    masking.epoch_begin(0)
    seen = step(model, masking, 0)
    assert seen[0, :3].tolist() == [0, 0, 0]  # the forward pass used the masked weights
    revived = model[0].weight.detach()[0, :3]
    assert (revived != 0).all(), revived  # the step moved them, and nothing masked them after it
    masking.epoch_end()  # epoch 0 is not the last (ending_epoch 2)
    masking.epoch_begin(1)
    step(model, masking, 0)
    assert (model[0].weight.detach()[0, :3] != 0).all()
    masking.epoch_end()  # epoch 1 = ending_epoch - 1: keep_mask
    assert model[0].weight.detach()[0, :3].tolist() == [0, 0, 0]
    masking.epoch_begin(2)  # the policy's window is over; the kept masks hold through later steps
    step(model, masking, 0)
    assert model[0].weight.detach()[0, :3].tolist() == [0, 0, 0]


def test_without_keep_mask_forward_only_masks_are_not_kept() -> None:
    model = one_layer()
    masking = masking_for(model, {"mask_on_forward_only": True})
    masking.epoch_begin(0)
    step(model, masking, 0)
    assert masking.final_masks() == []  # Distiller leaves the trained weights unmasked


def test_by_default_masks_are_applied_after_every_step() -> None:
    model = one_layer()
    masking = masking_for(model, {})
    masking.epoch_begin(0)
    step(model, masking, 0)
    assert model[0].weight.detach()[0, :3].tolist() == [0, 0, 0]


def test_double_copies_step_the_unmasked_weights_and_mask_gradients_zeroes_their_gradients() -> None:
    model = one_layer()
    masking = masking_for(model, {"mask_on_forward_only": True, "use_double_copies": True, "mask_gradients": True})
    masking.epoch_begin(0)
    masking.minibatch_begin(0, 1)
    assert model[0].weight.detach()[0, :3].tolist() == [0, 0, 0]
    model(torch.ones(1, 5)).sum().backward()
    assert model[0].weight.grad[0].tolist() == [0, 0, 0, 1, 1]  # masked gradients
    masking.before_step()
    assert model[0].weight.detach()[0].tolist() == pytest.approx(WEIGHTS)  # the unmasked copy is back


@pytest.mark.parametrize(("group", "criteria", "expected"), [
    ("elements", "Max", [[1, 1], [1, 0]]),  # |w| <= 0.5 (L1Regularizer keeps |w| > strength)
    ("filters", "Mean_Abs", [[1, 1], [0, 0]]),  # filter means 0.3 and 0.6
    ("filters", "Max", [[1, 1], [0, 0]]),  # filter maxima 0.5 (not above 0.5) and 1.0
    ("channels", "Mean_Abs", [[1, 0], [1, 0]]),  # channel means 0.15 and 0.75
    ("channels", "Max", [[1, 0], [1, 0]]),  # channel maxima 0.2 and 1.0
])
def test_threshold_masks_match_distillers_thresholding(group: str, criteria: str, expected: list[list[int]]) -> None:
    """Where each mask is 0 (1 in `expected`), strength 0.5."""
    weight = torch.tensor([[0.1, 0.5], [-0.2, 1.0]]).view(2, 2, 1, 1)  # 2 filters x 2 channels
    zeros = threshold_zeros(weight, 0.5, group, criteria)
    assert zeros.int().view(2, 2).tolist() == expected


def test_a_kept_threshold_mask_holds_after_the_regularizer_policy_ends() -> None:
    document = {"regularizers": {"r": {"class": "L1Regularizer", "threshold_criteria": "Max",
                                       "reg_regims": {"module.0.weight": 0.6}}},
                "policies": [{"regularizer": {"instance_name": "r", "args": {"keep_mask": True}},
                              "starting_epoch": 0, "ending_epoch": 1}]}
    schedule = parse_schedule(document, "<test>", "test")
    model = one_layer()
    masking = MinibatchMasking(model, schedule, Masks(), compute_for(model, schedule, None, None, lambda p, e: 0.0))
    masking.epoch_begin(0)
    step(model, masking, 0, per_epoch=2)  # thresholded after the step, and the mask dropped (used once)
    assert not masking.masks.all()
    step(model, masking, 1, per_epoch=2)  # the last minibatch of epoch ending_epoch - 1: the mask is kept
    (kept,) = masking.masks.all()
    assert kept.zeros.int().flatten().tolist() == [1, 1, 0, 0, 0]  # zeroed, then stepped to -0.1: |w| <= 0.6
    masking.epoch_end()
    masking.epoch_begin(1)
    step(model, masking, 0, per_epoch=2)
    assert model[0].weight.detach()[0, :2].tolist() == [0, 0]
