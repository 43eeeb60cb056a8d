"""The field-validation base every section reader builds on: one value checked, or one ScheduleError naming the
file and the key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import ScheduleError, shown


class FieldReader:
    """Checks single values of one document; every error names the file and the key (`where`)."""

    error: type[ScheduleError] = ScheduleError  # a sweep's readers raise SweepError

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> ScheduleError:
        return self.error(self.path, where, message)

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"must be a mapping of names to settings, got {type(value).__name__}")
        return {str(k): v for k, v in value.items()}

    def number(self, value: Any, where: str) -> float:
        if not finite_number(value):
            raise self.fail(where, f"must be a finite number, got {shown(value)}")
        return float(value)

    def positive(self, value: Any, where: str) -> float:
        number = self.number(value, where)
        if number <= 0:
            raise self.fail(where, f"must be greater than 0, got {shown(value)}")
        return number

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"must be true or false, got {shown(value)}")
        return value

    def count(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(where, f"must be a whole number >= 0 (0: masks at epoch begin only), got {shown(value)}")
        return value

    def epoch(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(where, f"epochs are whole numbers >= 0, got {shown(value)}")
        return value

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
        if not one_of(class_name, allowed):
            raise self.fail(f"{where}.class", f"{what} class {shown(class_name)} is not supported "
                                              f"(supported: {', '.join(sorted(allowed))})")
        return str(class_name)


def one_of(value: Any, names: Mapping[str, Any] | frozenset[str]) -> bool:
    """`value in names` for a value of any YAML type (a list or mapping is unhashable: never one of them)."""
    return isinstance(value, str) and value in names


def name_of(value: Any) -> str:
    return value if isinstance(value, str) else shown(value)


def finite_number(value: Any) -> bool:
    """A finite int or float (not a bool); an int too large for a float is not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
