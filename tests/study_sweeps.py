"""Sweeps and trial views the search (Optuna study) tests share."""

from __future__ import annotations

from typing import Any

from pytest_prunebench.search import TrialView

TWO_OBJECTIVES = {
    "method": "bayes",
    "metric": [{"name": "top1", "goal": "maximize"}, {"name": "latency_ms", "goal": "minimize"}],
    "run_cap": 6,
    "parameters": {
        "model": {"value": "resnet20"},
        "epochs": {"value": 0},
        "sparsity.layer3": {"min": 0.1, "max": 0.5, "distribution": "q_uniform", "q": 0.05},
        "kind.layer3": {"values": ["filters", "channels"]},
        "lr": {"min": 0.001, "max": 0.1, "distribution": "log_uniform_values"},
    },
}


def trial(number: int, slot: str | None, params: dict[str, Any] | None = None, running: bool = False,
          beat: Any = None) -> TrialView:
    return TrialView(number, running, not running, slot, params or {"s": number}, beat)


TINY_BAYES = {
    "method": "bayes",
    "metric": [{"name": "top1", "goal": "maximize"}, {"name": "latency_ms", "goal": "minimize"}],
    "run_cap": 3,
    "sampler": {"type": "tpe", "seed": 1},
    "parameters": {"model": {"value": "resnet20"}, "epochs": {"value": 0},
                   "sparsity.layer3": {"min": 0.1, "max": 0.6, "distribution": "q_uniform", "q": 0.1}},
}
