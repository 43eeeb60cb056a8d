"""The `regularizers:` section: L1Regularizer and GroupLassoRegularizer entries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import shown
from .catalogue import LASSO_GROUPS, REGULARIZERS, THRESHOLD_CRITERIA
from .fields import FieldReader, one_of

# A regularizer as defined under `regularizers:`: (class, terms, threshold_criteria).
RegularizerParts = tuple[str, tuple[tuple[str, float, str], ...], str | None]



class RegularizerReader(FieldReader):
    """One `regularizers:` entry; its RegularizerSpec is made when a policy fires it."""

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
        if criteria is not None and not one_of(criteria, THRESHOLD_CRITERIA):
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
                if not isinstance(value, list) or len(value) != 2 or not one_of(value[1], LASSO_GROUPS):
                    raise self.fail(key, f"must be [strength, group] with group one of "
                                         f"{', '.join(sorted(LASSO_GROUPS))}, got {shown(value)}")
                value, group = value[0], LASSO_GROUPS[value[1]]
            terms.append((str(parameter).removeprefix("module."), self.positive(value, key), group))
        return class_name, tuple(terms), criteria
