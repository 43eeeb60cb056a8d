"""Hypothesis strategies that draw pruning configurations as the same `Schedule` objects the YAML parser makes.

A drawn configuration is a Distiller document, parsed by `parse_schedule`: every downstream stage (pruning,
thinning, retraining, records) is the one YAML schedules go through, and a failing configuration can be
printed as a schedule file.

    from hypothesis import given
    from pytest_prunebench.strategies import SEARCH_SETTINGS, pruning_schedules

    @SEARCH_SETTINGS
    @given(schedule=pruning_schedules("resnet56", prunebench={"epochs": 0}))
    def test_rapid(prunebench, schedule):
        prunebench.run(schedule)
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from .errors import StrategyError
from .schedule import (
    CLASS_FOR_RANKER,
    GENERATED_PREFIX,
    GROUP_TYPE_FOR_KIND,
    PrunerKind,
    Ranker,
    Schedule,
    parse_schedule,
)

if TYPE_CHECKING:
    pass

GroupBy = Literal["layer", "block", "stage"]
KINDS: tuple[PrunerKind, ...] = ("filters", "channels")
RANKERS: tuple[Ranker, ...] = ("l1", "l2")
# A residual block's inner width, ranked on either side: the first conv's filters or the second conv's input
# channels. Neither touches the residual stream, so every draw thins cleanly. Built-in models name their own
# (models.ARCHITECTURES: MobileNetV2's are the expansion conv's filters and the projection conv's channels); these
# are for user factories.
DEFAULT_LAYERS: Mapping[PrunerKind, tuple[str, ...]] = {"filters": ("layer*.*.conv1",),
                                                        "channels": ("layer*.*.conv2",)}


def default_layers(model: str) -> Mapping[PrunerKind, tuple[str, ...]]:
    """The layers a block's inner width is, per kind, for `model`."""
    from .models import ARCHITECTURES
    from .settings import canonical_model_name

    found = ARCHITECTURES.get(canonical_model_name(model))
    return found.inner_layers if found is not None else DEFAULT_LAYERS  # type: ignore[return-value]

# For suites: cases take seconds, so no deadline; the `prunebench` fixture is function-scoped but keeps no
# per-example state (every example is its own case, named by its configuration), so the health check about
# function-scoped fixtures does not apply; drawing a configuration is cheap, running it is not (too_slow).
# The explain phase is left out: it reruns a failing case dozens of times to annotate it, each a full case.
SEARCH_SETTINGS = settings(
    deadline=None,
    max_examples=20,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)


@dataclass(frozen=True)
class LayerGroup:
    """Convs that prune together under one pruner: per kind, the layers that pruner ranks."""

    name: str
    layers: tuple[tuple[PrunerKind, tuple[str, ...]], ...]

    def kinds(self) -> tuple[PrunerKind, ...]:
        return tuple(kind for kind, _layers in self.layers)

    def layers_for(self, kind: PrunerKind) -> tuple[str, ...]:
        return dict(self.layers)[kind]


def _group_key(layer: str, group_by: GroupBy) -> str:
    if group_by == "layer":
        return layer
    if group_by == "block":
        return layer.rsplit(".", 1)[0]
    return layer.split(".", 1)[0]


@lru_cache(maxsize=32)
def _conv_names(model_name: str) -> tuple[tuple[str, ...], frozenset[str], frozenset[str]]:
    """The model's ordinary convs (groups of their own), the convs reading the image, and its depthwise convs (a
    group of their own only when named: their filters are those of the conv feeding them)."""
    from torch import nn

    from .models import build_model
    from .pruning import input_convs, is_depthwise

    model = build_model(model_name, 10)
    convs = tuple(name for name, module in model.named_modules()
                  if isinstance(module, nn.Conv2d) and module.groups == 1)
    depthwise = frozenset(name for name, module in model.named_modules() if is_depthwise(module))
    return convs, frozenset(input_convs(model)), depthwise


def _patterns_per_kind(layers: Sequence[str] | Mapping[str, Sequence[str]] | None, kinds: Sequence[str],
                       defaults: Mapping[PrunerKind, tuple[str, ...]]) -> dict[PrunerKind, tuple[str, ...]]:
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise StrategyError(f"kinds must be a non-empty subset of {KINDS}, got {tuple(kinds)!r}")
    if layers is None:
        return {kind: tuple(defaults.get(kind, ())) for kind in kinds}  # type: ignore[misc, call-overload]
    if isinstance(layers, str):
        raise StrategyError(f"layers must be a list of name patterns, got the string {layers!r}")
    if isinstance(layers, Mapping):
        extra = sorted(set(layers) - set(KINDS))
        if extra:
            raise StrategyError(f"layers: unknown kind {extra[0]!r} (kinds are {KINDS})")
        return {kind: tuple(layers.get(kind, ())) for kind in kinds}  # type: ignore[misc]
    return {kind: tuple(layers) for kind in kinds}  # type: ignore[misc]


def layer_groups(model: str = "resnet20", layers: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                 kinds: Sequence[str] = KINDS, group_by: GroupBy = "block") -> tuple[LayerGroup, ...]:
    """The prunable groups of a model: its convs matching `layers` (fnmatch patterns, for every kind or per
    kind), grouped by layer, residual block (`layer3.2`) or stage (`layer3`), in model order.

    Groups must not couple: two groups that remove the same channels (a conv's filters and its consumer's
    input channels) add their sparsities up and can empty a layer, which fails the case with a clear error.
    """
    from .settings import canonical_model_name

    if group_by not in ("layer", "block", "stage"):
        raise StrategyError(f"group_by must be 'layer', 'block' or 'stage', got {group_by!r}")
    if group_by == "layer" and layers is None and len(set(kinds)) > 1:
        raise StrategyError("group_by='layer' with the default layers would make a block's conv1 filters and conv2 "
                         "channels two groups, but they are the same channels: use group_by='block', one kind, "
                         "or layers=... naming convs whose structures are not coupled")
    patterns = _patterns_per_kind(layers, kinds, default_layers(model))
    convs, input_convs, _depthwise = _conv_names(canonical_model_name(model))
    grouped: dict[str, dict[PrunerKind, list[str]]] = {}
    for conv in convs:
        for kind, kind_patterns in patterns.items():
            if kind == "channels" and conv in input_convs:
                continue
            if any(fnmatch.fnmatchcase(conv, pattern) for pattern in kind_patterns):
                grouped.setdefault(_group_key(conv, group_by), {}).setdefault(kind, []).append(conv)
    if not grouped:
        raise StrategyError(f"no conv of {model} matches layers={patterns!r} (list them with `prunebench layers "
                         f"{model}`)")
    return tuple(LayerGroup(name, tuple((kind, tuple(found)) for kind, found in by_kind.items()))
                 for name, by_kind in grouped.items())


def group_layers(model: str, name: str, kind: PrunerKind) -> tuple[str, ...]:
    """The convs a group named `name` prunes by `kind`: a conv (`layer1.0.conv1`), a residual block
    (`layer1.0`) or a stage (`layer1`), with a block's or stage's default layers (`default_layers(model)`)."""
    from .settings import canonical_model_name

    convs, input_convs, depthwise = _conv_names(canonical_model_name(model))
    if name in depthwise:
        if kind == "channels":
            raise StrategyError(f"{name} is a depthwise conv: its channels are its filters (use filters)")
        return (name,)
    if name in convs:
        if kind == "channels" and name in input_convs:
            raise StrategyError(f"{name} reads the input image: its channels cannot be pruned (use filters)")
        return (name,)
    for group_by in ("block", "stage"):
        for group in layer_groups(model, None, (kind,), group_by):
            if group.name == name:
                return group.layers_for(kind)
    blocks = [g.name for g in layer_groups(model, None, ("filters",), "block")]
    raise StrategyError(f"{model} has no conv, residual block or stage named {name!r} (blocks: {blocks[0]} ... "
                     f"{blocks[-1]}; stages: {', '.join(sorted({b.split('.')[0] for b in blocks}))}; list convs with "
                     f"`prunebench layers {model}`)")


def sparsities(max_sparsity: float = 0.9, step: float = 0.02) -> st.SearchStrategy[float]:
    """Multiples of `step` in (0, max_sparsity]: the seed's 0.02-wide bins. Shrinks toward `step`."""
    if not 0 < step <= max_sparsity < 1:
        raise StrategyError(f"need 0 < step <= max_sparsity < 1, got step={step}, max_sparsity={max_sparsity}")
    levels = int(round(max_sparsity / step, 9))
    return st.integers(1, levels).map(lambda level: round(level * step, 10))


@st.composite
def _documents(draw: st.DrawFn, model: str, groups: tuple[LayerGroup, ...], rankers: tuple[Ranker, ...],
               sparsity: st.SearchStrategy[float], min_groups: int, max_groups: int | None,
               prunebench: Mapping[str, Any]) -> dict[str, Any]:
    active = draw(st.sets(st.sampled_from([g.name for g in groups]), min_size=min_groups, max_size=max_groups))
    pruners: dict[str, Any] = {}
    for group in groups:  # every group is a pruner, at 0 when not drawn: each record has every group's sparsity
        on = group.name in active
        kind = draw(st.sampled_from(group.kinds())) if on else group.kinds()[0]
        ranker = draw(st.sampled_from(rankers)) if on else rankers[0]
        pruners[group.name] = pruner_entry(kind, ranker, draw(sparsity) if on else 0.0, group.layers_for(kind))
    return distiller_document(model, pruners, prunebench)


def pruner_entry(kind: PrunerKind, ranker: Ranker, sparsity: float, layers: Sequence[str]) -> dict[str, Any]:
    """One Distiller pruner that ranks `layers` by `kind` (filters/channels) with `ranker`'s norm."""
    return {"class": CLASS_FOR_RANKER[ranker], "group_type": GROUP_TYPE_FOR_KIND[kind],
            "desired_sparsity": sparsity, "weights": [f"module.{layer}.weight" for layer in layers]}


def distiller_document(model: str, pruners: Mapping[str, Any], prunebench: Mapping[str, Any]) -> dict[str, Any]:
    """A one-shot schedule: every pruner fires at epoch 0 (its final target, then thinning and retraining)."""
    return {
        "version": 1,
        "pruners": dict(pruners),
        "policies": [{"pruner": {"instance_name": name}, "epochs": [0]} for name in pruners],
        "prunebench": {"model": model, **prunebench},
    }


def pruning_documents(model: str = "resnet20", *, layers: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                      kinds: Sequence[str] = KINDS, rankers: Sequence[str] = RANKERS, group_by: GroupBy = "block",
                      max_sparsity: float = 0.9, step: float = 0.02, min_groups: int = 1,
                      max_groups: int | None = None,
                      prunebench: Mapping[str, Any] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Distiller documents: a subset of the model's layer groups (min_groups..max_groups of them), each with a
    drawn kind, ranker and sparsity; the other groups at sparsity 0. `prunebench` is the schedule's
    `prunebench:` section (epochs, lr, thresholds such as min_top1 or max_latency_ms)."""
    bad_rankers = sorted(set(rankers) - set(RANKERS))
    if bad_rankers or not rankers:
        raise StrategyError(f"rankers must be a non-empty subset of {RANKERS}, got {tuple(rankers)!r}")
    sparsity = sparsities(max_sparsity, step)
    section = dict(prunebench or {})
    if "model" in section:
        raise StrategyError("prunebench: give the model as the strategy's first argument, not in the section")

    def build() -> st.SearchStrategy[dict[str, Any]]:
        groups = layer_groups(model, layers, kinds, group_by)
        top = len(groups) if max_groups is None else max_groups
        if not 1 <= min_groups <= top <= len(groups):
            raise StrategyError(f"need 1 <= min_groups <= max_groups <= {len(groups)} (the groups of {model}), "
                             f"got min_groups={min_groups}, max_groups={max_groups}")
        return _documents(model, groups, tuple(rankers), sparsity, min_groups, top, section)  # type: ignore[arg-type]

    return st.deferred(build)  # builds the model (torch) at the first draw, not when a suite is imported


def single_group_schedule(model: str, group: str, sparsity: float, kind: PrunerKind = "filters",
                          ranker: Ranker = "l1", prunebench: Mapping[str, Any] | None = None) -> Schedule:
    """One group (a conv, block or stage, see `group_layers`) pruned alone: a point of a sensitivity analysis."""
    if not 0 < sparsity < 1:
        raise StrategyError(f"sparsity must be in (0, 1), got {sparsity}")
    pruner = pruner_entry(kind, ranker, sparsity, group_layers(model, group, kind))
    return to_schedule(distiller_document(model, {group: pruner}, dict(prunebench or {})))


def to_schedule(document: Mapping[str, Any]) -> Schedule:
    """Parse a drawn document; its name is a stable hash of what it does (the same in every run)."""
    draft = parse_schedule(document, f"{GENERATED_PREFIX}>", name="draft")
    name = f"cfg-{draft.semantic_hash()[:12]}"
    return replace(draft, name=name, path=f"{GENERATED_PREFIX} {name}>")


def pruning_schedules(model: str = "resnet20", **options: Any) -> st.SearchStrategy[Schedule]:
    """`pruning_documents(model, **options)` parsed into schedules: see there for the options."""
    return pruning_documents(model, **options).map(to_schedule)
