"""The `pruners:` section: each entry read into a PrunerSpec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import shown
from .catalogue import (
    GROUP_TYPES,
    KNOWN_UNSUPPORTED_GROUP_TYPES,
    KNOWN_UNSUPPORTED_PRUNERS,
    PRUNER_CLASSES,
    SUPPORTED_PRUNERS,
    PrunerKind,
)
from .fields import FieldReader, one_of
from .model import PrunerSpec, SplicingParams


class PrunerReader(FieldReader):
    """One `pruners:` entry: its class from the catalogue, its targets, its weights."""

    def pruner(self, name: str, spec: Any) -> PrunerSpec:
        where = f"pruners.{name}"
        spec = self.mapping(spec, where)
        class_name = spec.get("class")  # compared with names only: a class is never imported
        if one_of(class_name, KNOWN_UNSUPPORTED_PRUNERS):
            raise self.fail(f"{where}.class", f"{class_name} is not supported yet by pytest-prunebench "
                                              f"(supported: {', '.join(SUPPORTED_PRUNERS)})")
        if not one_of(class_name, PRUNER_CLASSES):
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
        if one_of(group_type, KNOWN_UNSUPPORTED_GROUP_TYPES):
            raise self.fail(f"{where}.group_type", f"{group_type!r} is not supported yet (use Filters, Channels "
                                                   f"or Rows)")
        if not one_of(group_type, GROUP_TYPES):
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
