"""Dense baseline training, evaluation, and retraining on a schedule's timeline (pruners, thinning, LR)."""

from __future__ import annotations

import math
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .data import Dataset
from .lock import cpu_work
from .masking import Masks, MinibatchMasking, compute_for
from .models import evaluating
from .pruning import (
    Mask,
    apply_masks,
    final_masks,
    follow_thinning,
    layer_sizes,
    probe_images,
    reached_sparsity,
    replay_thinning,
    thin,
)
from .schedule import LRSchedulerSpec, PrunerPolicy, Schedule, agp_target

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    seed: int = 0
    stop_on_collapse: bool = True  # skip retraining a model that collapsed when pruned (see EvalResult)
    recalibration_images: int = 0  # BatchNorm statistics re-estimated on this many training images after pruning


@dataclass(frozen=True)
class EvalResult:
    top1: float  # percent
    top5: float  # percent
    loss: float
    distinct_predictions: int

    def collapse_reason(self, num_classes: int) -> str | None:
        """Why this model counts as collapsed, or None. The seed's finding: a pruned model predicting a single
        class, or at exactly chance (100/n), never recovered in retraining."""
        if self.distinct_predictions <= 1:
            return f"it predicts a single class for every image (top1 {self.top1:.2f}%)"
        if abs(self.top1 - 100.0 / num_classes) < 1e-9:
            return f"its top1 {self.top1:.2f}% is exactly chance (100/{num_classes})"
        return None

    def collapsed(self, num_classes: int) -> bool:
        return self.collapse_reason(num_classes) is not None


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    loss: float
    top1: float
    lr: float
    seconds: float

    def as_dict(self) -> dict[str, float]:
        """The history row a case keeps (its cache entry's JSON, the record's W&B history)."""
        return {"epoch": self.epoch, "loss": self.loss, "top1": self.top1, "lr": self.lr, "seconds": self.seconds}


@dataclass
class RetrainOutcome:
    history: list[EpochRecord] = field(default_factory=list)
    pruned_eval: EvalResult | None = None  # right after the first pruning, before any retraining
    masks: list[Mask] = field(default_factory=list)
    stopped_at: int | None = None  # the epoch retraining stopped at because the pruned model collapsed
    reached: dict[str, float] = field(default_factory=dict)  # per pruner, the sparsity it reached (pruning.py)
    early_terminated: bool = False  # `on_epoch` stopped retraining before its last epoch (a study's pruner)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> EvalResult:
    with evaluating(model):
        return _evaluate(model, x, y, batch_size)


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> EvalResult:
    correct1 = correct5 = 0
    loss_sum = 0.0
    predictions = set()
    for start in range(0, len(x), batch_size):
        with cpu_work():
            logits = model(x[start:start + batch_size])
        target = y[start:start + batch_size]
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        correct1 += (top[:, 0] == target).sum().item()
        correct5 += (top == target[:, None]).any(dim=1).sum().item()
        predictions.update(top[:, 0].tolist())
    n = len(x)
    return EvalResult(100.0 * correct1 / n, 100.0 * correct5 / n, loss_sum / n, len(predictions))


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int = 128) -> int:
    """Re-estimate every BatchNorm's running mean and variance on `images`, weights untouched; returns how many
    layers were re-estimated. Pruning changes what flows into each BN (fewer input channels, removed channels'
    constant BN offsets gone), so the dense model's statistics no longer fit: a pruned ResNet-20 whose weights
    still give 98% top1 predicts a single class with them, and would be judged collapsed and never retrained."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or len(images) < 2:
        return 0
    momenta = [norm.momentum for norm in norms]
    was_training = model.training
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches, not an exponential one
    model.train()
    try:
        starts = list(range(0, len(images), batch_size))
        if len(images) - starts[-1] < 2 and len(starts) > 1:  # a 1-image batch has no variance: join the last two
            starts.pop()
        for begin, end in zip(starts, [*starts[1:], len(images)], strict=True):
            with cpu_work():
                model(images[begin:end])
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.train(was_training)
    return len(norms)


def recalibrate_after_pruning(model: nn.Module, train_x: torch.Tensor, images: int, seed: int) -> None:
    """`recalibrate_batchnorm` on `images` training images drawn with the case's seed; 0 images: off."""
    if images > 0:
        recalibrate_batchnorm(model, probe_images(train_x, seed, images))


class StepHooks(Protocol):
    """Callbacks around each training step, in Distiller's order (masking.MinibatchMasking)."""

    def minibatch_begin(self, index: int, per_epoch: int) -> None: ...
    def before_step(self) -> None: ...
    def minibatch_end(self, index: int, per_epoch: int) -> None: ...


def train_epoch(model: nn.Module, data: Dataset, optimizer: torch.optim.Optimizer, config: TrainConfig, epoch: int,
                after_step: Callable[[], None] | None = None,
                penalty: Callable[[], torch.Tensor] | None = None, hooks: StepHooks | None = None) -> float:
    """One pass over the shuffled training set; returns the mean loss (with the regularizers' `penalty`)."""
    model.train()
    generator = torch.Generator().manual_seed(config.seed * 1000 + epoch)
    order = torch.randperm(len(data.train_x), generator=generator)
    loss_sum, seen = 0.0, 0
    per_epoch = -(-len(order) // config.batch_size)
    for index, start in enumerate(range(0, len(order), config.batch_size)):
        batch = order[start:start + config.batch_size]
        with cpu_work():  # a safe point per step: a measurement on this host pauses training here
            if hooks is not None:
                hooks.minibatch_begin(index, per_epoch)
            loss = F.cross_entropy(model(data.train_x[batch]), data.train_y[batch])
            if penalty is not None:
                loss = loss + penalty()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if hooks is not None:
                hooks.before_step()
            optimizer.step()
            if after_step is not None:
                after_step()
            if hooks is not None:
                hooks.minibatch_end(index, per_epoch)
        loss_sum += loss.item() * len(batch)
        seen += len(batch)
    return loss_sum / max(seen, 1)


def _sgd(model: nn.Module, config: TrainConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)


@dataclass(frozen=True)
class EarlyStop:
    """When a dense baseline ends before its epoch budget: its test top1 has not improved for `patience` epochs,
    or it reached `target_top1`. The weights of its best epoch are kept."""

    patience: int
    target_top1: float | None = None


@dataclass(frozen=True)
class DenseOutcome:
    """How a dense baseline's training went: every epoch, the epoch whose weights were kept, why it stopped."""

    history: tuple[EpochRecord, ...]
    kept_epoch: int  # 1-based; 0 = untrained
    result: EvalResult  # of the kept weights, in torch
    stopped: str  # "budget", "patience" or "target"


def train_dense(model: nn.Module, data: Dataset, config: TrainConfig, warmup_epochs: int = 1,
                early_stop: EarlyStop | None = None, progress: Progress = _quiet) -> DenseOutcome:
    """The dense baseline: SGD, a linear warm-up of `warmup_epochs`, then a per-step cosine learning rate that
    reaches 0 at `config.epochs` (the budget). With `early_stop`, training ends early by its rule and the best
    epoch's weights are kept; without it, exactly `config.epochs` run and the last weights are kept.

    Without the warm-up a ResNet-56 at lr 0.1 stays at chance for its first epochs.
    """
    torch.manual_seed(config.seed)
    optimizer = _sgd(model, config, config.lr)
    steps_per_epoch = -(-len(data.train_x) // config.batch_size)
    warmup = steps_per_epoch * min(warmup_epochs, config.epochs - 1) if config.epochs > 1 else 0
    total = max(config.epochs * steps_per_epoch, 1)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))

    cosine = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    best = evaluate(model, data.test_x, data.test_y) if config.epochs == 0 else None
    best_state: dict[str, torch.Tensor] | None = None
    kept, stopped, history = 0, "budget", []
    for epoch in range(config.epochs):
        started = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        loss = train_epoch(model, data, optimizer, config, epoch, after_step=cosine.step)
        result = evaluate(model, data.test_x, data.test_y)
        seconds = time.perf_counter() - started
        history.append(EpochRecord(epoch, loss, result.top1, lr, seconds))
        progress(f"dense epoch {epoch + 1}/{config.epochs}: loss {loss:.3f}, top1 {result.top1:.2f}%, "
                 f"{seconds:.1f} s")
        if early_stop is None:
            best, kept = result, epoch + 1
            continue
        if best is None or result.top1 > best.top1:
            best, kept = result, epoch + 1
            best_state = {name: value.detach().clone() for name, value in model.state_dict().items()}
        if early_stop.target_top1 is not None and best.top1 >= early_stop.target_top1:
            stopped = "target"
            break
        if epoch + 1 - kept >= early_stop.patience:
            stopped = "patience"
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    assert best is not None
    return DenseOutcome(tuple(history), kept, best, stopped)


class _LRSchedules:
    """The schedule's LR schedulers, stepped once per epoch inside their policy windows."""

    def __init__(self, specs: tuple[LRSchedulerSpec, ...], optimizer: torch.optim.Optimizer) -> None:
        self.specs = specs
        self.schedulers = [self._build(spec, optimizer) for spec in specs]

    @staticmethod
    def _build(spec: LRSchedulerSpec, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        cls = getattr(torch.optim.lr_scheduler, spec.class_name)  # the parser allowed only a fixed list of names
        kwargs = {key: list(value) if isinstance(value, tuple) else value for key, value in spec.kwargs}
        return cls(optimizer, **kwargs)

    def step(self, epoch: int) -> None:
        for spec, scheduler in zip(self.specs, self.schedulers, strict=True):
            if spec.window.fires(epoch):
                scheduler.step()

    def rebind(self, optimizer: torch.optim.Optimizer) -> None:
        """After thinning the parameters are new tensors: move the schedulers' state to a new optimizer."""
        lr = optimizer.param_groups[0]["lr"]
        rebuilt = []
        for spec, old in zip(self.specs, self.schedulers, strict=True):
            scheduler = self._build(spec, optimizer)
            scheduler.load_state_dict(old.state_dict())
            rebuilt.append(scheduler)
        for group in optimizer.param_groups:
            group["lr"] = lr
        self.schedulers = rebuilt


def firing_target(schedule: Schedule, policy: PrunerPolicy, epoch: int, seed: int = 0) -> float:
    """The sparsity a pruner's firing aims at: AGP's cubic target for this epoch, a level drawn from a
    RandomLevelStructureParameterPruner's range (seeded by the case's seed, the epoch and the pruner), else its
    desired sparsity."""
    pruner = schedule.pruner(policy.pruner)
    if pruner.sparsity_range is not None:
        low, high = pruner.sparsity_range
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch * 101 + zlib.crc32(pruner.name.encode()))
        return low + (high - low) * float(torch.rand(1, generator=generator))
    if pruner.initial_sparsity is None:
        return pruner.desired_sparsity
    return agp_target(pruner.initial_sparsity, pruner.desired_sparsity, policy.window, epoch)


def retrain(model: nn.Module, schedule: Schedule, data: Dataset, config: TrainConfig,
            progress: Progress = _quiet, on_epoch: Callable[[int, float], bool] | None = None) -> RetrainOutcome:
    """Follow the schedule epoch by epoch, in Distiller's order: pruners compute their masks at epoch begin,
    thinning runs at the first minibatch of its epoch, masks are handled around every minibatch as Distiller's
    policies say (masking.py), LR schedulers step at epoch end. `on_epoch(epoch, top1)` is called after every
    epoch but the last; when it returns True, retraining ends there (the model is thinned and kept as it is)."""
    torch.manual_seed(config.seed)
    outcome = RetrainOutcome()
    optimizer = _sgd(model, config, config.lr)
    lr_schedules = _LRSchedules(schedule.lr_schedulers, optimizer)
    dense = layer_sizes(model, schedule)
    masks = Masks()
    images = probe_images(data.train_x, config.seed)  # what activation rankers collect their statistics on
    masking = MinibatchMasking(model, schedule, masks, compute_for(
        model, schedule, images, schedule.rounding(), lambda policy, epoch: firing_target(schedule, policy, epoch,
                                                                                        config.seed)))

    for epoch in range(config.epochs):
        started = time.perf_counter()
        # Phase 1 (epoch begin): pruners that fire this epoch choose and mask their structures or elements.
        fired = masking.active(epoch)
        outcome.masks.extend(masking.epoch_begin(epoch))
        # Phase 2 (first minibatch): thinning where the schedule says (right away when it names no thinning
        # extension); the optimizer's momentum follows the thinned shapes.
        thinning_now = any(t.window.fires(epoch) for t in schedule.thinning) or (
            not schedule.thinning and not _gradual_structures_ahead(schedule, epoch))
        if masks.pending_thinning() and thinning_now:
            optimizer = _thin_with_optimizer(model, masks.all(), optimizer, config)
            masks.after_thinning(model)
            lr_schedules.rebind(optimizer)
        if fired and outcome.pruned_eval is None:
            recalibrate_after_pruning(model, data.train_x, config.recalibration_images, config.seed)
            outcome.pruned_eval = evaluate(model, data.test_x, data.test_y)
            progress(f"pruned at epoch {epoch}: top1 {outcome.pruned_eval.top1:.2f}% before retraining")
            reason = outcome.pruned_eval.collapse_reason(data.num_classes)
            if reason and config.stop_on_collapse:
                progress(f"collapsed: {reason}; retraining skipped")
                for pruner in schedule.pruners:  # latency must reflect the whole schedule: every final target
                    chosen = final_masks(model, schedule, pruner, images)
                    apply_masks(model, chosen)
                    masks.replace(pruner.name, chosen)
                    outcome.masks.extend(chosen)
                outcome.stopped_at = epoch
                break
        # Phase 3: one epoch of training, masks handled around every step.
        lr = optimizer.param_groups[0]["lr"]
        loss = train_epoch(model, data, optimizer, config, epoch, penalty=regularization(model, schedule, epoch),
                           hooks=masking)
        masking.epoch_end()
        # Phase 4: LR schedulers whose window includes this epoch.
        lr_schedules.step(epoch)
        # Phase 5: evaluation and a progress line.
        result = evaluate(model, data.test_x, data.test_y)
        seconds = time.perf_counter() - started
        outcome.history.append(EpochRecord(epoch, loss, result.top1, lr, seconds))
        progress(f"retrain epoch {epoch + 1}/{config.epochs}: loss {loss:.3f}, top1 {result.top1:.2f}%, "
                 f"lr {lr:.4g}, {seconds:.1f} s")
        if on_epoch is not None and epoch + 1 < config.epochs and on_epoch(epoch, result.top1):
            outcome.early_terminated = True
            progress(f"stopped early after epoch {epoch + 1} of {config.epochs} (early termination)")
            break
    # The timeline ended before its thinning epoch: thin anyway, latency must reflect the pruning.
    kept = masking.final_masks()
    outcome.masks.extend(m for m in kept if m.kind == "elements")  # recomputed within epochs: the latest count
    removed = thin(model, kept)
    apply_masks(model, follow_thinning(model, [m for m in kept if not m.thinned]))
    if removed or outcome.stopped_at is not None:  # pruned after the last training step: statistics are stale
        recalibrate_after_pruning(model, data.train_x, config.recalibration_images, config.seed)
    outcome.reached = reached_sparsity(model, schedule, dense)
    if outcome.stopped_at is None:  # a stopped timeline pruned every pruner to its target
        _warn_cut(schedule, config.epochs, outcome.reached)
    return outcome


# A regularizer term's penalty on one parameter: L1 of its elements, or the group lasso over filters / channels.
PENALTIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "elements": lambda w: w.abs().sum(),
    "filters": lambda w: w.flatten(1).norm(dim=1).sum(),
    "channels": lambda w: w.transpose(0, 1).flatten(1).norm(dim=1).sum(),
}


def regularization(model: nn.Module, schedule: Schedule, epoch: int) -> Callable[[], torch.Tensor] | None:
    """The loss term of the regularizers whose policy includes this epoch (Distiller adds it before backward), or
    None. Parameters are looked up at every step: thinning replaces them."""
    terms = [term for r in schedule.regularizers if r.window.fires(epoch) for term in r.terms]
    if not terms:
        return None

    def penalty() -> torch.Tensor:
        parameters = dict(model.named_parameters())
        return sum((strength * PENALTIES[group](parameters[name]) for name, strength, group in terms),
                   torch.zeros(()))
    return penalty


def _gradual_structures_ahead(schedule: Schedule, epoch: int) -> bool:
    """An AGP structure pruner fires again later: with no thinning extension, its structures wait for its last
    firing, since thinning between firings would make each later target a fraction of an already thinned layer."""
    return any(schedule.pruner(p.pruner).agp and schedule.pruner(p.pruner).kind in ("filters", "channels")
               and (p.window.last_epoch() or 0) > epoch for p in schedule.pruner_policies)


def _thin_with_optimizer(model: nn.Module, masks: list[Mask], optimizer: torch.optim.Optimizer,
                         config: TrainConfig) -> torch.optim.Optimizer:
    """Thin the model, and its SGD momentum with it (Distiller thins the optimizer's state too): the momentum
    buffers ride on a twin of the model through the same removals."""
    import copy

    twin = copy.deepcopy(model)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, param in twin.named_parameters():
            buffer = optimizer.state.get(params[name], {}).get("momentum_buffer")
            param.copy_(buffer if buffer is not None else torch.zeros_like(param))
    had_momentum = {name for name, param in params.items() if "momentum_buffer" in optimizer.state.get(param, {})}
    replay_thinning(twin, thin(model, masks))
    thinned = _sgd(model, config, optimizer.param_groups[0]["lr"])
    momentum = dict(twin.named_parameters())
    for name, param in model.named_parameters():
        if name in had_momentum:
            thinned.state[param]["momentum_buffer"] = momentum[name].detach().clone()
    return thinned


def _warn_cut(schedule: Schedule, epochs: int, reached: dict[str, float]) -> None:
    """A timeline cut short: name what never fired and how far each pruner got, or the record would read as the
    schedule's full result."""
    windows = ([(f"pruner {p.pruner}", p.window) for p in schedule.pruner_policies]
               + [(f"extension {t.name}", t.window) for t in schedule.thinning]
               + [(f"lr_scheduler {s.name}", s.window) for s in schedule.lr_schedulers]
               + [(f"regularizer {r.name}", r.window) for r in schedule.regularizers])
    never = [f"{name} (from epoch {window.first_epoch()})" for name, window in windows
             if not any(window.fires(epoch) for epoch in range(epochs))]
    horizon = schedule.pruning_horizon()
    if epochs >= horizon and not never:
        return
    sparsity = "; sparsity reached: " + ", ".join(
        f"{p.name} {reached[p.name]:.3f} " + ("(splicing: no target)" if p.splicing else f"of {p.desired_sparsity:g}")
        for p in schedule.pruners) if schedule.pruners else ""
    thinned = " (masked structures were thinned at the end)" if any(
        "extension" in name for name in never) else ""
    cut = (f"is cut at {epochs} epoch(s), before its pruning ends (epoch {horizon})" if epochs < horizon
           else f"stops at {epochs} epoch(s)")
    warnings.warn(f"{schedule.path}: the timeline {cut}: never fired: {', '.join(never) or 'none'}{thinned}"
                  f"{sparsity} (raise --prunebench-epochs, or use 0 to prune straight to the final targets)",
                  stacklevel=3)
