"""Distiller-format YAML schedules parsed into frozen, typed objects.

Only what this project can apply faithfully is accepted; everything else Distiller knows is refused with a
message naming the class and the file, never ignored.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .errors import ScheduleError, shown
from .granularity import AUTO_ROUND_TO

PrunerKind = Literal["filters", "channels", "rows", "elements"]
# Kinds whose structures are physically removed; the others stay masks: zeros in a dense tensor.
THINNED_KINDS: frozenset[PrunerKind] = frozenset({"filters", "channels"})
Ranker = Literal["l1", "l2"]


@dataclass(frozen=True)
class PrunerClass:
    """What one Distiller pruner class does here: how it scores, what it removes, how its target moves."""

    ranker: str  # l1, l2 (structure norms), magnitude (element |w|), random, apoz / mean (activations)
    agp: bool = False  # initial_sparsity -> final_sparsity on Distiller's cubic AGP schedule
    elements: bool = False  # fine-grained: element masks, kept through retraining, never thinned
    filters_only: bool = False  # Distiller's *FilterPruner classes rank filters whatever group_type says
    level_range: bool = False  # a sparsity drawn from `sparsity_range` at each firing


# Classes are compared by name only: a class named in a schedule is never imported.
PRUNER_CLASSES: dict[str, PrunerClass] = {
    "L1RankedStructureParameterPruner": PrunerClass("l1"),
    "L2RankedStructureParameterPruner": PrunerClass("l2"),
    "L1RankedStructureParameterPruner_AGP": PrunerClass("l1", agp=True),
    "L2RankedStructureParameterPruner_AGP": PrunerClass("l2", agp=True),
    "AutomatedGradualPruner": PrunerClass("magnitude", agp=True, elements=True),
    "SparsityLevelParameterPruner": PrunerClass("magnitude", elements=True),
    "RandomRankedFilterPruner": PrunerClass("random", filters_only=True),
    "RandomLevelStructureParameterPruner": PrunerClass("l1", level_range=True),
    "ActivationAPoZRankedFilterPruner": PrunerClass("apoz", filters_only=True),
    "ActivationAPoZRankedFilterPruner_AGP": PrunerClass("apoz", agp=True, filters_only=True),
    "ActivationMeanRankedFilterPruner": PrunerClass("mean", filters_only=True),
    "ActivationMeanRankedFilterPruner_AGP": PrunerClass("mean", agp=True, filters_only=True),
    "SplicingPruner": PrunerClass("splicing", elements=True),
}
SUPPORTED_PRUNERS = tuple(PRUNER_CLASSES)
# Distiller classes a later issue may add: named so the refusal says "not supported yet", not "unknown".
KNOWN_UNSUPPORTED_PRUNERS = frozenset(
    {
        "MagnitudeParameterPruner",
        "BaiduRNNPruner",
        "StructureParameterPruner",
        "GradientRankedFilterPruner_AGP",
        "BernoulliFilterPruner_AGP",
    }
)
# Distiller's `Rows` of a 2D weight are the columns of torch's (out, in) matrix: the fc's input features
# (ranked_structures_pruner.rank_and_prune_rows), never its outputs (the classes).
GROUP_TYPES: dict[str, PrunerKind] = {"Filters": "filters", "Channels": "channels", "Rows": "rows"}
KNOWN_UNSUPPORTED_GROUP_TYPES = frozenset({"Cols", "Kernels", "Blocks", "3D", "2D", "4D", "Channels_Filters"})
# Policy arguments of Distiller's per-minibatch (dynamic) masking: DropFilter-style regularisation, network surgery.
MINIBATCH_MASK_ARGS = frozenset({"mini_batch_pruning_frequency", "discard_masks_at_minibatch_end",
                                 "mask_on_forward_only", "use_double_copies", "mask_gradients", "keep_mask"})
# The ones Distiller sets on the ParameterMasker of every parameter of the model, not only its own pruner's
# (distiller/policy.py PruningPolicy.on_epoch_begin): one value for the whole model.
MASKER_FLAGS = ("mask_on_forward_only", "use_double_copies", "mask_gradients")
# Distiller's GroupLassoRegularizer asserts threshold_criteria in [None, "Max", "Mean_Abs"] (group_regularizer.py).
THRESHOLD_CRITERIA = frozenset({"Mean_Abs", "Max"})
# Distiller's group lasso groups this project applies: a conv's filters or its input channels.
LASSO_GROUPS: dict[str, str] = {"Filters": "filters", "3D": "filters", "Channels": "channels"}
REGULARIZERS = frozenset({"L1Regularizer", "GroupLassoRegularizer"})
THINNING_CLASSES = frozenset({"FilterRemover", "ChannelRemover", "StructureRemover"})
THINNING_FUNCS = frozenset({"remove_filters", "remove_channels"})
# torch.optim.lr_scheduler classes whose arguments are plain numbers; anything that takes code is refused.
LR_SCHEDULERS = frozenset(
    {
        "StepLR",
        "MultiStepLR",
        "ExponentialLR",
        "CosineAnnealingLR",
        "ConstantLR",
        "LinearLR",
        "PolynomialLR",
    }
)
THRESHOLD_KEYS = ("min_top1", "max_top1_drop", "max_latency_ms", "min_latency_speedup")
SECTION_KEYS = frozenset({"version", "pruners", "extensions", "lr_schedulers", "policies", "regularizers",
                          "quantizers", "prunebench"})
POLICY_TARGETS = ("pruner", "extension", "lr_scheduler", "regularizer", "quantizer")
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
class Thresholds:
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
    thresholds: Thresholds = field(default_factory=Thresholds)
    precision: str | None = None  # deployed precision (settings.DEPLOYMENT_PRECISIONS); None: the session's
    calibration: int | None = None  # quantized: training images NNCF calibrates on
    max_drop: float | None = None  # int8-accuracy: top1 points the quantized model may lose
    warnings: tuple[str, ...] = ()

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
        probes the device, before anything prunes (case.CaseRunner._resolve_round_to)."""
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


def find_yaml_files(patterns: tuple[str, ...]) -> list[Path]:
    """YAML files (schedules, sweeps) named by files, directories (their *.yaml / *.yml) or globs, sorted, once."""
    import glob

    found: dict[Path, None] = {}
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            matches = [*path.glob("*.yaml"), *path.glob("*.yml")]
        elif path.is_file():
            matches = [path]
        else:
            matches = [Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()]
        for match in sorted(matches):
            found.setdefault(match.resolve(), None)
    return list(found)


def load_schedule(path: str | Path) -> Schedule:
    """Read and validate one Distiller-format schedule file."""
    path = Path(path)
    duplicates: list[tuple[int, str]] = []
    schedule = parse_schedule(read_yaml(path, duplicates=duplicates), str(path), name=path.stem)
    found = tuple(f"{path}: line {line}: {text}" for line, text in duplicates)
    return replace(schedule, warnings=found + schedule.warnings) if found else schedule


def parse_schedule(document: Any, path: str, name: str) -> Schedule:
    """Validate an already-loaded YAML document; `path` is only used in messages."""
    if document is None:
        raise ScheduleError(path, "", "the file is empty; a schedule needs `pruners:` and `policies:`")
    if isinstance(document, str) and document.strip().endswith((".yaml", ".yml")):
        raise ScheduleError(path, "", f"the file holds only the text {document.strip()!r}: a symlink copied as a "
                                      f"plain file? Point at the schedule it names")
    if not isinstance(document, Mapping):
        raise ScheduleError(path, "", f"a schedule is a YAML mapping, got {type(document).__name__}")
    reader = _Reader(path)
    return reader.schedule(document, name)


def read_yaml(path: Path, error: type[ScheduleError] = ScheduleError,
              missing: str = "pass an existing schedule with --prunebench-schedules",
              duplicates: list[tuple[int, str]] | None = None) -> Any:
    """`yaml.safe_load` of a file; every failure is one `error` naming the file (and line) and what to do.

    A key repeated in one mapping is read as YAML readers (and Distiller) read it, the later entry winning, and
    described in `duplicates` as (line, text): real Distiller files have them, so they cannot be refused, but a
    user should see that a second pruner of the same name replaced the first."""
    import yaml

    if not path.is_file():
        raise error(str(path), "", f"no such file; {missing}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(str(path), "", f"cannot read the file ({exc})") from None
    try:
        loader = _safe_loader()(text)  # a yaml.SafeLoader: no tag runs code
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
        if duplicates is not None:
            duplicates.extend(loader.duplicates)
        return document
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}" if mark else ""
        if "could not determine a constructor" in str(exc.problem):
            message = f"unsafe or unknown YAML tag ({exc.problem}); files are read with yaml.safe_load: remove the tag"
        else:  # "while constructing a mapping", "found unhashable key"; or our own scalar message
            message = ", ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise error(str(path), where, message) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]  # "while scanning ...", "found ..."
        problem = ", ".join(str(part) for part in parts if part) or str(exc).splitlines()[0]
        raise error(str(path), where, f"YAML syntax error: {problem}") from None
    except RecursionError:
        raise error(str(path), "", "YAML nested too deeply to read; a schedule or sweep is a few levels deep") from None


@functools.cache
def _safe_loader() -> type:
    """yaml.SafeLoader that lists duplicate keys (the later one silently replaces the earlier: a second pruner of
    the same name, a repeated parameter) and reports a scalar it cannot build (`2021-13-45` read as a date,
    `!!int half`) with its line instead of a bare ValueError."""
    import yaml
    from yaml.constructor import ConstructorError

    class SafeLoader(yaml.SafeLoader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.duplicates: list[tuple[int, str]] = []

        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except (ValueError, TypeError, OverflowError, IndexError, KeyError, AttributeError) as exc:
                tag = str(node.tag).rsplit(":", 1)[-1]
                why = f" ({exc})" if isinstance(exc, ValueError) and str(exc) else ""  # else PyYAML's own slip
                raise ConstructorError(None, None, f"cannot read {shown(node.value)} as a YAML {tag}{why}; quote "
                                                   f"it if it is text", node.start_mark) from None

        def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
            if isinstance(node, yaml.MappingNode):
                seen: set[Any] = set()
                for key_node, _value in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=deep)
                    try:
                        duplicate = key in seen
                        seen.add(key)
                    except TypeError:  # an unhashable key: the base class refuses it with its own message
                        continue
                    if duplicate:
                        self.duplicates.append((key_node.start_mark.line + 1, f"duplicate key {shown(key)}: the "
                                                f"later entry replaces the earlier one; keep one"))
            return super().construct_mapping(node, deep)

    return SafeLoader


# A regularizer as defined under `regularizers:`: (class, terms, threshold_criteria).
RegularizerParts = tuple[str, tuple[tuple[str, float, str], ...], str | None]


class _Reader:
    """Validates one document section by section; every error names the file and the key."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.warnings: list[str] = []

    def fail(self, where: str, message: str) -> ScheduleError:
        return ScheduleError(self.path, where, message)

    def schedule(self, doc: Mapping[str, Any], name: str) -> Schedule:
        unknown = sorted(str(k) for k in doc if k not in SECTION_KEYS)
        if unknown:
            hint = "; a W&B sweep file? pass it with --prunebench-sweep" if {"method", "parameters"} & set(doc) else ""
            raise self.fail(unknown[0], f"unknown top-level key (expected one of {sorted(SECTION_KEYS)}){hint}")
        if doc.get("quantizers"):
            classes = sorted({_name(v.get("class")) for v in self.mapping(doc["quantizers"], "quantizers").values()
                              if isinstance(v, Mapping)})
            raise self.fail("quantizers", f"{', '.join(classes) or 'quantizers'}: quantization is not supported by "
                                          f"pytest-prunebench, which measures pruned f32/bf16 models (remove the "
                                          f"`quantizers:` section)")
        regularizers = {n: self.regularizer(n, s)
                        for n, s in self.mapping(doc.get("regularizers") or {}, "regularizers").items()}
        pruners = {n: self.pruner(n, s) for n, s in self.mapping(doc.get("pruners") or {}, "pruners").items()}
        extensions = self.mapping(doc.get("extensions") or {}, "extensions")
        for ext_name, ext in extensions.items():
            self.check_extension(ext_name, ext)
        schedulers = self.mapping(doc.get("lr_schedulers") or {}, "lr_schedulers")
        for sched_name, spec in schedulers.items():
            self.check_lr_scheduler(sched_name, spec)
        policies = doc.get("policies") or []
        if not isinstance(policies, list):
            raise self.fail("policies", "must be a list of policies (`- pruner: {instance_name: ...}`)")
        pruner_policies, thinning, lr_schedulers, regularized = self.policies(policies, pruners, extensions,
                                                                              schedulers, regularizers)
        fired = {p.pruner for p in pruner_policies}
        used = {"pruners": fired, "extensions": {t.name for t in thinning},
                "lr_schedulers": {s.name for s in lr_schedulers}, "regularizers": {r.name for r in regularized}}
        defined = {"pruners": set(pruners), "extensions": set(extensions), "lr_schedulers": set(schedulers),
                   "regularizers": set(regularizers)}
        for section, names in defined.items():
            for unused in sorted(names - used[section]):
                self.warnings.append(f"{self.path}: {section}.{unused}: no policy uses it, so it never takes effect")
        settings = self.prunebench_section(doc.get("prunebench"))
        return Schedule(
            name=name,
            path=self.path,
            pruners=tuple(pruners[n] for n in pruners if n in fired),
            pruner_policies=tuple(pruner_policies),
            thinning=tuple(thinning),
            lr_schedulers=tuple(lr_schedulers),
            regularizers=tuple(regularized),
            warnings=tuple(self.warnings),
            **settings,
        )

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"must be a mapping of names to settings, got {type(value).__name__}")
        return {str(k): v for k, v in value.items()}

    def pruner(self, name: str, spec: Any) -> PrunerSpec:
        where = f"pruners.{name}"
        spec = self.mapping(spec, where)
        class_name = spec.get("class")  # compared with names only: a class is never imported
        if _one_of(class_name, KNOWN_UNSUPPORTED_PRUNERS):
            raise self.fail(f"{where}.class", f"{class_name} is not supported yet by pytest-prunebench "
                                              f"(supported: {', '.join(SUPPORTED_PRUNERS)})")
        if not _one_of(class_name, PRUNER_CLASSES):
            raise self.fail(f"{where}.class", f"unknown pruner class {shown(class_name)} "
                                              f"(supported: {', '.join(SUPPORTED_PRUNERS)})")
        if class_name == "SplicingPruner":
            return self.splicing_pruner(name, spec, where)
        cls = PRUNER_CLASSES[class_name]
        targets = ("initial_sparsity", "final_sparsity") if cls.agp else ("desired_sparsity",)
        targets = ("sparsity_range",) if cls.level_range else targets
        allowed = {"class", "weights", *targets} | ({"group_type", "group_dependency"} if not cls.elements else set())
        if class_name == "SparsityLevelParameterPruner":
            allowed = {"class", "levels"}
        extra = sorted(set(spec) - allowed)
        if extra:
            raise self.fail(f"{where}.{extra[0]}", f"unknown key for {class_name} (allowed: {sorted(allowed)})")
        if class_name == "SparsityLevelParameterPruner":
            return self.level_pruner(name, class_name, spec.get("levels"), f"{where}.levels")
        kind: PrunerKind = "elements" if cls.elements else self.group_type(spec.get("group_type"), where)
        if cls.filters_only and kind != "filters":
            raise self.fail(f"{where}.group_type", f"{class_name} ranks filters only (Distiller prunes filters "
                                                   f"whatever group_type says): use group_type: Filters")
        dependency = spec.get("group_dependency")
        if dependency not in (None, "Leader"):
            raise self.fail(f"{where}.group_dependency", f"only `Leader` is supported, got {shown(dependency)}")
        initial = None
        if cls.agp:
            initial = self.sparsity(spec.get("initial_sparsity"), f"{where}.initial_sparsity")
            final = self.sparsity(spec.get("final_sparsity"), f"{where}.final_sparsity")
            if initial > final:
                raise self.fail(f"{where}.initial_sparsity", f"{initial:g} is above final_sparsity {final:g}: AGP "
                                                             f"only ever raises the sparsity")
        elif cls.level_range:
            span = self.sparsity_range(spec.get("sparsity_range"), f"{where}.sparsity_range")
            final = span[1]
        else:
            final = self.sparsity(spec.get("desired_sparsity"), f"{where}.desired_sparsity")
        return PrunerSpec(name=name, class_name=class_name, kind=kind, ranker=cls.ranker, desired_sparsity=final,
                          layers=self.layer_names(spec.get("weights"), f"{where}.weights"),
                          leader=dependency == "Leader", initial_sparsity=initial,
                          sparsity_range=span if cls.level_range else None)

    def splicing_pruner(self, name: str, spec: dict[str, Any], where: str) -> PrunerSpec:
        """SplicingPruner (dynamic network surgery): `sensitivities: {weight: s}`, low_thresh_mult, hi_thresh_mult
        and an optional sensitivity_multiplier, the arguments of Distiller's SplicingPruner.__init__."""
        allowed = {"class", "sensitivities", "low_thresh_mult", "hi_thresh_mult", "sensitivity_multiplier"}
        extra = sorted(set(spec) - allowed)
        if extra:
            raise self.fail(f"{where}.{extra[0]}", f"unknown key for SplicingPruner (allowed: {sorted(allowed)})")
        sensitivities = spec.get("sensitivities")
        if not isinstance(sensitivities, Mapping) or not sensitivities:
            raise self.fail(f"{where}.sensitivities", "must be a mapping of weight names to sensitivities "
                                                      "(e.g. module.layer1.0.conv1.weight: 0.05)")
        if "*" in sensitivities:
            raise self.fail(f"{where}.sensitivities.*", "a sensitivity for every parameter (Distiller's `*`, biases "
                                                        "and BN included) is not supported; name the weights")
        layers = self.layer_names(list(sensitivities), f"{where}.sensitivities")
        values = tuple(self.number(v, f"{where}.sensitivities.{k}") for k, v in sensitivities.items())
        low, high = (self.positive(spec.get(k), f"{where}.{k}") for k in ("low_thresh_mult", "hi_thresh_mult"))
        if low > high:
            raise self.fail(f"{where}.low_thresh_mult", f"{low:g} is above hi_thresh_mult {high:g}: the band between "
                                                        f"them is where a weight keeps its previous mask")
        multiplier = self.number(spec.get("sensitivity_multiplier", 0), f"{where}.sensitivity_multiplier")
        if multiplier < 0:
            raise self.fail(f"{where}.sensitivity_multiplier", f"must be >= 0, got {multiplier:g} (Distiller grows "
                                                               f"the sensitivity only when it is > 0 and would ignore "
                                                               f"it)")
        return PrunerSpec(name=name, class_name="SplicingPruner", kind="elements", ranker="splicing",
                          desired_sparsity=0.0, layers=layers,
                          splicing=SplicingParams(low, high, multiplier, values))

    def sparsity_range(self, value: Any, where: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(where, f"must be [low, high] (e.g. [0.1, 0.2]), got {shown(value)}")
        low, high = (self.sparsity(v, where) for v in value)
        if low > high:
            raise self.fail(where, f"low {low:g} is above high {high:g}")
        return low, high

    def group_type(self, group_type: Any, where: str) -> PrunerKind:
        if _one_of(group_type, KNOWN_UNSUPPORTED_GROUP_TYPES):
            raise self.fail(f"{where}.group_type", f"{group_type!r} is not supported yet (use Filters, Channels "
                                                   f"or Rows)")
        if not _one_of(group_type, GROUP_TYPES):
            raise self.fail(f"{where}.group_type", f"must be Filters, Channels or Rows, got {shown(group_type)}")
        return GROUP_TYPES[group_type]

    def level_pruner(self, name: str, class_name: str, levels: Any, where: str) -> PrunerSpec:
        """SparsityLevelParameterPruner: `levels: {weight name: sparsity}`, each weight pruned to its own level."""
        if not isinstance(levels, Mapping) or not levels:
            raise self.fail(where, "must be a mapping of weight names to sparsity levels "
                                   "(e.g. module.layer1.0.conv1.weight: 0.5)")
        if "*" in levels:
            raise self.fail(f"{where}.*", "a level for every parameter (Distiller's `*`, biases and BN included) is "
                                          "not supported; name the weights")
        layers = self.layer_names(list(levels), where)
        values = tuple(self.sparsity(value, f"{where}.{key}") for key, value in levels.items())
        return PrunerSpec(name=name, class_name=class_name, kind="elements", ranker="magnitude",
                          desired_sparsity=max(values), layers=layers, levels=values)

    def sparsity(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"must be a number in [0, 1), got {shown(value)}")
        if not 0 <= value < 1 or math.isnan(value):
            raise self.fail(where, f"{shown(value)} is outside [0, 1): a pruner never removes every structure")
        return float(value)

    def layer_names(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(where, "must be a non-empty list of parameter names (e.g. module.layer1.0.conv1.weight)")
        names = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise self.fail(where, f"parameter names are strings, got {shown(item)}")
            name = item.strip().removeprefix("module.")
            if name.endswith(".bias"):
                raise self.fail(where, f"{shown(item)}: structured pruners rank weights, not biases")
            names.append(name.removesuffix(".weight"))
        return tuple(names)

    def allowed_class(self, spec: Mapping[str, Any], where: str, allowed: frozenset[str], what: str) -> str:
        """The entry's `class`, compared by name with an allow-list: a class is never imported from text."""
        class_name = spec.get("class")
        if not _one_of(class_name, allowed):
            raise self.fail(f"{where}.class", f"{what} class {shown(class_name)} is not supported "
                                              f"(supported: {', '.join(sorted(allowed))})")
        return str(class_name)

    def check_extension(self, name: str, spec: Any) -> None:
        where = f"extensions.{name}"
        spec = self.mapping(spec, where)
        self.allowed_class(spec, where, THINNING_CLASSES, "extension")
        func = spec.get("thinning_func_str")
        if not _one_of(func, THINNING_FUNCS):
            raise self.fail(f"{where}.thinning_func_str",
                            f"must be remove_filters or remove_channels, got {shown(func)}")
        for key in ("arch", "dataset"):
            if spec.get(key) is not None and not isinstance(spec[key], str):
                raise self.fail(f"{where}.{key}", f"must be a name, got {shown(spec[key])}")

    def check_lr_scheduler(self, name: str, spec: Any) -> None:
        import torch.optim.lr_scheduler as lr_scheduler

        where = f"lr_schedulers.{name}"
        spec = self.mapping(spec, where)
        class_name = spec.get("class")  # compared with names only: a class outside the list is never looked up
        if not _one_of(class_name, LR_SCHEDULERS):
            raise self.fail(f"{where}.class", f"lr_scheduler class {shown(class_name)} is not allowed "
                                              f"(allowed: {', '.join(sorted(LR_SCHEDULERS))})")
        cls = getattr(lr_scheduler, class_name)
        parameters = inspect.signature(cls).parameters
        ignored = {"self", "optimizer", "last_epoch", "verbose"}
        accepted = set(parameters) - ignored
        kwargs: dict[str, Any] = {}
        for key, value in spec.items():
            if key == "class":
                continue
            if key not in accepted:
                raise self.fail(f"{where}.{key}", f"{class_name} takes no argument {shown(key)} "
                                                  f"(it takes: {', '.join(sorted(accepted))})")
            numbers = value if isinstance(value, list) else [value]
            if not numbers or not all(finite_number(v) for v in numbers):
                raise self.fail(f"{where}.{key}", f"must be a finite number or a list of them, got {shown(value)}")
            kwargs[key] = value
        missing = [key for key in sorted(accepted) if key not in kwargs
                   and parameters[key].default is inspect.Parameter.empty
                   and parameters[key].kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
        if missing:
            raise self.fail(where, f"{class_name} needs {', '.join(missing)}")
        problem = _lr_scheduler_problem(cls, kwargs)
        if problem:
            arguments = ", ".join(f"{key}={shown(value)}" for key, value in kwargs.items())
            raise self.fail(where, f"{class_name}({arguments}) {problem}")

    def policies(
        self, policies: list[Any], pruners: dict[str, PrunerSpec], extensions: dict[str, Any],
        schedulers: dict[str, Any], regularizers: dict[str, RegularizerParts],
    ) -> tuple[list[PrunerPolicy], list[ThinningSpec], list[LRSchedulerSpec], list[RegularizerSpec]]:
        pruner_policies: list[PrunerPolicy] = []
        thinning: list[ThinningSpec] = []
        lr_schedulers: list[LRSchedulerSpec] = []
        regularized: list[RegularizerSpec] = []
        for index, policy in enumerate(policies):
            where = f"policies[{index}]"
            policy = self.mapping(policy, where)
            targets = [t for t in POLICY_TARGETS if t in policy]
            if len(targets) != 1:
                raise self.fail(where, "each policy names exactly one of pruner, extension, lr_scheduler or "
                                       "regularizer")
            target = targets[0]
            if target == "quantizer":
                raise self.fail(f"{where}.{target}", "quantization is not supported by pytest-prunebench")
            extra = sorted(set(policy) - {target, "epochs", "starting_epoch", "ending_epoch", "frequency"})
            if extra:
                raise self.fail(f"{where}.{extra[0]}", "unknown policy key (allowed: epochs, starting_epoch, "
                                                       "ending_epoch, frequency)")
            instance, args = self.instance_name(policy[target], f"{where}.{target}")
            window = self.window(policy, where)
            if args and target not in ("pruner", "regularizer"):
                raise self.fail(f"{where}.{target}.args.{next(iter(args))}",
                                f"policy arguments ({', '.join(args)}) are not supported for a {target} policy")
            if target == "pruner":
                if instance not in pruners:
                    raise self.fail(f"{where}.pruner.instance_name",
                                    f"{instance!r} is not defined under `pruners:` ({', '.join(pruners) or 'none'})")
                if pruners[instance].agp and window.agp_span() is None:
                    raise self.fail(where, f"{pruners[instance].class_name} {instance!r} follows Distiller's AGP "
                                           f"schedule: it needs starting_epoch, ending_epoch (exclusive) and a "
                                           f"frequency that fire it at least twice, not {_window_text(window)}")
                fields = self.pruner_args(args, f"{where}.pruner.args", pruners[instance], window)
                pruner_policies.append(PrunerPolicy(instance, window, **fields))
            elif target == "extension":
                if instance not in extensions:
                    raise self.fail(f"{where}.extension.instance_name",
                                    f"{instance!r} is not defined under `extensions:`")
                ext = extensions[instance]
                thinning.append(ThinningSpec(instance, ext["class"], ext["thinning_func_str"], window,
                                             _opt_str(ext.get("arch")), _opt_str(ext.get("dataset"))))
            elif target == "regularizer":
                if instance not in regularizers:
                    raise self.fail(f"{where}.regularizer.instance_name",
                                    f"{instance!r} is not defined under `regularizers:`")
                keep = self.regularizer_args(args, f"{where}.regularizer.args", regularizers[instance], window)
                class_name, terms, criteria = regularizers[instance]
                regularized.append(RegularizerSpec(instance, class_name, terms, window, criteria, keep))
            else:
                if instance not in schedulers:
                    raise self.fail(f"{where}.lr_scheduler.instance_name",
                                    f"{instance!r} is not defined under `lr_schedulers:`")
                spec = schedulers[instance]
                kwargs = tuple(sorted((k, _freeze(v)) for k, v in spec.items() if k != "class"))
                lr_schedulers.append(LRSchedulerSpec(instance, spec["class"], kwargs, window))
        self.check_masking(pruner_policies, pruners, regularized)
        return pruner_policies, thinning, lr_schedulers, regularized

    def instance_name(self, value: Any, where: str) -> tuple[str, dict[str, Any]]:
        """The policy's instance name and its `args` (checked by pruner_args / regularizer_args)."""
        if not isinstance(value, Mapping) or not isinstance(value.get("instance_name"), str):
            raise self.fail(where, "must be a mapping with `instance_name: NAME`")
        extra = sorted(str(key) for key in value if key not in ("instance_name", "args"))
        args = value.get("args")
        if args is not None and not isinstance(args, Mapping):
            raise self.fail(f"{where}.args", f"must be a mapping of policy arguments, got {shown(args)}")
        args = {str(key): arg for key, arg in (args or {}).items()}
        if "discard_masks_at_minibatch_end" in args:
            dynamic = sorted(set(args) & MINIBATCH_MASK_ARGS)
            raise self.fail(f"{where}.args.discard_masks_at_minibatch_end", f"per-minibatch masking "
                            f"({', '.join(dynamic)}) is DropFilter-style regularisation: masks drawn every few "
                            f"minibatches and discarded at each minibatch's end, so the trained model is not pruned "
                            f"by them and there is nothing to thin; not supported")
        if extra:
            raise self.fail(f"{where}.{extra[0]}", f"unknown key {shown(extra[0])} (a policy names instance_name and, "
                                                   f"for a pruner or regularizer, args)")
        return value["instance_name"], args

    def pruner_args(self, args: dict[str, Any], where: str, pruner: PrunerSpec, window: Window) -> dict[str, Any]:
        """A pruner policy's `args` as PrunerPolicy fields: fold_batchnorm and Distiller's per-minibatch masking."""
        known = {"fold_batchnorm", "mini_batch_pruning_frequency", "keep_mask", *MASKER_FLAGS}
        unsupported = sorted(set(args) - known)
        if unsupported:
            raise self.fail(f"{where}.{unsupported[0]}", f"policy arguments ({', '.join(unsupported)}) are not "
                                                         f"supported yet (pruner policies take "
                                                         f"{', '.join(sorted(known))})")
        fields: dict[str, Any] = {key: self.boolean(args[key], f"{where}.{key}")
                                  for key in ("fold_batchnorm", "keep_mask", *MASKER_FLAGS) if key in args}
        if "mini_batch_pruning_frequency" in args:
            fields["minibatch_frequency"] = self.count(args["mini_batch_pruning_frequency"],
                                                       f"{where}.mini_batch_pruning_frequency")
        dynamic = sorted(set(args) & MINIBATCH_MASK_ARGS)
        if dynamic and pruner.kind != "elements":
            raise self.fail(f"{where}.{dynamic[0]}", f"per-minibatch masking ({', '.join(dynamic)}) applies to "
                                                     f"fine-grained pruners (AutomatedGradualPruner, "
                                                     f"SparsityLevelParameterPruner, SplicingPruner); "
                                                     f"{pruner.class_name} masks {pruner.kind}, which thinning removes")
        if fields.get("mask_gradients") and not fields.get("mask_on_forward_only"):
            raise self.fail(f"{where}.mask_gradients", "needs mask_on_forward_only: true (Distiller refuses it "
                                                       "otherwise: 'mask_gradients and (not mask_on_forward_only) "
                                                       "are mutually exclusive', policy.py PruningPolicy)")
        if fields.get("fold_batchnorm") and pruner.splicing is not None:
            raise self.fail(f"{where}.fold_batchnorm", "SplicingPruner with fold_batchnorm is not supported: Distiller "
                                                       "caches |w|'s mean and std on the tensor it is given, and a "
                                                       "BN-folded tensor is new at every call, so its thresholds move "
                                                       "with the BN statistics")
        if fields.get("keep_mask"):
            self.check_keep_mask(window, f"{where}.keep_mask")
        return fields

    def regularizer_args(self, args: dict[str, Any], where: str, parts: RegularizerParts, window: Window) -> bool:
        """A regularizer policy's `args`: Distiller's RegularizationPolicy takes keep_mask only."""
        unsupported = sorted(set(args) - {"keep_mask"})
        if unsupported:
            raise self.fail(f"{where}.{unsupported[0]}", "regularizer policies take keep_mask only (Distiller's "
                                                         "RegularizationPolicy(regularizer, keep_mask))")
        keep = self.boolean(args.get("keep_mask", False), f"{where}.keep_mask")
        if keep and parts[2] is None:
            raise self.fail(f"{where}.keep_mask", "keeps the masks of threshold_criteria, and this regularizer has "
                                                  "none: it would do nothing")
        if keep:
            self.check_keep_mask(window, f"{where}.keep_mask")
            biases = [name for name, _strength, _group in parts[1] if not name.endswith(".weight")]
            if biases:
                raise self.fail(f"{where}.keep_mask", f"kept threshold masks are supported on weights, not on "
                                                      f"{biases[0]!r}")
        return keep

    def check_keep_mask(self, window: Window, where: str) -> None:
        """keep_mask acts at the end of epoch ending_epoch - 1 (policy.py: is_last_epoch), if the policy runs then."""
        why = "keep_mask acts at epoch ending_epoch - 1 (Distiller's is_last_epoch, policy.py)"
        if window.epochs is not None:
            raise self.fail(where, f"{why}, and Distiller gives a policy with an `epochs` list ending_epoch 1 "
                                   f"(CompressionScheduler.add_policy's default), so it would act at epoch 0 only: "
                                   f"use starting_epoch / ending_epoch")
        if window.ending_epoch is None:
            raise self.fail(where, f"{why}: give the policy an ending_epoch")
        if not window.fires(window.ending_epoch - 1):
            raise self.fail(where, f"{why}, {window.ending_epoch - 1} here, an epoch this policy does not run in "
                                   f"(frequency {window.frequency}): it would never act")

    def check_masking(self, policies: list[PrunerPolicy], pruners: dict[str, PrunerSpec],
                      regularized: list[RegularizerSpec]) -> None:
        """What Distiller's one-masker-per-parameter design makes unfaithful here is refused (scheduler.py
        ParameterMasker): masker flags set for the whole model, SplicingPruner's masks under thinning, and a
        regularizer's threshold mask replacing a pruner's mask."""
        flagged = [(i, p) for i, p in enumerate(policies) if any(getattr(p, flag) for flag in MASKER_FLAGS)]
        if flagged and (len(policies) > 1 or any(r.threshold_criteria for r in regularized)):
            flags = [flag for flag in MASKER_FLAGS if getattr(flagged[0][1], flag)]
            raise self.fail(f"pruners.{flagged[0][1].pruner}", f"its policy sets {', '.join(flags)}, which Distiller "
                            f"sets on the masker of every parameter (policy.py PruningPolicy.on_epoch_begin), with one "
                            f"unmasked copy per parameter: they would act on the masks of the schedule's other "
                            f"pruner policies and regularizer thresholds; supported in a schedule whose only mask "
                            f"comes from that one pruner policy")
        thinned = [p for p in pruners.values() if p.kind in THINNED_KINDS]
        spliced = [p for p in pruners.values() if p.splicing is not None]
        if spliced and thinned:
            raise self.fail(f"pruners.{spliced[0].name}.class", f"SplicingPruner carries each weight's mask from "
                            f"minibatch to minibatch, and the thinning of {thinned[0].name}'s {thinned[0].kind} would "
                            f"reshape the weights under it: not supported in one schedule")
        masked = {layer: p.name for p in pruners.values() for layer in p.layers}
        for regularizer in regularized:
            for parameter, _strength, _group in regularizer.terms if regularizer.threshold_criteria else ():
                if parameter.removesuffix(".weight") in masked:
                    raise self.fail(f"regularizers.{regularizer.name}.threshold_criteria", f"{parameter!r} is also "
                                    f"pruned by {masked[parameter.removesuffix('.weight')]}: Distiller's threshold "
                                    f"mask replaces the pruner's mask of that parameter (one mask per parameter, "
                                    f"RegularizationPolicy.on_minibatch_end); not supported")

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"must be true or false, got {shown(value)}")
        return value

    def count(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(where, f"must be a whole number >= 0 (0: masks at epoch begin only), got {shown(value)}")
        return value

    def regularizer(self, name: str, spec: Any) -> RegularizerParts:
        """(class, terms) of an L1Regularizer (`reg_regims: {weight: strength}`) or GroupLassoRegularizer
        (`reg_regims: {weight: [strength, Filters | 3D | Channels]}`)."""
        where = f"regularizers.{name}"
        spec = self.mapping(spec, where)
        class_name = self.allowed_class(spec, where, REGULARIZERS, "regularizer")
        extra = sorted(set(spec) - {"class", "reg_regims", "threshold_criteria"})
        if extra:
            raise self.fail(f"{where}.{extra[0]}", "unknown key (allowed: class, reg_regims, threshold_criteria)")
        criteria = spec.get("threshold_criteria")
        if criteria is not None and not _one_of(criteria, THRESHOLD_CRITERIA):
            single = (" (L1Regularizer thresholds single elements at their strength, |w| > strength, where both "
                      "agree)" if class_name == "L1Regularizer" else "")
            raise self.fail(f"{where}.threshold_criteria", f"must be Mean_Abs or Max (as Distiller's "
                                                           f"GroupLassoRegularizer asserts), got {shown(criteria)}"
                                                           f"{single}")
        regims = spec.get("reg_regims")
        if not isinstance(regims, Mapping) or not regims:
            raise self.fail(f"{where}.reg_regims", "must be a mapping of parameter names to strengths")
        terms = []
        for parameter, value in regims.items():
            key = f"{where}.reg_regims.{parameter}"
            group = "elements"
            if class_name == "GroupLassoRegularizer":
                if not isinstance(value, list) or len(value) != 2 or not _one_of(value[1], LASSO_GROUPS):
                    raise self.fail(key, f"must be [strength, group] with group one of "
                                         f"{', '.join(sorted(LASSO_GROUPS))}, got {shown(value)}")
                value, group = value[0], LASSO_GROUPS[value[1]]
            terms.append((str(parameter).removeprefix("module."), self.positive(value, key), group))
        return class_name, tuple(terms), criteria

    def window(self, policy: Mapping[str, Any], where: str) -> Window:
        if "epochs" in policy:
            if any(k in policy for k in ("starting_epoch", "ending_epoch", "frequency")):
                raise self.fail(where, "use either `epochs: [...]` or starting_epoch/ending_epoch/frequency")
            epochs = policy["epochs"]
            if not isinstance(epochs, list) or not epochs:
                raise self.fail(f"{where}.epochs", f"must be a non-empty list of epochs, got {shown(epochs)}")
            return Window(epochs=tuple(self.epoch(e, f"{where}.epochs") for e in epochs))
        if "starting_epoch" not in policy:
            raise self.fail(where, "needs `epochs: [...]` or `starting_epoch:` (with ending_epoch, frequency)")
        start = self.epoch(policy["starting_epoch"], f"{where}.starting_epoch")
        end = policy.get("ending_epoch")
        if end is not None:
            end = self.epoch(end, f"{where}.ending_epoch")
            if end <= start:
                raise self.fail(f"{where}.ending_epoch",
                                f"{end} must be greater than starting_epoch {start} (ending_epoch is exclusive)")
        frequency = policy.get("frequency", 1)
        if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
            raise self.fail(f"{where}.frequency", f"must be a whole number >= 1, got {shown(frequency)}")
        return Window(starting_epoch=start, ending_epoch=end, frequency=frequency)

    def epoch(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(where, f"epochs are whole numbers >= 0, got {shown(value)}")
        return value

    def prunebench_section(self, section: Any) -> dict[str, Any]:
        if section is None:
            return {}
        section = self.mapping(section, "prunebench")
        allowed = {"model", "dataset", "epochs", "lr", "round_to", *DEPLOYMENT_KEYS, *THRESHOLD_KEYS}
        extra = sorted(set(section) - allowed)
        if extra:
            raise self.fail(f"prunebench.{extra[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for key in ("model", "dataset"):
            if key in section and not isinstance(section[key], str):
                raise self.fail(f"prunebench.{key}", f"must be a name, got {shown(section[key])}")
        if "model" in section and ":" in section["model"]:  # a schedule file never makes pytest import a module
            raise self.fail("prunebench.model", "schedules name built-in models only (resnet20 ... resnet110, "
                                                "mobilenetv2, vgg16_bn); pass a user factory with --prunebench-model "
                                                "package.module:factory")
        result: dict[str, Any] = {"model": section.get("model"), "dataset": section.get("dataset")}
        if "epochs" in section:
            result["epochs"] = self.epoch(section["epochs"], "prunebench.epochs")
        if "lr" in section:
            result["lr"] = self.positive(section["lr"], "prunebench.lr")
        if "round_to" in section:
            value = section["round_to"]
            if value != AUTO_ROUND_TO and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise self.fail("prunebench.round_to", f"a whole number >= 1 (e.g. 8: kept filters in multiples "
                                                       f"of 8) or auto (measured on the device), got {shown(value)}")
            result["round_to"] = value
        result.update(self.deployment_keys(section))
        bounds = {k: self.number(section[k], f"prunebench.{k}") for k in THRESHOLD_KEYS if k in section}
        result["thresholds"] = Thresholds(**bounds)
        return result

    def deployment_keys(self, section: dict[str, Any]) -> dict[str, Any]:
        """precision, calibration and max_drop, each checked as its command-line option checks it."""
        import argparse

        from .settings import deployment_precision, max_drop, positive_int

        result: dict[str, Any] = {}
        for key, parse in (("precision", deployment_precision), ("calibration", positive_int),
                           ("max_drop", max_drop)):
            if key not in section:
                continue
            value = section[key]
            if isinstance(value, bool) or not isinstance(value, (str, int, float)) or (
                    key != "precision" and isinstance(value, str)):
                raise self.fail(f"prunebench.{key}", f"must be {'a name' if key == 'precision' else 'a number'}, "
                                                     f"got {shown(value)}")
            try:
                result[key] = parse(str(value))
            except argparse.ArgumentTypeError as exc:
                raise self.fail(f"prunebench.{key}", str(exc)) from None
        return result

    def number(self, value: Any, where: str) -> float:
        if not finite_number(value):
            raise self.fail(where, f"must be a finite number, got {shown(value)}")
        return float(value)

    def positive(self, value: Any, where: str) -> float:
        number = self.number(value, where)
        if number <= 0:
            raise self.fail(where, f"must be greater than 0, got {shown(value)}")
        return number


def _one_of(value: Any, names: Mapping[str, Any] | frozenset[str]) -> bool:
    """`value in names` for a value of any YAML type (a list or mapping is unhashable: never one of them)."""
    return isinstance(value, str) and value in names


def _name(value: Any) -> str:
    return value if isinstance(value, str) else shown(value)


def finite_number(value: Any) -> bool:
    """A finite int or float (not a bool); an int too large for a float is not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


LR_TRIAL_EPOCHS = 100


def _lr_scheduler_problem(cls: type, kwargs: dict[str, Any]) -> str | None:
    """Why torch would refuse these arguments, found before any training: build the scheduler on a throwaway
    optimizer and step it through the first LR_TRIAL_EPOCHS epochs. torch checks some arguments when it builds
    the scheduler (ConstantLR factor above 1), others only when it steps (StepLR step_size 0 divides by zero)."""
    import warnings

    import torch

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's advice on the call order of optimizer and scheduler steps
            scheduler = cls(optimizer, **kwargs)
            for epoch in range(1, LR_TRIAL_EPOCHS + 1):
                scheduler.step()
                factor = optimizer.param_groups[0]["lr"]  # of a base learning rate of 1
                if not (math.isfinite(factor) and factor >= 0):
                    return (f"multiplies the learning rate by {factor:g} at epoch {epoch}: it must stay finite and "
                            f">= 0")
    except Exception as exc:  # torch's own refusal, whatever its type, is the message
        return f"is refused by torch: {type(exc).__name__}: {' '.join(str(exc).split())}"
    return None


def _window_text(window: Window) -> str:
    return ", ".join(f"{key}: {value}" for key, value in _window_document(window).items())


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# -- writing ----------------------------------------------------------------------------------------------------

CLASS_FOR_RANKER = {"l1": "L1RankedStructureParameterPruner", "l2": "L2RankedStructureParameterPruner"}
GROUP_TYPE_FOR_KIND = {kind: group_type for group_type, kind in GROUP_TYPES.items()}


def schedule_document(schedule: Schedule) -> dict[str, Any]:
    """The Distiller-format document `parse_schedule` reads back into an equal schedule (generated cases are
    reported this way, so a user can save one as a schedule file and replay it). Entries no policy uses are
    left out: they do nothing, so the document reads back without their warnings."""
    document: dict[str, Any] = {"version": 1, "pruners": {p.name: _pruner_document(p) for p in schedule.pruners}}
    if schedule.thinning:
        document["extensions"] = {t.name: _thinning_document(t) for t in schedule.thinning}
    if schedule.lr_schedulers:
        document["lr_schedulers"] = {s.name: {"class": s.class_name, **{k: _thaw(v) for k, v in s.kwargs}}
                                     for s in schedule.lr_schedulers}
    if schedule.regularizers:
        document["regularizers"] = {r.name: _regularizer_document(r) for r in schedule.regularizers}
    document["policies"] = (
        [{"pruner": _instance(p.pruner, _policy_args(p)), **_window_document(p.window)}
         for p in schedule.pruner_policies]
        + [{"regularizer": _instance(r.name, {"keep_mask": True} if r.keep_mask else {}),
            **_window_document(r.window)} for r in schedule.regularizers]
        + [{"extension": {"instance_name": t.name}, **_window_document(t.window)} for t in schedule.thinning]
        + [{"lr_scheduler": {"instance_name": s.name}, **_window_document(s.window)} for s in schedule.lr_schedulers]
    )
    section = {key: getattr(schedule, key) for key in ("model", "dataset", "epochs", "lr", "round_to",
                                                       *DEPLOYMENT_KEYS)}
    section.update(asdict(schedule.thresholds))
    section = {key: value for key, value in section.items() if value is not None}
    if section:
        document["prunebench"] = section
    return document


# PrunerPolicy fields under their names in Distiller's policy `args`.
POLICY_ARG_NAMES = {"fold_batchnorm": "fold_batchnorm", "minibatch_frequency": "mini_batch_pruning_frequency",
                    "keep_mask": "keep_mask", **{flag: flag for flag in MASKER_FLAGS}}


def _policy_args(policy: PrunerPolicy) -> dict[str, Any]:
    return {name: getattr(policy, key) for key, name in POLICY_ARG_NAMES.items()
            if getattr(policy, key) != _LATER_POLICY_FIELDS[key]}


def _instance(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"instance_name": name, **({"args": args} if args else {})}


def _pruner_document(pruner: PrunerSpec) -> dict[str, Any]:
    weights = [f"module.{layer}.weight" for layer in pruner.layers]
    if pruner.splicing is not None:
        params = pruner.splicing
        return {"class": pruner.class_name, "low_thresh_mult": params.low_thresh_mult,
                "hi_thresh_mult": params.hi_thresh_mult, "sensitivity_multiplier": params.sensitivity_multiplier,
                "sensitivities": dict(zip(weights, params.sensitivities, strict=True))}
    if pruner.levels:
        return {"class": pruner.class_name, "levels": dict(zip(weights, pruner.levels, strict=True))}
    document: dict[str, Any] = {"class": pruner.class_name}
    if pruner.kind != "elements":
        document["group_type"] = GROUP_TYPE_FOR_KIND[pruner.kind]
    if pruner.agp:
        document.update(initial_sparsity=pruner.initial_sparsity, final_sparsity=pruner.desired_sparsity)
    elif pruner.sparsity_range:
        document["sparsity_range"] = list(pruner.sparsity_range)
    else:
        document["desired_sparsity"] = pruner.desired_sparsity
    document["weights"] = weights
    if pruner.leader:
        document["group_dependency"] = "Leader"
    return document


def _regularizer_document(regularizer: RegularizerSpec) -> dict[str, Any]:
    lasso = regularizer.class_name == "GroupLassoRegularizer"
    group_type = {group: name for name, group in LASSO_GROUPS.items() if name != "3D"}
    regims = {f"module.{parameter}": [strength, group_type[group]] if lasso else strength
              for parameter, strength, group in regularizer.terms}
    document: dict[str, Any] = {"class": regularizer.class_name, "reg_regims": regims}
    if regularizer.threshold_criteria is not None:
        document["threshold_criteria"] = regularizer.threshold_criteria
    return document


def _thinning_document(thinning: ThinningSpec) -> dict[str, Any]:
    document = {"class": thinning.class_name, "thinning_func_str": thinning.func}
    document.update({key: value for key in ("arch", "dataset") if (value := getattr(thinning, key)) is not None})
    return document


def _window_document(window: Window) -> dict[str, Any]:
    if window.epochs is not None:
        return {"epochs": list(window.epochs)}
    document: dict[str, Any] = {"starting_epoch": window.starting_epoch}
    if window.ending_epoch is not None:
        document["ending_epoch"] = window.ending_epoch
    if window.frequency != 1:
        document["frequency"] = window.frequency
    return document


def _thaw(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def schedule_yaml(schedule: Schedule) -> str:
    """`schedule_document` as YAML text, in the schedule's own order (pruners rank in that order)."""
    import yaml

    return yaml.safe_dump(schedule_document(schedule), sort_keys=False, default_flow_style=None, width=1000)
