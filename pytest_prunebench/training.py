"""Dense baseline training, evaluation, and retraining on a schedule's timeline (pruners, thinning, LR)."""

from __future__ import annotations

import functools
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .data import Dataset
from .lock import cpu_work, worker_threads
from .models import evaluating
from .pruning import Mask, apply_masks, rank_pruner, thin
from .schedule import LRSchedulerSpec, Schedule

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


@functools.cache
def share_cpus_with_workers(workers: int) -> int:
    """Once per process: one of `workers` xdist workers runs torch on its share of the CPUs; returns torch's
    thread count. The count comes from xdist's workerinput: a process started by a worker inherits its
    environment (PYTEST_XDIST_WORKER_COUNT) without being one."""
    threads = worker_threads(workers, len(os.sched_getaffinity(0)), os.environ)
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    seed: int = 0
    stop_on_collapse: bool = True  # skip retraining a model that collapsed when pruned (see EvalResult)


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


@dataclass
class RetrainOutcome:
    history: list[EpochRecord] = field(default_factory=list)
    pruned_eval: EvalResult | None = None  # right after the first pruning, before any retraining
    masks: list[Mask] = field(default_factory=list)
    stopped_at: int | None = None  # the epoch retraining stopped at because the pruned model collapsed


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


def train_epoch(model: nn.Module, data: Dataset, optimizer: torch.optim.Optimizer, config: TrainConfig, epoch: int,
                after_step: Callable[[], None] | None = None) -> float:
    """One pass over the shuffled training set; returns the mean loss."""
    model.train()
    generator = torch.Generator().manual_seed(config.seed * 1000 + epoch)
    order = torch.randperm(len(data.train_x), generator=generator)
    loss_sum, seen = 0.0, 0
    for start in range(0, len(order), config.batch_size):
        batch = order[start:start + config.batch_size]
        with cpu_work():  # a safe point per step: a measurement on this host pauses training here
            loss = F.cross_entropy(model(data.train_x[batch]), data.train_y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step()
        loss_sum += loss.item() * len(batch)
        seen += len(batch)
    return loss_sum / max(seen, 1)


def _sgd(model: nn.Module, config: TrainConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)


def train_dense(model: nn.Module, data: Dataset, config: TrainConfig, progress: Progress = _quiet) -> EvalResult:
    """The dense baseline: SGD, one epoch of linear warm-up, then a per-step cosine learning rate.

    Without the warm-up a ResNet-56 at lr 0.1 stays at chance for the few epochs a baseline gets here.
    """
    torch.manual_seed(config.seed)
    optimizer = _sgd(model, config, config.lr)
    steps_per_epoch = -(-len(data.train_x) // config.batch_size)
    warmup = steps_per_epoch if config.epochs > 1 else 0
    total = max(config.epochs * steps_per_epoch, 1)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))

    cosine = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    result = evaluate(model, data.test_x, data.test_y) if config.epochs == 0 else None
    for epoch in range(config.epochs):
        started = time.perf_counter()
        loss = train_epoch(model, data, optimizer, config, epoch, after_step=cosine.step)
        result = evaluate(model, data.test_x, data.test_y)
        progress(f"dense epoch {epoch + 1}/{config.epochs}: loss {loss:.3f}, top1 {result.top1:.2f}%, "
                 f"{time.perf_counter() - started:.1f} s")
    return result


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


def retrain(model: nn.Module, schedule: Schedule, data: Dataset, config: TrainConfig,
            progress: Progress = _quiet) -> RetrainOutcome:
    """Follow the schedule epoch by epoch: prune (mask), thin, train, step LR schedulers, evaluate."""
    torch.manual_seed(config.seed)
    outcome = RetrainOutcome()
    optimizer = _sgd(model, config, config.lr)
    lr_schedules = _LRSchedules(schedule.lr_schedulers, optimizer)
    pending: list[Mask] = []  # masked but not yet thinned

    def reapply_masks() -> None:
        apply_masks(model, pending)

    for epoch in range(config.epochs):
        started = time.perf_counter()
        # Phase 1: pruners that fire this epoch choose and mask their structures.
        fired = [p for p in schedule.pruner_policies if p.window.fires(epoch)]
        for policy in fired:
            masks = rank_pruner(model, schedule.pruner(policy.pruner), round_to=schedule.round_to)
            apply_masks(model, masks)
            pending.extend(masks)
            outcome.masks.extend(masks)
        # Phase 2: thinning where the schedule says (right away when it names no thinning extension).
        thinning_now = any(t.window.fires(epoch) for t in schedule.thinning) or not schedule.thinning
        if pending and thinning_now:
            lr = optimizer.param_groups[0]["lr"]
            thin(model, pending)
            pending.clear()
            optimizer = _sgd(model, config, lr)
            lr_schedules.rebind(optimizer)
        if fired and outcome.pruned_eval is None:
            outcome.pruned_eval = evaluate(model, data.test_x, data.test_y)
            progress(f"pruned at epoch {epoch}: top1 {outcome.pruned_eval.top1:.2f}% before retraining")
            reason = outcome.pruned_eval.collapse_reason(data.num_classes)
            if reason and config.stop_on_collapse:
                progress(f"collapsed: {reason}; retraining skipped")
                rest = _prune_the_rest(model, schedule, {mask.pruner for mask in outcome.masks})
                pending.extend(rest)
                outcome.masks.extend(rest)
                outcome.stopped_at = epoch
                break
        # Phase 3: one epoch of training, masks re-applied after every step.
        lr = optimizer.param_groups[0]["lr"]
        loss = train_epoch(model, data, optimizer, config, epoch, after_step=reapply_masks if pending else None)
        # Phase 4: LR schedulers whose window includes this epoch.
        lr_schedules.step(epoch)
        # Phase 5: evaluation and a progress line.
        result = evaluate(model, data.test_x, data.test_y)
        seconds = time.perf_counter() - started
        outcome.history.append(EpochRecord(epoch, loss, result.top1, lr, seconds))
        progress(f"retrain epoch {epoch + 1}/{config.epochs}: loss {loss:.3f}, top1 {result.top1:.2f}%, "
                 f"lr {lr:.4g}, {seconds:.1f} s")
    if pending:  # the timeline ended before its thinning epoch: thin anyway, latency must reflect the pruning
        thin(model, pending)
    if outcome.stopped_at is None:  # a stopped timeline pruned every pruner to its target
        _warn_unfired(schedule, config.epochs)
    return outcome


def _prune_the_rest(model: nn.Module, schedule: Schedule, fired: set[str]) -> list[Mask]:
    """Pruners a stopped timeline never reached, straight to their targets: latency reflects the whole schedule."""
    masks = [mask for pruner in schedule.pruners if pruner.name not in fired
             for mask in rank_pruner(model, pruner, round_to=schedule.round_to)]
    apply_masks(model, masks)
    return masks


def _warn_unfired(schedule: Schedule, epochs: int) -> None:
    """A pruner scheduled past the last epoch would otherwise leave the model silently unpruned."""
    for policy in schedule.pruner_policies:
        if not any(policy.window.fires(epoch) for epoch in range(epochs)):
            warnings.warn(f"{schedule.path}: pruner {policy.pruner} is scheduled from epoch "
                          f"{policy.window.first_epoch()} but the case retrains for {epochs} epoch(s): it never "
                          f"fired (raise --prunebench-epochs, or use 0 to prune straight to the final targets)",
                          stacklevel=3)
