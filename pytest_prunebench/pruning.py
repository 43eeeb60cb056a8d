"""Pruning with Distiller's semantics, thinned physically through Torch-Pruning's dependency graph.

A pruner firing ranks structures and masks them (zeroes their weights); thinning then removes every masked
structure with everything coupled to it (BN, the consuming conv's channels, a residual stream). Between the
two, masks are re-applied after every optimizer step, as Distiller does. Fine-grained (element) masks and masks
on the fc's input features (Distiller's `Rows`) are never thinned: they stay zeros, kept through retraining and
exported as zeros.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn

from .errors import PrunebenchError, ScheduleError
from .lock import cpu_work
from .models import INPUT_SHAPE
from .schedule import THINNED_KINDS, PrunerKind, PrunerSpec, Schedule

# The dimensions a structure's norm reduces over: a conv's filters / input channels, a Linear's input features.
STRUCTURE_DIMS: dict[PrunerKind, tuple[int, ...]] = {"filters": (1, 2, 3), "channels": (0, 2, 3), "rows": (0,)}


@dataclass(frozen=True)
class Mask:
    """Structures of one conv chosen for removal: output channels (filters) or input channels."""

    pruner: str
    layer: str
    kind: PrunerKind
    indices: tuple[int, ...]
    total: int
    scores: tuple[float, ...] = ()  # every structure's importance when ranked (the report's filters.png)
    zeros: Any = field(default=None, compare=False, repr=False)  # elements: a bool tensor shaped like the weight

    @property
    def thinned(self) -> bool:
        """Removed physically at thinning; otherwise a mask for the rest of the timeline."""
        return self.kind in THINNED_KINDS

    @property
    def count(self) -> int:
        """How many structures (or elements) this mask zeroes."""
        return int(self.zeros.sum()) if self.zeros is not None else len(self.indices)


def pruned_count(sparsity: float, total: int, round_to: int = 1) -> int:
    """Distiller's count rule: floor(sparsity * N) structures, never all N. With `round_to` R, the structures kept
    are rounded up to a multiple of R (Torch-Pruning's round_to: SIMD-friendly widths), so fewer may go."""
    count = min(math.floor(sparsity * total), total - 1)
    if round_to > 1:
        kept = min(total, math.ceil((total - count) / round_to) * round_to)
        count = total - kept
    return count


# The module types each kind of pruner applies to.
LAYER_TYPES: dict[PrunerKind, tuple[type[nn.Module], ...]] = {
    "filters": (nn.Conv2d,), "channels": (nn.Conv2d,), "rows": (nn.Linear,), "elements": (nn.Conv2d, nn.Linear)}


KIND_NAMES: dict[PrunerKind, str] = {"filters": "filter pruning", "channels": "channel pruning",
                                     "rows": "Rows (fc input) pruning", "elements": "fine-grained pruning"}


def check_layers(schedule: Schedule, model: nn.Module, model_name: str) -> None:
    """Every layer a pruner names must be a layer of this model of the right type; fc outputs (the classes) are
    never pruned."""
    modules = dict(model.named_modules())
    image_readers = functools.cache(lambda: input_convs(model))
    for pruner in schedule.pruners:
        where = f"pruners.{pruner.name}.weights"
        for layer in pruner.layers:
            module = modules.get(layer)
            if module is None:
                raise ScheduleError(schedule.path, where, f"{model_name} has no layer {layer!r} "
                                                          f"(list them with `prunebench layers {model_name}`)")
            if not isinstance(module, LAYER_TYPES[pruner.kind]):
                allowed = " or ".join(t.__name__ for t in LAYER_TYPES[pruner.kind])
                raise ScheduleError(schedule.path, where, f"{layer!r} is a {type(module).__name__}; "
                                                          f"{KIND_NAMES[pruner.kind]} applies to {allowed} layers "
                                                          f"only")
            _check_grouped(schedule, where, layer, module, pruner.kind)
            if pruner.ranker in ("apoz", "mean") and not isinstance(modules.get(activation_relu(layer)), nn.ReLU):
                raise ScheduleError(schedule.path, where, f"{layer!r}: {pruner.class_name} ranks filters by the "
                                                          f"output of the ReLU after the conv, which Distiller "
                                                          f"names {activation_relu(layer)!r}; {model_name} has no "
                                                          f"such ReLU module")
            if pruner.kind == "channels" and layer in image_readers():
                raise ScheduleError(schedule.path, where, f"{layer!r} reads the input image: its channels (the "
                                                          f"colour planes) cannot be pruned; prune its filters")
        if pruner.leader:
            sizes = {_structure_count(modules[layer], pruner.kind) for layer in pruner.layers}
            if len(sizes) > 1:
                raise ScheduleError(schedule.path, where, f"a Leader group needs layers with the same number of "
                                                          f"{pruner.kind}, got {sorted(sizes)}")
    _check_regularized(schedule, model, model_name)


def is_depthwise(module: nn.Module) -> bool:
    """A depthwise conv (one filter per input channel, MobileNetV2's 3x3): its filters are its channels, and
    Torch-Pruning removes them together with the filters of the conv that feeds it."""
    return (isinstance(module, nn.Conv2d) and module.groups > 1
            and module.groups == module.in_channels == module.out_channels)


def _check_grouped(schedule: Schedule, where: str, layer: str, module: nn.Module, kind: PrunerKind) -> None:
    """Depthwise convs prune by filters (their input channels go with them); other grouped convs not at all."""
    if getattr(module, "groups", 1) == 1 or kind not in THINNED_KINDS:
        return
    if not is_depthwise(module):
        raise ScheduleError(schedule.path, where, f"{layer!r} is a grouped convolution ({module.groups} groups), "
                                                  f"not supported; depthwise convolutions are")
    if kind == "channels":
        raise ScheduleError(schedule.path, where, f"{layer!r} is a depthwise convolution: each filter reads one "
                                                  f"channel, so its channels are its filters; prune its filters (or "
                                                  f"the filters of the conv that feeds it)")


def _check_regularized(schedule: Schedule, model: nn.Module, model_name: str) -> None:
    """Every regularized parameter is one of the model's; group lasso needs a conv weight."""
    parameters = dict(model.named_parameters())
    for regularizer in schedule.regularizers:
        for name, _strength, group in regularizer.terms:
            where = f"regularizers.{regularizer.name}.reg_regims.{name}"
            parameter = parameters.get(name)
            if parameter is None:
                raise ScheduleError(schedule.path, where, f"{model_name} has no parameter {name!r} (e.g. "
                                                          f"layer1.0.bn2.weight, layer1.0.conv1.weight)")
            if group != "elements" and parameter.dim() != 4:
                raise ScheduleError(schedule.path, where, f"group lasso over {group} needs a conv weight, {name!r} "
                                                          f"has shape {tuple(parameter.shape)}")


def input_convs(model: nn.Module) -> set[str]:
    """Convs that read the model's input: their input channels are the image's, never prunable."""
    from .models import evaluating

    image = torch.zeros(1, *INPUT_SHAPE)
    readers: set[str] = set()
    handles = [module.register_forward_pre_hook(lambda _m, args, name=name: readers.add(name) if args[0] is image
                                                else None)
               for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    try:
        with evaluating(model), torch.no_grad():
            model(image)
    finally:
        for handle in handles:
            handle.remove()
    return readers


def _structure_count(layer: nn.Module, kind: PrunerKind) -> int:
    weight = cast(torch.Tensor, layer.weight)
    return weight.numel() if kind == "elements" else int(weight.shape[0 if kind == "filters" else 1])


def structure_importance(weight: torch.Tensor, kind: PrunerKind, ranker: str) -> torch.Tensor:
    """Length-normalised L1 or L2 norm per structure (Distiller's ranking)."""
    dims = STRUCTURE_DIMS[kind]
    if ranker == "l1":
        return weight.detach().abs().mean(dim=dims)
    return weight.detach().pow(2).mean(dim=dims).sqrt()


def lowest(importance: torch.Tensor, count: int) -> tuple[int, ...]:
    """Indices of the `count` least important structures; ties go to the lower index."""
    order = torch.argsort(importance, stable=True)
    return tuple(sorted(int(i) for i in order[:count]))


@dataclass(frozen=True)
class RankInputs:
    """What a pruner ranks on: its layers' weights (BN-folded under fold_batchnorm) and, for activation rankers, a
    few training images."""

    weights: dict[str, torch.Tensor]
    images: torch.Tensor | None = None


# Per layer of a pruner, every structure's importance (the lowest go first).
Scorer = Callable[[nn.Module, tuple[str, ...], PrunerKind, RankInputs], dict[str, torch.Tensor]]
ACTIVATION_IMAGES = 256  # "a few training batches": two of retraining's 128-image minibatches


def _norm_scorer(ranker: str) -> Scorer:
    def scores(_model: nn.Module, layers: tuple[str, ...], kind: PrunerKind, inputs: RankInputs
               ) -> dict[str, torch.Tensor]:
        return {layer: structure_importance(inputs.weights[layer], kind, ranker) for layer in layers}
    return scores


def _random_scores(_model: nn.Module, layers: tuple[str, ...], kind: PrunerKind, inputs: RankInputs
                   ) -> dict[str, torch.Tensor]:
    """RandomRankedFilterPruner's random order, seeded by the layer's name so that a case replays exactly."""
    return {layer: torch.rand(inputs.weights[layer].shape[0 if kind == "filters" else 1],
                              generator=torch.Generator().manual_seed(zlib.crc32(layer.encode()))) for layer in layers}


def _activation_scorer(statistic: str) -> Scorer:
    def scores(model: nn.Module, layers: tuple[str, ...], _kind: PrunerKind, inputs: RankInputs
               ) -> dict[str, torch.Tensor]:
        if inputs.images is None:
            raise PrunebenchError(f"activation ranking ({statistic}) needs training images to collect statistics on")
        apoz, mean = activation_statistics(model, layers, inputs.images)
        # APoZ: the filters whose ReLU output is most often zero go first (Network Trimming). Mean: the least active.
        return {layer: -apoz[layer] if statistic == "apoz" else mean[layer] for layer in layers}
    return scores


SCORERS: dict[str, Scorer] = {"l1": _norm_scorer("l1"), "l2": _norm_scorer("l2"), "random": _random_scores,
                              "apoz": _activation_scorer("apoz"), "mean": _activation_scorer("mean")}


def activation_relu(layer: str) -> str:
    """Distiller reads a conv's activation statistics on the ReLU after it, named like the conv
    (layer1.0.conv1 -> layer1.0.relu1)."""
    return layer.replace(".conv", ".relu")


@torch.no_grad()
def activation_statistics(model: nn.Module, layers: tuple[str, ...], images: torch.Tensor
                          ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per conv, its ReLU's per-channel APoZ (share of zero outputs) and mean output over `images`, in eval mode."""
    from .models import evaluating

    modules = dict(model.named_modules())
    totals: dict[str, list[Any]] = {}  # per conv: zero outputs and output sums per channel, values per channel

    def record(layer: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            per_channel = output.transpose(0, 1).flatten(1)  # channels x (images * positions)
            entry = totals.setdefault(layer, [0.0, 0.0, 0])
            entry[0] = entry[0] + (per_channel == 0).sum(dim=1).double()
            entry[1] = entry[1] + per_channel.sum(dim=1).double()
            entry[2] += per_channel.shape[1]
        return hook

    handles = [modules[activation_relu(layer)].register_forward_hook(record(layer)) for layer in layers]
    try:
        with evaluating(model), cpu_work():
            for start in range(0, len(images), 128):
                model(images[start:start + 128])
    finally:
        for handle in handles:
            handle.remove()
    apoz = {layer: (zeros / count).float() for layer, (zeros, _sums, count) in totals.items()}
    mean = {layer: (sums / count).float() for layer, (_zeros, sums, count) in totals.items()}
    return apoz, mean


def probe_images(train_x: torch.Tensor, seed: int, count: int = ACTIVATION_IMAGES) -> torch.Tensor:
    """`count` training images drawn with the case's seed: what activation rankers collect their statistics on
    (ACTIVATION_IMAGES), and what BatchNorm statistics are re-estimated on after pruning."""
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed))
    return train_x[order[:count]]


def rank_pruner(model: nn.Module, pruner: PrunerSpec, sparsity: float | None = None,
                round_to: int | None = None, images: torch.Tensor | None = None,
                fold_batchnorm: bool = False) -> list[Mask]:
    """The masks one pruner chooses on the model's current weights at `sparsity` (default: its final target),
    kept counts rounded up to `round_to` for the structures that are thinned. Activation rankers collect their
    statistics on `images`; `fold_batchnorm` ranks each conv's weights scaled by the BN after it."""
    sparsity = pruner.desired_sparsity if sparsity is None else sparsity
    weights = ranked_weights(model, pruner.layers, fold_batchnorm)
    if pruner.kind == "elements":
        return [_element_mask(weights[layer], pruner, layer, pruner.level(layer, sparsity)) for layer in pruner.layers]
    modules = dict(model.named_modules())
    round_to = (round_to or 1) if pruner.kind in THINNED_KINDS else 1
    importance = SCORERS[pruner.ranker](model, pruner.layers, pruner.kind, RankInputs(weights, images))
    chosen: dict[str, tuple[int, ...]] = {}
    for group in _ranked_together(model, pruner):
        # Coupled layers lose the same structures: a residual add cannot take two different channel sets.
        leader = group[0]
        scores = importance[leader] if pruner.leader else torch.stack([importance[g] for g in group]).mean(dim=0)
        indices = lowest(scores, pruned_count(sparsity, _structure_count(modules[leader], pruner.kind), round_to))
        chosen.update(dict.fromkeys(group, indices))
    return [Mask(pruner.name, layer, pruner.kind, chosen[layer], _structure_count(modules[layer], pruner.kind),
                 tuple(importance[layer].tolist())) for layer in pruner.layers]


def _ranked_together(model: nn.Module, pruner: PrunerSpec) -> list[tuple[str, ...]]:
    """The pruner's layers in groups that share one choice: all of them under `Leader`; otherwise the layers whose
    structures Torch-Pruning's dependency graph couples (the convs feeding one residual stream, or reading it),
    each group led by its first listed layer."""
    if pruner.leader:
        return [pruner.layers]
    if len(pruner.layers) == 1 or pruner.kind not in THINNED_KINDS:
        return [(layer,) for layer in pruner.layers]
    with cpu_work():
        graph = _dependency_graph(model)
    coupled = coupled_layers(model, graph, pruner.layers, pruner.kind)
    groups: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for layer in pruner.layers:
        if layer not in seen:
            group = tuple(other for other in pruner.layers if other in coupled[layer] and other not in seen)
            seen.update(group)
            groups.append(group)
    return groups


def coupled_layers(model: nn.Module, graph: Any, layers: tuple[str, ...], kind: PrunerKind) -> dict[str, set[str]]:
    """For each layer, the convs among `layers` (itself included) whose `kind` Torch-Pruning removes with its own."""
    same = {"filters": "prune_out_channels", "channels": "prune_in_channels"}[kind]
    modules = dict(model.named_modules())
    names = {module: name for name, module in modules.items()}
    coupled = {}
    for layer in layers:
        group = _pruning_group(graph, modules[layer], kind, [0])
        members = {names[dep.target.module] for dep, _idxs in group
                   if getattr(dep.handler, "__name__", "") == same and dep.target.module in names}
        coupled[layer] = (members & set(layers)) | {layer}
    return coupled


def ranked_weights(model: nn.Module, layers: tuple[str, ...], fold_batchnorm: bool) -> dict[str, torch.Tensor]:
    """Each layer's weight as ranked; under fold_batchnorm a conv's filters scaled by gamma / sqrt(running_var + eps)
    of the BN that reads its output, as inference folds them (Distiller's PruningPolicy._fold_batchnorm; layers
    without such a BN, like the fc, rank their own weights)."""
    modules = dict(model.named_modules())
    weights = {layer: modules[layer].weight.detach() for layer in layers}
    if fold_batchnorm:
        for layer, bn in conv_batchnorms(model).items():
            if layer in weights:
                variance = cast(torch.Tensor, bn.running_var)  # always tracked in these models
                scale = bn.weight.detach() / torch.sqrt(variance + bn.eps)
                weights[layer] = weights[layer] * scale.view(-1, 1, 1, 1)
    return weights


def conv_batchnorms(model: nn.Module) -> dict[str, nn.BatchNorm2d]:
    """Each conv whose output a BatchNorm2d reads directly, with that BN (one forward pass, eval mode)."""
    from .models import evaluating

    produced: dict[torch.Tensor, str] = {}
    pairs: dict[str, nn.BatchNorm2d] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(
                lambda _m, _args, output, name=name: produced.__setitem__(output, name)))
        elif isinstance(module, nn.BatchNorm2d):
            handles.append(module.register_forward_pre_hook(
                lambda m, args: pairs.__setitem__(produced[args[0]], m) if args[0] in produced else None))
    try:
        with evaluating(model), torch.no_grad(), cpu_work():
            model(torch.zeros(1, *INPUT_SHAPE))
    finally:
        for handle in handles:
            handle.remove()
    return pairs


def _element_mask(weight: torch.Tensor, pruner: PrunerSpec, layer: str, sparsity: float) -> Mask:
    """Distiller's level pruning (SparsityLevelParameterPruner.prune_level): the k = int(sparsity * numel) smallest
    magnitudes set the threshold, and every element at or below it is masked."""
    magnitude = weight.abs()
    count = int(sparsity * weight.numel())
    if count == 0:
        zeros = torch.zeros_like(weight, dtype=torch.bool)
    else:
        threshold = magnitude.flatten().kthvalue(count).values
        zeros = magnitude <= threshold
    return Mask(pruner.name, layer, "elements", (), weight.numel(), zeros=zeros)


def _zero_filters(weight: torch.Tensor, mask: Mask) -> None:
    weight[torch.tensor(mask.indices, dtype=torch.long)] = 0


def _zero_inputs(weight: torch.Tensor, mask: Mask) -> None:
    weight[:, torch.tensor(mask.indices, dtype=torch.long)] = 0


def _zero_elements(weight: torch.Tensor, mask: Mask) -> None:
    weight[mask.zeros] = 0


ZEROERS: dict[PrunerKind, Callable[[torch.Tensor, Mask], None]] = {
    "filters": _zero_filters, "channels": _zero_inputs, "rows": _zero_inputs, "elements": _zero_elements}


def apply_masks(model: nn.Module, masks: list[Mask]) -> None:
    """Zero the masked structures (after every optimizer step, so training cannot revive them)."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for mask in masks:
            layer = modules[mask.layer]
            if not mask.count or _structure_count(layer, mask.kind) != mask.total:
                continue  # already thinned: the structures are gone, not zero
            ZEROERS[mask.kind](layer.weight, mask)


def follow_thinning(model: nn.Module, masks: list[Mask]) -> list[Mask]:
    """Masks that outlive a thinning (elements, fc inputs), on the thinned shapes. Thinning applied them first,
    so the zeros that remain in each kept slice are exactly their kept part."""
    modules = dict(model.named_modules())
    followed = []
    for mask in masks:
        layer = modules[mask.layer]
        if _structure_count(layer, mask.kind) == mask.total:
            followed.append(mask)
        elif mask.kind == "elements":
            zeros = layer.weight.detach() == 0
            followed.append(Mask(mask.pruner, mask.layer, mask.kind, (), zeros.numel(), zeros=zeros))
        else:
            indices = tuple(zero_structures(layer.weight, mask.kind))
            followed.append(Mask(mask.pruner, mask.layer, mask.kind, indices, _structure_count(layer, mask.kind)))
    return followed


ThinningStep = tuple[str, PrunerKind, tuple[int, ...]]  # (conv, filters/channels, indices removed)
THINNING_HANDLERS = {"filters": "prune_conv_out_channels", "channels": "prune_conv_in_channels"}


def thin(model: nn.Module, masks: list[Mask], input_shape: tuple[int, ...] = INPUT_SHAPE) -> list[ThinningStep]:
    """Remove every masked structure physically, with the layers coupled to it; returns the removals in order
    (`replay_thinning` applies them to a twin, e.g. one holding the optimizer's momentum).

    Masks are found again as all-zero slices of the current weights: removing one conv's filters also removes
    the next conv's input channels, so indices chosen before thinning no longer line up, but zeros do.
    """
    masks = [mask for mask in masks if mask.thinned]
    if not masks:
        return []
    with cpu_work():
        return _thin(model, masks, input_shape)


def _thin(model: nn.Module, masks: list[Mask], input_shape: tuple[int, ...]) -> list[ThinningStep]:
    apply_masks(model, masks)
    graph = _dependency_graph(model, input_shape)
    modules = dict(model.named_modules())
    steps: list[ThinningStep] = []
    for mask in masks:
        conv = modules[mask.layer]
        indices = zero_structures(conv.weight, mask.kind)
        if not indices:
            continue
        group = _pruning_group(graph, conv, mask.kind, indices)
        if not graph.check_pruning_group(group):
            raise PrunebenchError(f"pruner {mask.pruner}: removing {len(indices)} {mask.kind} of {mask.layer!r} "
                                  f"would leave a layer empty; lower its desired_sparsity")
        group.prune()
        steps.append((mask.layer, mask.kind, tuple(indices)))
    return steps


def replay_thinning(model: nn.Module, steps: list[ThinningStep], input_shape: tuple[int, ...] = INPUT_SHAPE) -> None:
    """The removals `thin` made, applied to a model of the same architecture and shapes."""
    if not steps:
        return
    with cpu_work():
        graph = _dependency_graph(model, input_shape)
        modules = dict(model.named_modules())
        for layer, kind, indices in steps:
            _pruning_group(graph, modules[layer], kind, list(indices)).prune()


def _pruning_group(graph: Any, conv: nn.Module, kind: PrunerKind, indices: list[int]) -> Any:
    import torch_pruning as tp

    return graph.get_pruning_group(conv, getattr(tp, THINNING_HANDLERS[kind]), idxs=indices)


def _dependency_graph(model: nn.Module, input_shape: tuple[int, ...] = INPUT_SHAPE) -> Any:
    import torch_pruning as tp

    was_training = model.training
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, *input_shape))
    model.train(was_training)  # the graph build leaves the model in eval mode
    return graph


def zero_structures(weight: torch.Tensor, kind: PrunerKind) -> list[int]:
    dims = STRUCTURE_DIMS[kind]
    return [int(i) for i in torch.nonzero(weight.detach().abs().amax(dim=dims) == 0).flatten()]


def structures_document(masks: list[Mask], rankers: dict[str, str]) -> dict[str, dict[str, object]]:
    """Per pruned conv, its last ranking: every structure's score and the ones removed (JSON-ready)."""
    layers: dict[str, dict[str, object]] = {}
    for mask in masks:  # in firing order: a later ranking of a layer replaces an earlier one
        if mask.kind == "elements":  # one score per weight would swamp the file: the count says enough
            layers[f"{mask.layer}#elements"] = {"pruner": mask.pruner, "kind": mask.kind, "ranker": "magnitude",
                                                "scores": [], "removed": [], "removed_count": mask.count,
                                                "total": mask.total}
            continue
        layers[mask.layer] = {"pruner": mask.pruner, "kind": mask.kind, "ranker": rankers.get(mask.pruner, ""),
                              "scores": list(mask.scores), "removed": list(mask.indices), "total": mask.total}
    return layers


@dataclass(frozen=True)
class FilterGroup:
    """Convs whose filters are removed together (Torch-Pruning's dependency group), and the convs whose input
    channels go with them. Pruning one member's filters prunes every member's."""

    members: tuple[str, ...]
    consumers: tuple[str, ...]


def filter_groups(model: nn.Module, input_shape: tuple[int, ...] = INPUT_SHAPE) -> list[FilterGroup]:
    import torch_pruning as tp

    with cpu_work():
        graph = _dependency_graph(model, input_shape)
    order = {name: index for index, (name, _m) in enumerate(model.named_modules())}
    names = {module: name for name, module in model.named_modules()}
    groups, seen = [], set()
    for name, conv in model.named_modules():
        # A depthwise conv is a member of the group of the conv that feeds it (its filters follow that conv's).
        if not isinstance(conv, nn.Conv2d) or conv.groups != 1 or name in seen:
            continue
        members: set[str] = set()
        consumers: set[str] = set()
        for dep, _idxs in graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=[0]):
            target = dep.target.module
            if isinstance(target, nn.Conv2d):
                handler = getattr(dep.handler, "__name__", "")
                (members if handler == "prune_out_channels" else consumers).add(names[target])
        seen |= members
        groups.append(FilterGroup(tuple(sorted(members, key=order.__getitem__)),
                                  tuple(sorted(consumers, key=order.__getitem__))))
    return groups


def prune_to_final(model: nn.Module, schedule: Schedule, images: torch.Tensor | None = None) -> list[Mask]:
    """Every pruner straight to its final target, then thinning: the seed's rapid (0-epoch) pruning. Masks that are
    not thinned (elements, fc inputs) are applied and stay zeros. Activation rankers look at `images`."""
    def ranked(thinned: bool) -> list[Mask]:
        return [mask for pruner in schedule.pruners if (pruner.kind in THINNED_KINDS) == thinned
                for mask in final_masks(model, schedule, pruner, images)]

    # Structures first, then the masks on the thinned shapes: Distiller's schedules thin before their fine-grained
    # pruners finish, and report those masks' sparsity on the thinned tensors.
    structures = ranked(thinned=True)
    thin(model, structures)
    masks = ranked(thinned=False)
    apply_masks(model, masks)
    return structures + masks


def final_masks(model: nn.Module, schedule: Schedule, pruner: PrunerSpec, images: torch.Tensor | None = None
                ) -> list[Mask]:
    """One pruner's masks at its final target on the current weights; a SplicingPruner, which has no target, computes
    its masks once at its last epoch's sensitivity (splicing.splice_to_final)."""
    if pruner.splicing is not None:
        from .splicing import splice_to_final  # imported here: splicing imports Mask from this module

        return splice_to_final(model, schedule, pruner)
    return rank_pruner(model, pruner, round_to=schedule.rounding(), images=images,
                       fold_batchnorm=schedule.folds_batchnorm(pruner.name))


def layer_sizes(model: nn.Module, schedule: Schedule) -> dict[tuple[str, str], int]:
    """(layer, kind) -> how many structures (or elements) each pruner's layer has now: the dense reference for
    `reached_sparsity`."""
    modules = dict(model.named_modules())
    return {(layer, p.kind): _structure_count(modules[layer], p.kind) for p in schedule.pruners for layer in p.layers}


def reached_sparsity(model: nn.Module, schedule: Schedule, dense: dict[tuple[str, str], int]) -> dict[str, float]:
    """Per pruner, the share of its layers' filters / channels gone (thinned away or still zero) against the dense
    sizes; for masks that are never thinned (elements, fc input features), the share zero in the layers as they are
    now, as Distiller reports them."""
    modules = dict(model.named_modules())
    reached = {}
    for pruner in schedule.pruners:
        gone = total = 0
        for layer in pruner.layers:
            weight = modules[layer].weight
            if pruner.kind == "elements":
                gone += int((weight == 0).sum())
                total += weight.numel()
            elif pruner.kind not in THINNED_KINDS:
                gone += len(zero_structures(weight, pruner.kind))
                total += _structure_count(modules[layer], pruner.kind)
            else:
                size = dense[(layer, pruner.kind)]
                gone += size - _structure_count(modules[layer], pruner.kind) + len(zero_structures(weight,
                                                                                                   pruner.kind))
                total += size
        reached[pruner.name] = gone / total if total else 0.0
    return reached
