"""SplicingPruner (dynamic network surgery) as Distiller computes it (distiller/pruning/splicing_pruner.py).

Per weight, the mean and standard deviation of |w| are taken once, at the pruner's first mask computation. At epoch e
the sensitivity s grows to s * ((e - starting_epoch) * sensitivity_multiplier + 1) (only when the multiplier is > 0),
the thresholds are low = (mean + std * s) * low_thresh_mult and high = (mean + std * s) * hi_thresh_mult, and the new
mask is 0 where |w| < low, 1 where |w| >= high, and the previous mask in between: a pruned weight that training
grows past `high` is spliced back, which is why Distiller's example masks on the forward pass only.
"""

from __future__ import annotations

import torch
from torch import nn

from .pruning import Mask
from .schedule import PrunerSpec, Schedule


def grown_sensitivity(sensitivity: float, multiplier: float, epoch: int, starting_epoch: int) -> float:
    """The sensitivity at `epoch`: linear growth from the policy's starting_epoch, as set_param_mask hard-codes it."""
    if multiplier > 0:
        return sensitivity * ((epoch - starting_epoch) * multiplier + 1)
    return sensitivity


def thresholds(mean: float, std: float, sensitivity: float, low_mult: float, hi_mult: float) -> tuple[float, float]:
    """(low, high) thresholds on |w| (SplicingPruner.create_mask)."""
    base = mean + std * sensitivity
    return base * low_mult, base * hi_mult


def splice(weight: torch.Tensor, previous: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """The network surgery function h(W) of the paper's equation (3): 0 below `low`, 1 from `high` up, and the
    previous mask in the band between."""
    magnitude = weight.abs()
    mask = torch.where(magnitude < low, torch.zeros_like(previous), previous)
    return torch.where(magnitude >= high, torch.ones_like(previous), mask)


class Splicer:
    """One SplicingPruner through a retraining: each weight's |w| statistics from its first mask computation, and
    its previous mask (all ones before the first one, as Distiller's masker starts it)."""

    def __init__(self, pruner: PrunerSpec, starting_epoch: int) -> None:
        if pruner.splicing is None:
            raise ValueError(f"{pruner.name} is a {pruner.class_name}, not a SplicingPruner")
        self.pruner = pruner
        self.params = pruner.splicing
        self.starting_epoch = starting_epoch
        self.stats: dict[str, tuple[float, float]] = {}
        self.previous: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def masks(self, model: nn.Module, epoch: int) -> list[Mask]:
        """The masks of a computation at `epoch` on the weights as they are now."""
        modules = dict(model.named_modules())
        chosen = []
        for layer, sensitivity in zip(self.pruner.layers, self.params.sensitivities, strict=True):
            weight = modules[layer].weight.detach()
            if layer not in self.stats:  # Distiller caches them on the parameter at the first call
                magnitude = weight.abs()
                self.stats[layer] = (magnitude.mean().item(), magnitude.std().item())
            grown = grown_sensitivity(sensitivity, self.params.sensitivity_multiplier, epoch, self.starting_epoch)
            low, high = thresholds(*self.stats[layer], grown, self.params.low_thresh_mult, self.params.hi_thresh_mult)
            mask = splice(weight, self.previous.get(layer, torch.ones_like(weight)), low, high)
            self.previous[layer] = mask
            chosen.append(Mask(self.pruner.name, layer, "elements", (), weight.numel(), zeros=mask == 0))
        return chosen


def final_splicing_epoch(schedule: Schedule, pruner: PrunerSpec) -> tuple[int, int]:
    """(starting_epoch, the epoch of its last computation) of a SplicingPruner's policy: a 0-epoch case computes its
    masks once, at the sensitivity of that last epoch (an open-ended policy: its first)."""
    window = schedule.policy(pruner.name).window
    last = window.last_epoch()
    if last is None:
        last = window.first_epoch() or 0
    return window.starting_epoch, last


def splice_to_final(model: nn.Module, schedule: Schedule, pruner: PrunerSpec) -> list[Mask]:
    """A SplicingPruner's masks without training: one computation from an all-ones mask at its last epoch's
    sensitivity, so every weight below that epoch's low threshold is masked."""
    starting, last = final_splicing_epoch(schedule, pruner)
    return Splicer(pruner, starting).masks(model, last)
