"""The dense baseline: trained once per (model, dataset, epochs, seed, libraries) and kept in the artifact cache."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from .cache import ArtifactCache, artifact_key
from .data import Dataset, DataSpec
from .models import build_model
from .settings import Settings
from .training import TrainConfig, train_dense

BASELINE_LR = 0.1
MODEL_FILE, ONNX_FILE = "model.pt", "model.onnx"


def dataset_digest(data: Dataset) -> str:
    """The images and labels of both splits: a changed file, split or normalisation is another dataset."""
    digest = hashlib.blake2b(digest_size=16)
    for tensor in (data.train_x, data.train_y, data.test_x, data.test_y):
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.contiguous().numpy().data)  # hashed in place, not copied
    return digest.hexdigest()


def model_source_digest(model_name: str) -> str | None:
    """For a user model (`package.module:factory`), its module's source: an edited factory is another model."""
    if ":" not in model_name:
        return None  # built-in: covered by this package's version
    import importlib
    import inspect

    module = importlib.import_module(model_name.partition(":")[0])
    try:
        source = Path(inspect.getsourcefile(module) or "").read_bytes()
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source).hexdigest()


def baseline_key(model_name: str, spec: DataSpec, data_digest: str, settings: Settings) -> str:
    return artifact_key("baselines", {
        "model": model_name, "model_source": model_source_digest(model_name), "dataset": spec.label,
        "data": data_digest, "epochs": settings.baseline_epochs, "seed": settings.seed, "lr": BASELINE_LR,
    })


def load_or_train_baseline(model_name: str, data: Dataset, spec: DataSpec, key: str, settings: Settings,
                           cache: ArtifactCache, progress: Callable[[str], None]) -> tuple[nn.Module, bytes, bool]:
    """(the trained dense model, its ONNX file's content, whether they came from the cache)."""
    import torch

    from .checkpoint import load_model, save_model
    from .export import export_onnx

    def build(directory: Path) -> None:
        torch.manual_seed(settings.seed)
        model = build_model(model_name, data.num_classes)
        progress(f"dense {model_name}: training {settings.baseline_epochs} epoch(s) on {spec.label}")
        train_dense(model, data, TrainConfig(epochs=settings.baseline_epochs, lr=BASELINE_LR, seed=settings.seed),
                    progress)
        save_model(model, directory / MODEL_FILE)
        export_onnx(model, directory / ONNX_FILE)

    def load(directory: Path) -> tuple[nn.Module, bytes]:
        model = load_model(build_model(model_name, data.num_classes), directory / MODEL_FILE)
        return model, (directory / ONNX_FILE).read_bytes()

    describe: dict[str, Any] = {"model": model_name, "dataset": spec.label, "epochs": settings.baseline_epochs,
                                "seed": settings.seed}
    (model, onnx), hit = cache.fetch("baselines", key, describe, build, load)
    if hit:
        progress(f"dense {model_name}: loaded from the cache ({cache.entry_path('baselines', key)})")
    return model, onnx, hit
