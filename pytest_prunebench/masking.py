"""The masks of one retraining, minibatch by minibatch, as Distiller's scheduler handles them.

Sources: distiller/policy.py (PruningPolicy and RegularizationPolicy callbacks), distiller/scheduler.py
(CompressionScheduler, ParameterMasker), distiller/thresholding.py and distiller/regularization/*.py. A training step
calls, in Distiller's order: `minibatch_begin` (on_minibatch_begin: masks recomputed every mini_batch_pruning_frequency
minibatches, then applied), forward and backward, `before_step` (before_parameter_optimization: with
use_double_copies the unmasked weights come back), the optimizer step, and `minibatch_end` (on_minibatch_end: masks
applied again unless mask_on_forward_only, then the regularizers' threshold masks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from .pruning import STRUCTURE_DIMS, Mask, apply_masks, follow_thinning, rank_pruner
from .schedule import MASKER_FLAGS, PrunerKind, PrunerPolicy, RegularizerSpec, Schedule, Window


class Masks:
    """Each pruner's masks from its latest computation (a computation replaces the pruner's earlier masks, as in
    Distiller), and the threshold masks a regularizer kept."""

    def __init__(self) -> None:
        self.by_pruner: dict[str, list[Mask]] = {}

    def replace(self, pruner: str, masks: list[Mask]) -> None:
        self.by_pruner[pruner] = masks

    def all(self) -> list[Mask]:
        return [mask for masks in self.by_pruner.values() for mask in masks]

    def pending_thinning(self) -> bool:
        return any(mask.thinned and mask.count for mask in self.all())

    def after_thinning(self, model: nn.Module) -> None:
        """Thinned structures are gone; the other masks (elements, fc inputs) follow the new shapes."""
        self.by_pruner = {name: follow_thinning(model, [m for m in masks if not m.thinned])
                          for name, masks in self.by_pruner.items()}


def distiller_last_epoch(window: Window) -> int | None:
    """The epoch Distiller's policies call their last (is_last_epoch: ending_epoch - 1); a policy with an `epochs`
    list gets CompressionScheduler.add_policy's default ending_epoch 1. None: open-ended, never last."""
    if window.epochs is not None:
        return 0
    return None if window.ending_epoch is None else window.ending_epoch - 1


# Computes one pruner policy's masks at an epoch (a ranking, or a SplicingPruner's next computation).
Compute = Callable[[PrunerPolicy, int], list[Mask]]


class MinibatchMasking:
    """Distiller's PruningPolicy and ParameterMasker for the pruner masks of one retraining. The masker flags
    (mask_on_forward_only, use_double_copies, mask_gradients) come from the one pruner policy that may set them (the
    schedule parser refuses them beside other masks); they take effect at its first epoch and, with keep_mask, are
    cleared at the end of its last epoch, when its masks become permanent."""

    def __init__(self, model: nn.Module, schedule: Schedule, masks: Masks, compute: Compute) -> None:
        self.model = model
        self.schedule = schedule
        self.masks = masks
        self.compute = compute
        self.flagged = next((p for p in schedule.pruner_policies if any(getattr(p, f) for f in MASKER_FLAGS)), None)
        self.forward_only = self.double_copies = self.started = False
        self.epoch = 0
        self.unmasked: dict[str, torch.Tensor] = {}
        self.hooks: list[torch.utils.hooks.RemovableHandle] = []
        self.dynamic = any(p.per_minibatch for p in schedule.pruner_policies)
        self.thresholds = [r for r in schedule.regularizers if r.threshold_criteria]

    def epoch_begin(self, epoch: int) -> list[Mask]:
        """on_epoch_begin: the masks of the pruner policies that run this epoch (applied at once), and the masker
        flags from the flagged policy's first epoch on."""
        self.epoch = epoch
        chosen = []
        for policy in self.active(epoch):
            if policy is self.flagged and not self.started:  # PruningPolicy's is_initialized
                self.started = True
                self.forward_only, self.double_copies = policy.mask_on_forward_only, policy.use_double_copies
                if policy.mask_gradients:
                    self._hook_gradients(policy.pruner)
            masks = self.compute(policy, epoch)
            self._keep_unmasked(masks)
            apply_masks(self.model, masks)
            self.masks.replace(policy.pruner, masks)
            chosen.extend(masks)
        return chosen

    def active(self, epoch: int) -> list[PrunerPolicy]:
        return [p for p in self.schedule.pruner_policies if p.window.fires(epoch)]

    def minibatch_begin(self, index: int, per_epoch: int) -> None:
        """on_minibatch_begin: recompute where mini_batch_pruning_frequency says (never at a first minibatch, which
        on_epoch_begin covered), then apply every mask, keeping the unmasked weights aside under use_double_copies."""
        active = self.active(self.epoch) if self.dynamic else []
        step = self.epoch * per_epoch + index
        for policy in active:
            if policy.minibatch_frequency and index > 0 and step % policy.minibatch_frequency == 0:
                self.masks.replace(policy.pruner, self.compute(policy, self.epoch))
        if active:
            self._keep_unmasked(self.masks.all())
            apply_masks(self.model, self.masks.all())

    def _keep_unmasked(self, masks: list[Mask]) -> None:
        """use_double_copies: the weights before masking, for before_step. Distiller sets masks at epoch begin
        without applying them, so the first minibatch's copy is of the weights as the epoch found them; masks are
        applied at once here (the evaluation after pruning sees them), so that copy is taken first."""
        if self.double_copies:
            for mask in masks:
                self.unmasked.setdefault(mask.layer, self._weight(mask.layer).detach().clone())

    def before_step(self) -> None:
        """before_parameter_optimization: under use_double_copies the step updates the unmasked weights."""
        with torch.no_grad():
            for layer, weight in self.unmasked.items():
                self._weight(layer).copy_(weight)
        self.unmasked = {}

    def minibatch_end(self, index: int, per_epoch: int) -> None:
        """on_minibatch_end: masks applied again (the step moves masked weights: momentum, weight decay) unless
        mask_on_forward_only; then the regularizers' threshold masks."""
        masks = self.masks.all()
        if masks and not self.forward_only:
            apply_masks(self.model, masks)
        for regularizer in self.thresholds:
            if regularizer.window.fires(self.epoch):
                last = index == per_epoch - 1 and self.epoch == distiller_last_epoch(regularizer.window)
                self._threshold(regularizer, keep=last and regularizer.keep_mask)

    def epoch_end(self) -> None:
        """on_epoch_end of a policy's last epoch: keep_mask makes its masks permanent (masker flags cleared, masks
        applied); the gradient hooks go."""
        for policy in self.active(self.epoch):
            if self.epoch != distiller_last_epoch(policy.window):
                continue
            if policy.keep_mask:
                self.forward_only = self.double_copies = False
                apply_masks(self.model, self.masks.all())
            if policy is self.flagged:
                self.remove_hooks()

    def final_masks(self) -> list[Mask]:
        """The masks the trained model keeps: all of them, unless mask_on_forward_only is still on without keep_mask
        (Distiller leaves those weights unmasked). mask_on_forward_only still on with keep_mask means the timeline
        was cut (or stopped) before keep_mask's epoch: its masks are applied as if it had been reached, as thinning
        is."""
        self.remove_hooks()
        flagged = self.flagged
        if flagged is None or not self.forward_only or flagged.keep_mask:
            return self.masks.all()
        return [m for m in self.masks.all() if m.pruner != flagged.pruner]

    def remove_hooks(self) -> None:
        for handle in self.hooks:
            handle.remove()
        self.hooks = []

    def _hook_gradients(self, pruner: str) -> None:
        """mask_gradients: each gradient multiplied by its weight's current mask (ParameterMasker.mask_gradient)."""
        def hook(layer: str) -> Callable[[torch.Tensor], torch.Tensor]:
            def masked(gradient: torch.Tensor) -> torch.Tensor:
                mask = next((m for m in self.masks.by_pruner.get(pruner, []) if m.layer == layer), None)
                return gradient if mask is None else gradient * (~mask.zeros).to(gradient.dtype)
            return masked
        layers = self.schedule.pruner(pruner).layers
        self.hooks = [self._weight(layer).register_hook(hook(layer)) for layer in layers]

    def _weight(self, layer: str) -> torch.Tensor:
        return cast(torch.Tensor, self.model.get_submodule(layer).weight)

    @torch.no_grad()
    def _threshold(self, regularizer: RegularizerSpec, keep: bool) -> None:
        """RegularizationPolicy.on_minibatch_end: each regularized parameter's threshold mask, applied once (an
        is_regularization_mask is dropped after use) or, at keep_mask's last minibatch, kept as a mask."""
        parameters = dict(self.model.named_parameters())
        kept = []
        for name, strength, group in regularizer.terms:
            parameter = parameters[name]
            zeros = threshold_zeros(parameter.detach(), strength, group, regularizer.threshold_criteria or "")
            parameter[zeros] = 0
            if keep:
                kept.append(Mask(regularizer.name, name.removesuffix(".weight"), "elements", (), zeros.numel(),
                                 zeros=zeros))
        if kept:
            self.masks.replace(f"regularizer {regularizer.name}", kept)


def threshold_zeros(weight: torch.Tensor, strength: float, group: str, criteria: str) -> torch.Tensor:
    """Where a threshold mask is 0: L1Regularizer.threshold masks each element with |w| <= strength
    (thresholding.threshold_mask keeps |w| > strength); GroupLassoRegularizer a whole filter / channel whose mean |w|
    (Mean_Abs) or largest |w| (Max) is <= strength (group_threshold_binary_map keeps norm > threshold)."""
    magnitude = weight.abs()
    if group == "elements":
        return magnitude <= strength
    dims = STRUCTURE_DIMS[cast(PrunerKind, group)]  # what a filter / channel reduces over, as the rankers' norms
    norms = magnitude.mean(dim=dims) if criteria == "Mean_Abs" else magnitude.amax(dim=dims)
    shape = [1] * weight.dim()
    shape[0 if group == "filters" else 1] = -1
    return (norms <= strength).view(shape).expand_as(weight)


def compute_for(model: nn.Module, schedule: Schedule, images: torch.Tensor | None, round_to: int | None,
                target: Callable[[PrunerPolicy, int], float]) -> Compute:
    """How each pruner policy computes its masks at an epoch: a SplicingPruner's next computation on its state,
    others a ranking at their firing target."""
    from .splicing import Splicer

    splicers = {p.name: Splicer(p, schedule.policy(p.name).window.starting_epoch)
                for p in schedule.pruners if p.splicing is not None}

    def compute(policy: PrunerPolicy, epoch: int) -> list[Mask]:
        if policy.pruner in splicers:
            return splicers[policy.pruner].masks(model, epoch)
        return rank_pruner(model, schedule.pruner(policy.pruner), target(policy, epoch), round_to=round_to,
                           images=images, fold_batchnorm=policy.fold_batchnorm)
    return compute
