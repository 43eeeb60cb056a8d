"""Structured pruning with Distiller's semantics, thinned physically through Torch-Pruning's dependency graph.

A pruner firing ranks structures and masks them (zeroes their weights); thinning then removes every masked
structure with everything coupled to it (BN, the consuming conv's channels, a residual stream). Between the
two, masks are re-applied after every optimizer step, as Distiller does.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import nn

from .errors import PrunebenchError, ScheduleError
from .lock import cpu_work
from .models import INPUT_SHAPE
from .schedule import PrunerKind, PrunerSpec, Schedule

STRUCTURE_DIMS: dict[PrunerKind, tuple[int, ...]] = {"filters": (1, 2, 3), "channels": (0, 2, 3)}


@dataclass(frozen=True)
class Mask:
    """Structures of one conv chosen for removal: output channels (filters) or input channels."""

    pruner: str
    layer: str
    kind: PrunerKind
    indices: tuple[int, ...]
    total: int
    scores: tuple[float, ...] = ()  # every structure's importance when ranked (the report's filters.png)


def pruned_count(sparsity: float, total: int, round_to: int = 1) -> int:
    """Distiller's count rule: floor(sparsity * N) structures, never all N. With `round_to` R, the structures kept
    are rounded up to a multiple of R (Torch-Pruning's round_to: SIMD-friendly widths), so fewer may go."""
    count = min(math.floor(sparsity * total), total - 1)
    if round_to > 1:
        kept = min(total, math.ceil((total - count) / round_to) * round_to)
        count = total - kept
    return count


def check_layers(schedule: Schedule, model: nn.Module, model_name: str) -> None:
    """Every layer a pruner names must be a conv of this model; fc outputs (the classes) are never pruned."""
    modules = dict(model.named_modules())
    image_readers = functools.cache(lambda: input_convs(model))
    for pruner in schedule.pruners:
        where = f"pruners.{pruner.name}.weights"
        for layer in pruner.layers:
            module = modules.get(layer)
            if module is None:
                raise ScheduleError(schedule.path, where, f"{model_name} has no layer {layer!r} "
                                                          f"(list them with `prunebench layers {model_name}`)")
            if not isinstance(module, nn.Conv2d):
                raise ScheduleError(schedule.path, where, f"{layer!r} is a {type(module).__name__}; structured "
                                                          f"pruning applies to Conv2d layers only")
            if module.groups != 1:
                raise ScheduleError(schedule.path, where, f"{layer!r} is a grouped convolution, not supported")
            if pruner.kind == "channels" and layer in image_readers():
                raise ScheduleError(schedule.path, where, f"{layer!r} reads the input image: its channels (the "
                                                          f"colour planes) cannot be pruned; prune its filters")
        if pruner.leader:
            sizes = {_structure_count(modules[layer], pruner.kind) for layer in pruner.layers}
            if len(sizes) > 1:
                raise ScheduleError(schedule.path, where, f"a Leader group needs layers with the same number of "
                                                          f"{pruner.kind}, got {sorted(sizes)}")


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


def _structure_count(conv: nn.Conv2d, kind: PrunerKind) -> int:
    return conv.out_channels if kind == "filters" else conv.in_channels


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


def rank_pruner(model: nn.Module, pruner: PrunerSpec, sparsity: float | None = None,
                round_to: int | None = None) -> list[Mask]:
    """The masks one pruner chooses on the model's current weights (kept counts rounded up to `round_to`)."""
    sparsity = pruner.desired_sparsity if sparsity is None else sparsity
    modules = dict(model.named_modules())
    masks = []
    leader_indices: tuple[int, ...] | None = None
    for layer in pruner.layers:
        conv = modules[layer]
        total = _structure_count(conv, pruner.kind)
        importance = structure_importance(conv.weight, pruner.kind, pruner.ranker)
        if pruner.leader and leader_indices is not None:
            indices = leader_indices
        else:
            indices = lowest(importance, pruned_count(sparsity, total, round_to or 1))
            leader_indices = indices
        masks.append(Mask(pruner.name, layer, pruner.kind, indices, total, tuple(importance.tolist())))
    return masks


def apply_masks(model: nn.Module, masks: list[Mask]) -> None:
    """Zero the masked structures (after every optimizer step, so training cannot revive them)."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for mask in masks:
            weight = modules[mask.layer].weight
            if not mask.indices or _structure_count(modules[mask.layer], mask.kind) != mask.total:
                continue  # already thinned: the structures are gone, not zero
            index = torch.tensor(mask.indices, dtype=torch.long)
            if mask.kind == "filters":
                weight[index] = 0
            else:
                weight[:, index] = 0


def thin(model: nn.Module, masks: list[Mask], input_shape: tuple[int, ...] = INPUT_SHAPE) -> None:
    """Remove every masked structure physically, with the layers coupled to it.

    Masks are found again as all-zero slices of the current weights: removing one conv's filters also removes
    the next conv's input channels, so indices chosen before thinning no longer line up, but zeros do.
    """
    if not masks:
        return
    with cpu_work():
        _thin(model, masks, input_shape)


def _thin(model: nn.Module, masks: list[Mask], input_shape: tuple[int, ...]) -> None:
    import torch_pruning as tp

    apply_masks(model, masks)
    was_training = model.training
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, *input_shape))
    model.train(was_training)  # the graph build leaves the model in eval mode
    modules = dict(model.named_modules())
    handlers = {"filters": tp.prune_conv_out_channels, "channels": tp.prune_conv_in_channels}
    for mask in masks:
        conv = modules[mask.layer]
        indices = zero_structures(conv.weight, mask.kind)
        if not indices:
            continue
        group = graph.get_pruning_group(conv, handlers[mask.kind], idxs=indices)
        if not graph.check_pruning_group(group):
            raise PrunebenchError(f"pruner {mask.pruner}: removing {len(indices)} {mask.kind} of {mask.layer!r} "
                                  f"would leave a layer empty; lower its desired_sparsity")
        group.prune()


def zero_structures(weight: torch.Tensor, kind: PrunerKind) -> list[int]:
    dims = STRUCTURE_DIMS[kind]
    return [int(i) for i in torch.nonzero(weight.detach().abs().amax(dim=dims) == 0).flatten()]


def structures_document(masks: list[Mask], rankers: dict[str, str]) -> dict[str, dict[str, object]]:
    """Per pruned conv, its last ranking: every structure's score and the ones removed (JSON-ready)."""
    layers: dict[str, dict[str, object]] = {}
    for mask in masks:  # in firing order: a later ranking of a layer replaces an earlier one
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
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, *input_shape))
    order = {name: index for index, (name, _m) in enumerate(model.named_modules())}
    names = {module: name for name, module in model.named_modules()}
    groups, seen = [], set()
    for name, conv in model.named_modules():
        if not isinstance(conv, nn.Conv2d) or conv.groups != 1 or name in seen:
            continue
        members, consumers = set(), set()
        for dep, _idxs in graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=[0]):
            target = dep.target.module
            if isinstance(target, nn.Conv2d):
                handler = getattr(dep.handler, "__name__", "")
                (members if handler == "prune_out_channels" else consumers).add(names[target])
        seen |= members
        groups.append(FilterGroup(tuple(sorted(members, key=order.get)), tuple(sorted(consumers, key=order.get))))
    return groups


def prune_to_final(model: nn.Module, schedule: Schedule) -> list[Mask]:
    """Every pruner straight to its final target, then thinning: the seed's rapid (0-epoch) pruning."""
    masks = [mask for pruner in schedule.pruners for mask in rank_pruner(model, pruner, round_to=schedule.round_to)]
    thin(model, masks)
    return masks
