"""LR schedulers tried on torch before any training: what torch itself refuses, or a learning rate that turns
negative or infinite, is one ScheduleError naming the file and the entry.

Kept apart from parsing, which imports no torch: the case runner (case.CaseRunner.run) and `prunebench check`
call `check_lr_schedulers` before anything trains; torch is imported only here, and only for a schedule that
defines an LR scheduler.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ScheduleError, shown
from .model import Schedule, thaw

LR_TRIAL_EPOCHS = 100


def check_lr_schedulers(schedule: Schedule) -> None:
    """Every `lr_schedulers:` entry of the schedule's file, used or not, in the file's order."""
    for definition in schedule.lr_scheduler_definitions:
        kwargs = {key: thaw(value) for key, value in definition.arguments}
        problem = lr_scheduler_problem(definition.class_name, kwargs)
        if problem:
            arguments = ", ".join(f"{key}={shown(value)}" for key, value in kwargs.items())
            raise ScheduleError(schedule.path, f"lr_schedulers.{definition.name}",
                                f"{definition.class_name}({arguments}) {problem}")


def lr_scheduler_problem(class_name: str, kwargs: dict[str, Any]) -> str | None:
    """Why torch would refuse these arguments, found before any training: build the scheduler on a throwaway
    optimizer and step it through the first LR_TRIAL_EPOCHS epochs. torch checks some arguments when it builds
    the scheduler (ConstantLR factor above 1), others only when it steps (StepLR step_size 0 divides by zero)."""
    import warnings

    import torch

    cls = getattr(torch.optim.lr_scheduler, class_name)  # the parser allowed only the catalogue's names
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
