"""Checks across sections: what only the whole schedule shows (masks shared between policies, unused entries)."""

from __future__ import annotations

from ..errors import ScheduleError
from .catalogue import MASKER_FLAGS, THINNED_KINDS
from .model import PrunerPolicy, PrunerSpec, RegularizerSpec


def check_masking(path: str, policies: list[PrunerPolicy], pruners: dict[str, PrunerSpec],
                  regularized: list[RegularizerSpec]) -> None:
    """What Distiller's one-masker-per-parameter design makes unfaithful here is refused (scheduler.py
    ParameterMasker): masker flags set for the whole model, SplicingPruner's masks under thinning, and a
    regularizer's threshold mask replacing a pruner's mask."""
    flagged = [(i, p) for i, p in enumerate(policies) if any(getattr(p, flag) for flag in MASKER_FLAGS)]
    if flagged and (len(policies) > 1 or any(r.threshold_criteria for r in regularized)):
        flags = [flag for flag in MASKER_FLAGS if getattr(flagged[0][1], flag)]
        raise ScheduleError(
            path, f"pruners.{flagged[0][1].pruner}",
            f"its policy sets {', '.join(flags)}, which Distiller sets on the masker of every parameter (policy.py "
            f"PruningPolicy.on_epoch_begin), with one unmasked copy per parameter: they would act on the masks of the "
            f"schedule's other pruner policies and regularizer thresholds; supported in a schedule whose only mask "
            f"comes from that one pruner policy")
    thinned = [p for p in pruners.values() if p.kind in THINNED_KINDS]
    spliced = [p for p in pruners.values() if p.splicing is not None]
    if spliced and thinned:
        raise ScheduleError(
            path, f"pruners.{spliced[0].name}.class",
            f"SplicingPruner carries each weight's mask from minibatch to minibatch, and the thinning of "
            f"{thinned[0].name}'s {thinned[0].kind} would reshape the weights under it: not supported in one schedule")
    masked = {layer: p.name for p in pruners.values() for layer in p.layers}
    for regularizer in regularized:
        for parameter, _strength, _group in regularizer.terms if regularizer.threshold_criteria else ():
            if parameter.removesuffix(".weight") in masked:
                raise ScheduleError(
                    path, f"regularizers.{regularizer.name}.threshold_criteria",
                    f"{parameter!r} is also pruned by {masked[parameter.removesuffix('.weight')]}: Distiller's "
                    f"threshold mask replaces the pruner's mask of that parameter (one mask per parameter, "
                    f"RegularizationPolicy.on_minibatch_end); not supported")


def unused_entries(path: str, defined: dict[str, set[str]], used: dict[str, set[str]]) -> list[str]:
    """A warning for each entry no policy fires: it never takes effect, which the user should see."""
    return [f"{path}: {section}.{unused}: no policy uses it, so it never takes effect"
            for section, names in defined.items() for unused in sorted(names - used[section])]
