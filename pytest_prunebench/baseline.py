"""The dense baseline: trained to a stated quality by its model family's recipe, once per (model, dataset, recipe,
seed, torch threads, libraries), and kept in the artifact cache."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from torch import nn

from .cache import ArtifactCache, artifact_key
from .data import Dataset, DataSpec
from .models import build_model
from .settings import Settings
from .training import DenseOutcome, EarlyStop, TrainConfig, train_dense

MODEL_FILE, ONNX_FILE, TRAINING_FILE = "model.pt", "model.onnx", "training.json"


@dataclass(frozen=True)
class Recipe:
    """How a dense baseline trains: SGD with momentum, a linear warm-up, a cosine learning rate over the epoch
    budget, and an early stop (`patience` epochs without a better test top1, or `target_top1` reached) that keeps
    the best epoch's weights. `patience=None`: exactly `max_epochs` (--prunebench-baseline-epochs)."""

    lr: float
    batch_size: int
    warmup_epochs: int
    max_epochs: int
    patience: int | None
    target_top1: float | None = None

    def early_stop(self) -> EarlyStop | None:
        return None if self.patience is None else EarlyStop(self.patience, self.target_top1)

    def describe(self) -> str:
        rule = (f"exactly {self.max_epochs} epoch(s)" if self.patience is None else
                f"up to {self.max_epochs} epochs, patience {self.patience}"
                + (f", target {self.target_top1:g}%" if self.target_top1 is not None else ""))
        return f"{rule}, lr {self.lr:g}, batch {self.batch_size}, warm-up {self.warmup_epochs}"


# Per model family (the name's prefix). Measured on digits here (2 cores): batch 128 gives a deep ResNet only
# 12 steps an epoch, and ResNet-56 stayed at 45.6% after 5 epochs; at batch 32 it passes 98% in 6 epochs.
FAMILY_RECIPES: dict[str, Recipe] = {
    "resnet110": Recipe(lr=0.05, batch_size=32, warmup_epochs=2, max_epochs=30, patience=4),  # deeper: gentler
    "resnet": Recipe(lr=0.1, batch_size=32, warmup_epochs=1, max_epochs=30, patience=4),
    # MobileNetV2 and VGG-16-BN: lr 0.05 at batch 64 reached 98.3% on digits in 5 epochs where lr 0.1 at batch 128
    # gave 91.9% (MobileNetV2) and 93.1% (VGG-16-BN, its loss jumping to 4.1): benchmarks/dense_recipe.jsonl.
    "mobilenetv2": Recipe(lr=0.05, batch_size=64, warmup_epochs=1, max_epochs=30, patience=4),
    "vgg": Recipe(lr=0.05, batch_size=64, warmup_epochs=1, max_epochs=30, patience=4),
}
DEEP_RESNET = FAMILY_RECIPES["resnet110"]
DEFAULT_RECIPE = FAMILY_RECIPES["resnet"]  # user models (package.module:factory)
# A target where the ceiling is known: digits' 360 test images, where one image is 0.28 points.
DATASET_TARGETS: dict[str, float] = {"digits": 99.0}


def baseline_recipe(model_name: str, dataset_kind: str, forced_epochs: int | None) -> Recipe:
    """The recipe of a model's family on a dataset; `forced_epochs` (--prunebench-baseline-epochs) trains exactly
    that many epochs, with no early stop."""
    # The longest matching prefix: resnet110 before resnet. A user factory (`package.module:factory`) has none.
    families = [prefix for prefix in FAMILY_RECIPES if model_name.startswith(prefix) and ":" not in model_name]
    recipe = FAMILY_RECIPES[max(families, key=len)] if families else DEFAULT_RECIPE
    recipe = replace(recipe, target_top1=DATASET_TARGETS.get(dataset_kind))
    if forced_epochs is not None:
        recipe = replace(recipe, max_epochs=forced_epochs, patience=None, target_top1=None)
    return recipe


@dataclass(frozen=True)
class BaselineTraining:
    """What a dense baseline's training did, kept beside it in the cache: the record says how it was made."""

    epochs: int  # epochs trained
    kept_epoch: int  # the epoch whose weights are the baseline
    top1: float  # its test top1 in torch, at the end of training
    stopped: str  # budget, patience or target
    recipe: str

    @classmethod
    def of(cls, outcome: DenseOutcome, recipe: Recipe) -> BaselineTraining:
        return cls(len(outcome.history), outcome.kept_epoch, outcome.result.top1, outcome.stopped, recipe.describe())


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


def baseline_key(model_name: str, spec: DataSpec, data_digest: str, recipe: Recipe, settings: Settings,
                 threads: int) -> str:
    """What determines the trained weights. torch's thread count is part of it: one epoch of ResNet-20 on digits
    ended at loss 1.480 on 1 thread and 1.338 on 2 (each repeatable), so an xdist worker's baseline differs."""
    return artifact_key("baselines", {
        "model": model_name, "model_source": model_source_digest(model_name), "dataset": spec.label,
        "data": data_digest, "recipe": asdict(recipe), "seed": settings.seed, "threads": threads,
    })


def load_or_train_baseline(model_name: str, data: Dataset, spec: DataSpec, key: str, recipe: Recipe,
                           settings: Settings, cache: ArtifactCache, progress: Callable[[str], None]
                           ) -> tuple[nn.Module, bytes, BaselineTraining, bool]:
    """(the trained dense model, its ONNX file's content, how it trained, whether it came from the cache)."""
    import torch

    from .checkpoint import load_model, save_model
    from .export import export_onnx

    def build(directory: Path) -> None:
        torch.manual_seed(settings.seed)
        model = build_model(model_name, data.num_classes)
        progress(f"dense {model_name}: training on {spec.label}, {recipe.describe()}")
        config = TrainConfig(epochs=recipe.max_epochs, lr=recipe.lr, batch_size=recipe.batch_size,
                             seed=settings.seed)
        outcome = train_dense(model, data, config, recipe.warmup_epochs, recipe.early_stop(), progress)
        training = BaselineTraining.of(outcome, recipe)
        progress(f"dense {model_name}: {training.epochs} epoch(s), stopped by {training.stopped}; kept epoch "
                 f"{training.kept_epoch} (top1 {training.top1:.2f}% in torch)")
        save_model(model, directory / MODEL_FILE)
        export_onnx(model, directory / ONNX_FILE)
        (directory / TRAINING_FILE).write_text(json.dumps(asdict(training)), encoding="utf-8")

    def load(directory: Path) -> tuple[nn.Module, bytes, BaselineTraining]:
        model = load_model(build_model(model_name, data.num_classes), directory / MODEL_FILE)
        training = BaselineTraining(**json.loads((directory / TRAINING_FILE).read_text(encoding="utf-8")))
        return model, (directory / ONNX_FILE).read_bytes(), training

    describe: dict[str, Any] = {"model": model_name, "dataset": spec.label, "recipe": recipe.describe(),
                                "seed": settings.seed}
    (model, onnx, training), hit = cache.fetch("baselines", key, describe, build, load)
    if hit:
        progress(f"dense {model_name}: loaded from the cache ({cache.entry_path('baselines', key)}; "
                 f"{training.epochs} epoch(s), kept epoch {training.kept_epoch})")
    return model, onnx, training, hit
