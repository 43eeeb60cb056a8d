"""The pruned case's model: prune, thin, retrain and export the dense baseline's copy, or take all of that from the
artifact cache under a key of everything that determines it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, cast

from ..data import Dataset
from ..schedule import DEPLOYMENT_KEYS, Schedule
from ..settings import Settings
from .outcome import Laps
from .resolution import Progress

if TYPE_CHECKING:
    from torch import nn

    from ..cache import ArtifactCache
    from ..pruning import Mask
    from ..training import EvalResult
    from .dense import DenseBaseline

CASE_ONNX, CASE_MODEL, CASE_DOCUMENT = "model.onnx", "model.pt", "case.json"  # a pruned case's cache entry
OnEpoch = Callable[[int, float], bool]  # a study's pruner: sees each retraining epoch's top1, True ends retraining


class _EvalDocument(TypedDict):
    top1: float
    top5: float
    loss: float
    distinct_predictions: int


class _CaseDocumentBase(TypedDict):
    pruned_eval: _EvalDocument | None
    history: list[dict[str, float]]
    structures: dict[str, dict[str, object]]


class CaseDocument(_CaseDocumentBase, total=False):
    """A pruned case's cache entry's CASE_DOCUMENT, as written (an entry from before early_terminated lacks it)."""

    early_terminated: bool


@dataclass(frozen=True)
class Retrained:
    eval: EvalResult | None  # right after pruning, before retraining; None: the measurement's (0 epochs)
    history: tuple[dict[str, float], ...]
    masks: tuple[Mask, ...]  # in firing order
    early_terminated: bool


@dataclass(frozen=True)
class PrunedModel:
    eval: EvalResult | None  # right after pruning, before retraining; None: the measurement's (0 epochs)
    history: tuple[dict[str, float], ...]
    structures: dict[str, dict[str, object]]  # pruning.structures_document: per pruned conv, scores and removals
    model: nn.Module  # the thinned, retrained model
    onnx: bytes  # its ONNX file, read from the cache entry under the entry's lock
    early_terminated: bool = False
    cache: str = "off"


def case_key(settings: Settings, schedule: Schedule, baseline_key: str, epochs: int, stop_on_collapse: bool) -> str:
    """What determines the pruned + retrained model: the baseline's key, the schedule's pruning content (not
    its name, path, comments or thresholds), the resolved epochs and learning rate, the seed."""
    from ..cache import artifact_key

    content = cast("dict[str, object]", schedule.content())  # the schedule's JSON document
    for ignored in ("name", "path", "warnings", "thresholds", "model", "dataset", "epochs", "lr"):
        content.pop(ignored)
    for deployed in DEPLOYMENT_KEYS:  # how the model is deployed, not the model: the deployed cache's key
        content.pop(deployed, None)
    return artifact_key("cases", {"baseline": baseline_key, "schedule": content, "epochs": epochs,
                                  "lr": schedule.lr or settings.lr, "seed": settings.seed,
                                  "stop_on_collapse": stop_on_collapse, "bn_recalibration": settings.bn_recalibration})


class PrunedModels:
    def __init__(self, settings: Settings, cache: ArtifactCache, progress: Progress) -> None:
        self.settings = settings
        self.cache = cache
        self.progress = progress

    def get(self, schedule: Schedule, model_name: str, dense: DenseBaseline, data: Dataset, epochs: int,
            stop_on_collapse: bool, name: str, laps: Laps, on_epoch: OnEpoch | None = None) -> PrunedModel:
        """Prune, thin, retrain and export, or take all of that from the artifact cache. A case whose retraining
        a study's pruner may stop (`on_epoch`) is built afresh and not cached: its model is not the one its
        epochs' key names."""
        from ..models import build_model

        def build(directory: Path) -> None:
            self._build(directory, schedule, dense, data, epochs, stop_on_collapse, name, laps, on_epoch)

        def load(directory: Path) -> PrunedModel:
            return _load(directory, build_model(model_name, data.num_classes))

        if on_epoch is not None:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="prunebench-trial-") as folder:
                build(Path(folder))
                return load(Path(folder))
        key = case_key(self.settings, schedule, dense.key, epochs, stop_on_collapse)
        describe = {"case": name, "schedule": schedule.name, "model": model_name, "epochs": epochs}
        pruned, hit = self.cache.fetch("cases", key, describe, build, load)
        if hit:
            laps.lap("cache_load")
            self.progress(f"{name}: pruned and retrained model from the cache ({self.cache.entry_path('cases', key)})")
        return replace(pruned, cache="hit" if hit else "built" if self.cache.root else "off")

    def _build(self, directory: Path, schedule: Schedule, dense: DenseBaseline, data: Dataset, epochs: int,
               stop_on_collapse: bool, name: str, laps: Laps, on_epoch: OnEpoch | None) -> None:
        """The cache entry's files: the pruned model's ONNX file and weights, and its CASE_DOCUMENT."""
        from ..checkpoint import save_model
        from ..export import export_onnx
        from ..pruning import structures_document

        model = copy.deepcopy(dense.model)
        retrained = self._retrain(model, schedule, data, epochs, stop_on_collapse, name, on_epoch)
        laps.lap("prune_retrain")
        export_onnx(model, directory / CASE_ONNX)
        save_model(model, directory / CASE_MODEL)
        document: CaseDocument = {
            "pruned_eval": None if retrained.eval is None else cast("_EvalDocument", asdict(retrained.eval)),
            "history": list(retrained.history),
            "structures": structures_document(list(retrained.masks), {p.name: p.ranker for p in schedule.pruners}),
            "early_terminated": retrained.early_terminated}
        (directory / CASE_DOCUMENT).write_text(json.dumps(document), encoding="utf-8")
        laps.lap("export")

    def _retrain(self, model: nn.Module, schedule: Schedule, data: Dataset, epochs: int, stop_on_collapse: bool,
                 name: str, on_epoch: OnEpoch | None) -> Retrained:
        """Prune `model` in place and retrain it. With 0 epochs the evaluation is None: the exported model is the
        pruned one, and its measurement on the device evaluates it (a torch pass over the test set would double
        the accuracy work of a rapid-pruning case)."""
        from ..pruning import probe_images, prune_to_final
        from ..training import TrainConfig, evaluate, recalibrate_after_pruning, retrain

        settings = self.settings
        if epochs == 0:
            masks = prune_to_final(model, schedule, probe_images(data.train_x, settings.seed))
            recalibrate_after_pruning(model, data.train_x, settings.bn_recalibration, settings.seed)
            return Retrained(None, (), tuple(masks), False)
        config = TrainConfig(epochs=epochs, lr=schedule.lr or settings.lr, seed=settings.seed,
                             stop_on_collapse=stop_on_collapse, recalibration_images=settings.bn_recalibration)
        outcome = retrain(model, schedule, data, config, lambda m: self.progress(f"{name}: {m}"), on_epoch)
        pruned_eval = outcome.pruned_eval or evaluate(model, data.test_x, data.test_y)
        return Retrained(pruned_eval, tuple(record.as_dict() for record in outcome.history), tuple(outcome.masks),
                         outcome.early_terminated)


def _load(directory: Path, architecture: nn.Module) -> PrunedModel:
    """A cache entry's pruned model: its weights loaded into `architecture`, the model as built (load_model
    resizes it to the thinned shapes)."""
    from ..checkpoint import load_model
    from ..training import EvalResult

    document = cast(CaseDocument, json.loads((directory / CASE_DOCUMENT).read_text(encoding="utf-8")))
    model = load_model(architecture, directory / CASE_MODEL)
    pruned_eval = None if document["pruned_eval"] is None else EvalResult(**document["pruned_eval"])
    return PrunedModel(pruned_eval, tuple(document["history"]), document["structures"], model,
                       (directory / CASE_ONNX).read_bytes(), bool(document.get("early_terminated")))
