"""Schedules written back as Distiller-format documents and YAML text, which the reader reads into equal schedules."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .catalogue import GROUP_TYPE_FOR_KIND, LASSO_GROUPS, MASKER_FLAGS
from .model import (
    _LATER_POLICY_FIELDS,
    DEPLOYMENT_KEYS,
    PrunerPolicy,
    PrunerSpec,
    RegularizerSpec,
    Schedule,
    ThinningSpec,
    Window,
    thaw,
)


def schedule_document(schedule: Schedule) -> dict[str, Any]:
    """The Distiller-format document `parse_schedule` reads back into an equal schedule (generated cases are
    reported this way, so a user can save one as a schedule file and replay it). Entries no policy uses are
    left out: they do nothing, so the document reads back without their warnings."""
    document: dict[str, Any] = {"version": 1, "pruners": {p.name: _pruner_document(p) for p in schedule.pruners}}
    if schedule.thinning:
        document["extensions"] = {t.name: _thinning_document(t) for t in schedule.thinning}
    if schedule.lr_schedulers:
        document["lr_schedulers"] = {s.name: {"class": s.class_name, **{k: thaw(v) for k, v in s.kwargs}}
                                     for s in schedule.lr_schedulers}
    if schedule.regularizers:
        document["regularizers"] = {r.name: _regularizer_document(r) for r in schedule.regularizers}
    document["policies"] = (
        [{"pruner": _instance(p.pruner, _policy_args(p)), **window_document(p.window)}
         for p in schedule.pruner_policies]
        + [{"regularizer": _instance(r.name, {"keep_mask": True} if r.keep_mask else {}),
            **window_document(r.window)} for r in schedule.regularizers]
        + [{"extension": {"instance_name": t.name}, **window_document(t.window)} for t in schedule.thinning]
        + [{"lr_scheduler": {"instance_name": s.name}, **window_document(s.window)} for s in schedule.lr_schedulers]
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


def window_document(window: Window) -> dict[str, Any]:
    if window.epochs is not None:
        return {"epochs": list(window.epochs)}
    document: dict[str, Any] = {"starting_epoch": window.starting_epoch}
    if window.ending_epoch is not None:
        document["ending_epoch"] = window.ending_epoch
    if window.frequency != 1:
        document["frequency"] = window.frequency
    return document


def schedule_yaml(schedule: Schedule) -> str:
    """`schedule_document` as YAML text, in the schedule's own order (pruners rank in that order)."""
    import yaml

    return yaml.safe_dump(schedule_document(schedule), sort_keys=False, default_flow_style=None, width=1000)
