"""Distiller's class catalogue: the pruner, regularizer, extension and LR-scheduler classes (and the document
sections) this project knows, by name. A class named in a schedule is compared with these lists, never imported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
# torch.optim.lr_scheduler classes whose arguments are plain numbers; anything that takes code is refused. Each
# with its arguments (True: required), as torch's signatures have them without optimizer, last_epoch and verbose:
# the parser reads them here so that it never imports torch (tests check the table against torch's signatures).
LR_SCHEDULER_ARGUMENTS: dict[str, dict[str, bool]] = {
    "StepLR": {"step_size": True, "gamma": False},
    "MultiStepLR": {"milestones": True, "gamma": False},
    "ExponentialLR": {"gamma": True},
    "CosineAnnealingLR": {"T_max": True, "eta_min": False},
    "ConstantLR": {"factor": False, "total_iters": False},
    "LinearLR": {"start_factor": False, "end_factor": False, "total_iters": False},
    "PolynomialLR": {"total_iters": False, "power": False},
}
LR_SCHEDULERS = frozenset(LR_SCHEDULER_ARGUMENTS)
SECTION_KEYS = frozenset({"version", "pruners", "extensions", "lr_schedulers", "policies", "regularizers",
                          "quantizers", "prunebench"})
POLICY_TARGETS = ("pruner", "extension", "lr_scheduler", "regularizer", "quantizer")
# The writer's way back: the class of a generated pruner, and Distiller's group_type of a kind.
CLASS_FOR_RANKER = {"l1": "L1RankedStructureParameterPruner", "l2": "L2RankedStructureParameterPruner"}
GROUP_TYPE_FOR_KIND = {kind: group_type for group_type, kind in GROUP_TYPES.items()}
