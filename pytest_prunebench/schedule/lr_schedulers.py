"""The `lr_schedulers:` section: torch.optim.lr_scheduler classes whose arguments are plain numbers."""

from __future__ import annotations

import inspect
import math
from typing import Any

from ..errors import shown
from .catalogue import LR_SCHEDULERS
from .fields import FieldReader, finite_number, one_of


class LRSchedulerReader(FieldReader):
    """One `lr_schedulers:` entry; its LRSchedulerSpec is made when a policy fires it."""

    def check_lr_scheduler(self, name: str, spec: Any) -> None:
        import torch.optim.lr_scheduler as lr_scheduler

        where = f"lr_schedulers.{name}"
        spec = self.mapping(spec, where)
        class_name = spec.get("class")  # compared with names only: a class outside the list is never looked up
        if not one_of(class_name, LR_SCHEDULERS):
            raise self.fail(f"{where}.class", f"lr_scheduler class {shown(class_name)} is not allowed "
                                              f"(allowed: {', '.join(sorted(LR_SCHEDULERS))})")
        cls = getattr(lr_scheduler, class_name)
        parameters = inspect.signature(cls).parameters
        ignored = {"self", "optimizer", "last_epoch", "verbose"}
        accepted = set(parameters) - ignored
        kwargs: dict[str, Any] = {}
        for key, value in spec.items():
            if key == "class":
                continue
            if key not in accepted:
                raise self.fail(f"{where}.{key}", f"{class_name} takes no argument {shown(key)} "
                                                  f"(it takes: {', '.join(sorted(accepted))})")
            numbers = value if isinstance(value, list) else [value]
            if not numbers or not all(finite_number(v) for v in numbers):
                raise self.fail(f"{where}.{key}", f"must be a finite number or a list of them, got {shown(value)}")
            kwargs[key] = value
        missing = [key for key in sorted(accepted) if key not in kwargs
                   and parameters[key].default is inspect.Parameter.empty
                   and parameters[key].kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
        if missing:
            raise self.fail(where, f"{class_name} needs {', '.join(missing)}")
        problem = _lr_scheduler_problem(cls, kwargs)
        if problem:
            arguments = ", ".join(f"{key}={shown(value)}" for key, value in kwargs.items())
            raise self.fail(where, f"{class_name}({arguments}) {problem}")



LR_TRIAL_EPOCHS = 100


def _lr_scheduler_problem(cls: type, kwargs: dict[str, Any]) -> str | None:
    """Why torch would refuse these arguments, found before any training: build the scheduler on a throwaway
    optimizer and step it through the first LR_TRIAL_EPOCHS epochs. torch checks some arguments when it builds
    the scheduler (ConstantLR factor above 1), others only when it steps (StepLR step_size 0 divides by zero)."""
    import warnings

    import torch

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's advice on the call order of optimizer and scheduler steps
            scheduler = cls(optimizer, **kwargs)
            for epoch in range(1, LR_TRIAL_EPOCHS + 1):
                scheduler.step()
                factor = optimizer.param_groups[0]["lr"]  # of a base learning rate of 1
                if not (math.isfinite(factor) and factor >= 0):
                    return (f"multiplies the learning rate by {factor:g} at epoch {epoch}: it must stay finite and "
                            f">= 0")
    except Exception as exc:  # torch's own refusal, whatever its type, is the message
        return f"is refused by torch: {type(exc).__name__}: {' '.join(str(exc).split())}"
    return None
