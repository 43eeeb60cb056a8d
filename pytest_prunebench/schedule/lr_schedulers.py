"""The `lr_schedulers:` section: torch.optim.lr_scheduler classes whose arguments are plain numbers."""

from __future__ import annotations

from typing import Any

from ..errors import shown
from .catalogue import LR_SCHEDULER_ARGUMENTS, LR_SCHEDULERS
from .fields import FieldReader, finite_number, one_of
from .model import LRSchedulerDefinition, freeze


class LRSchedulerReader(FieldReader):
    """One `lr_schedulers:` entry, checked against the catalogue's arguments without importing torch; its
    LRSchedulerSpec is made when a policy fires it. What torch itself would refuse is found by lr_trial before
    any training."""

    def check_lr_scheduler(self, name: str, spec: Any) -> LRSchedulerDefinition:
        where = f"lr_schedulers.{name}"
        spec = self.mapping(spec, where)
        class_name = spec.get("class")  # compared with names only: a class outside the list is never looked up
        if not one_of(class_name, LR_SCHEDULERS):
            raise self.fail(f"{where}.class", f"lr_scheduler class {shown(class_name)} is not allowed "
                                              f"(allowed: {', '.join(sorted(LR_SCHEDULERS))})")
        arguments = LR_SCHEDULER_ARGUMENTS[class_name]
        kwargs: dict[str, Any] = {}
        for key, value in spec.items():
            if key == "class":
                continue
            if key not in arguments:
                raise self.fail(f"{where}.{key}", f"{class_name} takes no argument {shown(key)} "
                                                  f"(it takes: {', '.join(sorted(arguments))})")
            numbers = value if isinstance(value, list) else [value]
            if not numbers or not all(finite_number(v) for v in numbers):
                raise self.fail(f"{where}.{key}", f"must be a finite number or a list of them, got {shown(value)}")
            kwargs[key] = value
        missing = [key for key in sorted(arguments) if key not in kwargs and arguments[key]]
        if missing:
            raise self.fail(where, f"{class_name} needs {', '.join(missing)}")
        return LRSchedulerDefinition(name, class_name, tuple((key, freeze(value)) for key, value in kwargs.items()))
