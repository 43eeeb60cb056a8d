"""The dense baseline: trained once per (model, dataset, epochs, seed) and cached on disk."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .data import Dataset, DataSpec
from .models import build_model
from .settings import Settings
from .training import TrainConfig, train_dense


def baseline_key(model_name: str, spec: DataSpec, settings: Settings) -> str:
    """Everything that determines the trained weights, torch's version included."""
    text = f"{model_name}|{spec.label}|{settings.baseline_epochs}|{settings.seed}|torch{torch.__version__}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_or_train_baseline(model_name: str, data: Dataset, spec: DataSpec, settings: Settings,
                           progress: Callable[[str], None]) -> nn.Module:
    from filelock import FileLock

    torch.manual_seed(settings.seed)
    model = build_model(model_name, data.num_classes)
    key = baseline_key(model_name, spec, settings)
    path = settings.cache / "baselines" / f"{model_name.replace(':', '-')}-{key}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    # A per-key lock: two workers that need the same baseline train it once.
    with FileLock(str(path) + ".lock"):
        if path.exists() and _load(model, path):
            progress(f"dense {model_name}: loaded from {path}")
            return model
        progress(f"dense {model_name}: training {settings.baseline_epochs} epoch(s) on {spec.label} "
                 f"(cached afterwards in {path.parent})")
        train_dense(model, data, TrainConfig(epochs=settings.baseline_epochs, lr=0.1, seed=settings.seed), progress)
        partial = path.with_suffix(".partial")
        torch.save(model.state_dict(), partial)
        os.replace(partial, path)  # atomic: a killed run never leaves a half-written baseline
    return model


def _load(model: nn.Module, path: Path) -> bool:
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return True
    except Exception as exc:  # a corrupt entry of any kind is retrained, never trusted
        warnings.warn(f"dense baseline cache {path} is unreadable ({type(exc).__name__}); retraining it",
                      stacklevel=3)
        return False
