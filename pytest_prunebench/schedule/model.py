"""The schedule's data model: frozen, typed objects a parsed Distiller-format schedule is made of."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import ScheduleError
from .catalogue import PrunerKind

BOUND_KEYS = ("min_top1", "max_top1_drop", "max_latency_ms", "min_latency_speedup")
DEPLOYMENT_KEYS = ("precision", "calibration", "max_drop")  # `prunebench:` keys of how a case is deployed
GENERATED_PREFIX = "<generated"  # the `path` of schedules drawn by pytest_prunebench.strategies


@dataclass(frozen=True)
class Window:
    """When a policy fires: an explicit epoch list, or start / exclusive end / frequency."""

    epochs: tuple[int, ...] | None = None
    starting_epoch: int = 0
    ending_epoch: int | None = None
    frequency: int = 1

    def fires(self, epoch: int) -> bool:
        if self.epochs is not None:
            return epoch in self.epochs
        if epoch < self.starting_epoch:
            return False
        if self.ending_epoch is not None and epoch >= self.ending_epoch:
            return False
        return (epoch - self.starting_epoch) % self.frequency == 0

    def first_epoch(self) -> int | None:
        if self.epochs is not None:
            return min(self.epochs) if self.epochs else None
        return self.starting_epoch

    def last_epoch(self) -> int | None:
        """The last epoch this window fires in, or None when it is open-ended."""
        if self.epochs is not None:
            return max(self.epochs) if self.epochs else None
        if self.ending_epoch is None:
            return None
        span = self.ending_epoch - 1 - self.starting_epoch
        return self.starting_epoch + (span // self.frequency) * self.frequency

    def agp_span(self) -> int | None:
        """Distiller's AGP span: from the first firing to the last, ((end - start - 1) // freq) * freq; None
        for a window AGP cannot follow (an epoch list, open-ended, or one firing only)."""
        if self.epochs is not None or self.ending_epoch is None:
            return None
        span = ((self.ending_epoch - self.starting_epoch - 1) // self.frequency) * self.frequency
        return span if span > 0 else None


def agp_target(initial: float, final: float, window: Window, epoch: int) -> float:
    """Distiller's cubic AGP target at `epoch`: final + (initial - final) * (1 - (epoch - start) / span)^3,
    held at `initial` before the window and at `final` after it."""
    span = window.agp_span()
    if span is None:
        raise ValueError(f"AGP needs starting_epoch, ending_epoch and a span > 0, got {window}")
    progress = min(max((epoch - window.starting_epoch) / span, 0.0), 1.0)
    return final + (initial - final) * (1.0 - progress) ** 3


@dataclass(frozen=True)
class SplicingParams:
    """SplicingPruner's arguments (distiller/pruning/splicing_pruner.py), sensitivities in the order of the layers."""

    low_thresh_mult: float
    hi_thresh_mult: float
    sensitivity_multiplier: float
    sensitivities: tuple[float, ...]


@dataclass(frozen=True)
class PrunerSpec:
    name: str
    class_name: str
    kind: PrunerKind
    ranker: str  # PrunerClass.ranker: l1, l2, magnitude, random, apoz, mean
    desired_sparsity: float
    layers: tuple[str, ...]  # module names, without Distiller's `module.` prefix and `.weight` suffix
    leader: bool = False
    # AGP pruners: the target of their first firing (desired_sparsity is their final target).
    initial_sparsity: float | None = None
    # SparsityLevelParameterPruner: one level per layer (desired_sparsity is the highest).
    levels: tuple[float, ...] = ()
    # RandomLevelStructureParameterPruner: each firing draws its sparsity from [low, high] (desired_sparsity: high).
    sparsity_range: tuple[float, float] | None = None
    # SplicingPruner: thresholds from each weight's |w| statistics, no sparsity target (desired_sparsity is 0).
    splicing: SplicingParams | None = None

    @property
    def agp(self) -> bool:
        return self.initial_sparsity is not None

    @property
    def prunes(self) -> bool:
        """Removes something: a sparsity target above 0, or SplicingPruner's thresholds (it has no target)."""
        return self.desired_sparsity > 0 or self.splicing is not None

    def level(self, layer: str, target: float) -> float:
        """This layer's share of a firing whose pruner-wide target is `target`."""
        return self.levels[self.layers.index(layer)] if self.levels else target


# Fields added after records were first named: left out of hashes at their defaults, so a schedule that does not
# use them keeps its hash (generated cases are named by it) and its artifact-cache key.
_LATER_PRUNER_FIELDS: dict[str, Any] = {"initial_sparsity": None, "levels": (), "sparsity_range": None,
                                        "splicing": None}
_LATER_POLICY_FIELDS: dict[str, Any] = {"fold_batchnorm": False, "minibatch_frequency": 0, "keep_mask": False,
                        "mask_on_forward_only": False, "use_double_copies": False, "mask_gradients": False}
_LATER_REGULARIZER_FIELDS: dict[str, Any] = {"threshold_criteria": None, "keep_mask": False}


@dataclass(frozen=True)
class PrunerPolicy:
    pruner: str
    window: Window
    # Rank conv weights scaled by their BN's gamma / sqrt(running_var + eps), as inference folds them (Distiller's
    # `args: {fold_batchnorm: true}`); the mask still zeroes the conv's own weights.
    fold_batchnorm: bool = False
    # Distiller's per-minibatch masking (distiller/policy.py PruningPolicy), fine-grained pruners only: masks
    # recomputed every `minibatch_frequency` minibatches (0: at epoch begin only); the masker flags below.
    minibatch_frequency: int = 0
    keep_mask: bool = False  # at the policy's last epoch (ending_epoch - 1) the masks become permanent
    mask_on_forward_only: bool = False  # masks applied before the forward pass only: the step may revive weights
    use_double_copies: bool = False  # the step updates the unmasked weights, kept aside during forward/backward
    mask_gradients: bool = False  # gradients multiplied by the mask (needs mask_on_forward_only)

    @property
    def per_minibatch(self) -> bool:
        """Uses any of Distiller's per-minibatch masking arguments."""
        return any(getattr(self, key) != default for key, default in _LATER_POLICY_FIELDS.items()
                   if key != "fold_batchnorm")


@dataclass(frozen=True)
class RegularizerSpec:
    """A Distiller regularizer with its policy: a penalty added to the training loss in the policy's epochs."""

    name: str
    class_name: str
    terms: tuple[tuple[str, float, str], ...]  # (parameter, strength, group: elements / filters / channels)
    window: Window
    # Distiller's thresholding (RegularizationPolicy.on_minibatch_end): after every step, elements or groups whose
    # |w| (Mean_Abs: mean |w| of the group, Max: largest |w|) is not above the strength are zeroed.
    threshold_criteria: str | None = None
    keep_mask: bool = False  # the threshold mask of the policy's last minibatch becomes permanent


@dataclass(frozen=True)
class ThinningSpec:
    name: str
    class_name: str
    func: str
    window: Window
    arch: str | None = None
    dataset: str | None = None


@dataclass(frozen=True)
class LRSchedulerSpec:
    name: str
    class_name: str
    kwargs: tuple[tuple[str, Any], ...]
    window: Window


@dataclass(frozen=True)
class LRSchedulerDefinition:
    """An `lr_schedulers:` entry as written, used by a policy or not, its arguments in the file's order: what
    lr_trial tries on torch before any training (the parser never imports torch)."""

    name: str
    class_name: str
    arguments: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class CaseBounds:
    min_top1: float | None = None
    max_top1_drop: float | None = None
    max_latency_ms: float | None = None
    min_latency_speedup: float | None = None


@dataclass(frozen=True, repr=False)
class Schedule:
    name: str
    path: str
    pruners: tuple[PrunerSpec, ...]
    pruner_policies: tuple[PrunerPolicy, ...]
    thinning: tuple[ThinningSpec, ...] = ()
    lr_schedulers: tuple[LRSchedulerSpec, ...] = ()
    regularizers: tuple[RegularizerSpec, ...] = ()
    model: str | None = None
    dataset: str | None = None
    epochs: int | None = None
    lr: float | None = None
    round_to: int | str | None = None  # kept structures per layer rounded up to a multiple (SIMD-friendly widths);
    # "auto" (AUTO_ROUND_TO): the device's measured step, resolved by the case runner before pruning
    # The case's bounds; named as the schedule's keys call them, and the name is part of semantic_hash (records'
    # schedule_hash), so it stays `thresholds`.
    thresholds: CaseBounds = field(default_factory=CaseBounds)
    precision: str | None = None  # deployed precision (settings.DEPLOYMENT_PRECISIONS); None: the session's
    calibration: int | None = None  # quantized: training images NNCF calibrates on
    max_drop: float | None = None  # int8-accuracy: top1 points the quantized model may lose
    warnings: tuple[str, ...] = ()
    # Not part of what the schedule does (not compared, not hashed): checked by lr_trial, then done with.
    lr_scheduler_definitions: tuple[LRSchedulerDefinition, ...] = field(default=(), compare=False)

    def pruner(self, name: str) -> PrunerSpec:
        for pruner in self.pruners:
            if pruner.name == name:
                return pruner
        raise KeyError(name)

    @property
    def generated(self) -> bool:
        """Drawn by a strategy (named by its configuration), not read from a file."""
        return self.path.startswith(GENERATED_PREFIX)

    def active(self) -> Schedule:
        """The same pruning without pruners at sparsity 0 (no-ops that generated schedules carry)."""
        kept = tuple(p for p in self.pruners if p.prunes)
        names = {p.name for p in kept}
        return replace(self, pruners=kept, pruner_policies=tuple(p for p in self.pruner_policies if p.pruner in names))

    def model_hint(self) -> str | None:
        """The model this schedule names: its `prunebench:` section first, then a thinning `arch`."""
        if self.model:
            return self.model
        return next((t.arch for t in self.thinning if t.arch), None)

    def pruning_horizon(self) -> int:
        """The epoch after the last pruner or thinning firing (0 when everything fires at epoch 0)."""
        windows = [p.window for p in self.pruner_policies] + [t.window for t in self.thinning]
        lasts = [w.last_epoch() if w.last_epoch() is not None else w.first_epoch() for w in windows]
        return max((e for e in lasts if e is not None), default=-1) + 1

    def __repr__(self) -> str:  # hypothesis shows drawn schedules in failure reports: keep them readable
        return f"Schedule({self.name!r}, {'; '.join(self.describe()) or 'no pruning'})"

    def describe(self) -> list[str]:
        """One line per pruner that removes something: name, kind, ranker, sparsity, layers."""
        return [f"{p.name}: {p.kind} {p.ranker} {p.desired_sparsity:g} ({', '.join(p.layers)})"
                for p in self.pruners if p.prunes]

    def content(self) -> dict[str, Any]:
        """`asdict`, without fields added later that hold their defaults (see _LATER_PRUNER_FIELDS)."""
        content = asdict(self)
        content.pop("lr_scheduler_definitions")
        for pruner in content["pruners"]:
            for key, default in _LATER_PRUNER_FIELDS.items():
                if pruner[key] == default:
                    pruner.pop(key)
        for entries, later in (("pruner_policies", _LATER_POLICY_FIELDS), ("regularizers", _LATER_REGULARIZER_FIELDS)):
            for entry in content[entries]:
                for key, default in later.items():
                    if entry[key] == default:
                        entry.pop(key)
        if not content["regularizers"]:
            content.pop("regularizers")
        for key in DEPLOYMENT_KEYS:  # added later: schedules without them keep their hashes
            if content[key] is None:
                content.pop(key)
        return content

    def policy(self, pruner: str) -> PrunerPolicy:
        """The pruner's first policy (a SplicingPruner's sensitivity grows from its starting_epoch)."""
        return next(p for p in self.pruner_policies if p.pruner == pruner)

    def rounding(self) -> int:
        """The multiple kept structures are rounded up to (1: none). `auto` is resolved by the case runner, which
        probes the device, before anything prunes (case/resolution.py: resolve_round_to)."""
        if isinstance(self.round_to, str):
            raise ScheduleError(self.path, "prunebench.round_to", f"{self.round_to} is measured on the device by a "
                                "case runner; prune through one, or give a whole number")
        return self.round_to or 1

    def folds_batchnorm(self, pruner: str) -> bool:
        """Whether any policy of this pruner ranks BN-folded weights."""
        return any(p.fold_batchnorm for p in self.pruner_policies if p.pruner == pruner)

    def semantic_hash(self) -> str:
        """A hash of what the schedule does: not its file name, path, comments or warnings."""
        content = self.content()
        for key in ("name", "path", "warnings"):
            content.pop(key)
        text = json.dumps(content, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def freeze(value: Any) -> Any:
    """A YAML list as a tuple, so that the frozen dataclasses holding it hash."""
    return tuple(value) if isinstance(value, list) else value


def thaw(value: Any) -> Any:
    """`freeze` undone: the value as YAML read it."""
    return list(value) if isinstance(value, tuple) else value
