"""Distiller-format YAML schedules parsed into frozen, typed objects.

Only what this project can apply faithfully is accepted; everything else Distiller knows is refused with a
message naming the class and the file, never ignored.

The package, by stage: `catalogue` (Distiller's classes, by name), `model` (the frozen dataclasses), `yaml_io`
(safe YAML files, shared with sweeps), `fields` (the field-validation base) and one reader per section
(`pruners`, `regularizers`, `extensions`, `lr_schedulers`, `policies`, `prunebench_section`), `checks` (across
sections), `reader` (a file or document to a Schedule) and `writer` (a Schedule back to a document). Parsing
imports no torch.
"""

from .catalogue import (
    CLASS_FOR_RANKER,
    GROUP_TYPE_FOR_KIND,
    GROUP_TYPES,
    KNOWN_UNSUPPORTED_GROUP_TYPES,
    KNOWN_UNSUPPORTED_PRUNERS,
    LASSO_GROUPS,
    LR_SCHEDULERS,
    MASKER_FLAGS,
    MINIBATCH_MASK_ARGS,
    POLICY_TARGETS,
    PRUNER_CLASSES,
    REGULARIZERS,
    SECTION_KEYS,
    SUPPORTED_PRUNERS,
    THINNED_KINDS,
    THINNING_CLASSES,
    THINNING_FUNCS,
    THRESHOLD_CRITERIA,
    PrunerClass,
    PrunerKind,
    Ranker,
)
from .fields import finite_number
from .model import (
    BOUND_KEYS,
    DEPLOYMENT_KEYS,
    GENERATED_PREFIX,
    CaseBounds,
    LRSchedulerSpec,
    PrunerPolicy,
    PrunerSpec,
    RegularizerSpec,
    Schedule,
    SplicingParams,
    ThinningSpec,
    Window,
    agp_target,
)
from .reader import load_schedule, parse_schedule
from .writer import POLICY_ARG_NAMES, schedule_document, schedule_yaml
from .yaml_io import find_yaml_files, read_yaml

__all__ = [
    "BOUND_KEYS", "CLASS_FOR_RANKER", "DEPLOYMENT_KEYS", "GENERATED_PREFIX", "GROUP_TYPES", "GROUP_TYPE_FOR_KIND",
    "KNOWN_UNSUPPORTED_GROUP_TYPES", "KNOWN_UNSUPPORTED_PRUNERS", "LASSO_GROUPS", "LR_SCHEDULERS", "MASKER_FLAGS",
    "MINIBATCH_MASK_ARGS", "POLICY_ARG_NAMES", "POLICY_TARGETS", "PRUNER_CLASSES", "REGULARIZERS", "SECTION_KEYS",
    "SUPPORTED_PRUNERS", "THINNED_KINDS", "THINNING_CLASSES", "THINNING_FUNCS", "THRESHOLD_CRITERIA",
    "CaseBounds", "LRSchedulerSpec", "PrunerClass", "PrunerKind", "PrunerPolicy", "PrunerSpec", "Ranker",
    "RegularizerSpec", "Schedule", "SplicingParams", "ThinningSpec", "Window", "agp_target",
    "find_yaml_files", "finite_number", "load_schedule", "parse_schedule", "read_yaml", "schedule_document",
    "schedule_yaml",
]
