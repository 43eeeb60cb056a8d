"""The dense baseline a case prunes and is timed against: trained by its recipe (or loaded from the artifact cache)
once per process, placed in the artifacts folder, deployed and measured once per deployment, and checked against
the session's quality floor."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..data import DataSpec
from ..errors import PrunebenchWarning, WeakBaselineError
from ..settings import Deployment, Settings
from .artifacts import place, slug
from .deployment import Deployer, deployed_precision
from .measurement import LatencyReference, Measurer, deployed_eval, write_layer_profile
from .resolution import Datasets, Progress

if TYPE_CHECKING:
    from torch import nn

    from ..baseline import BaselineTraining
    from ..cache import ArtifactCache
    from ..quantize import Deployed
    from ..reference import Reference

# Below these, a dense baseline fails the session (--prunebench-min-dense-top1): its pruned copies would say
# nothing about pruning. None: no floor (synthetic data is for smoke tests, with baselines untrained on purpose).
DENSE_TOP1_FLOORS: dict[str, float | None] = {"digits": 90.0, "cifar10": 80.0, "synthetic": None}
PRECISION_GAP_POINTS = 1.0  # a dense model this much less accurate on the device than in torch is a warning


@dataclass(frozen=True)
class TrainedBaseline:
    model: nn.Module
    onnx_path: Path  # its ONNX file, placed in the artifacts folder
    training: BaselineTraining  # how it was trained
    key: str  # its artifact cache key: part of every pruned model's key


@dataclass(frozen=True)
class DenseBaseline:
    model: nn.Module
    onnx_path: Path
    top1: float
    params: int
    weights: int
    macs: int
    collapse_reason: str | None  # a dense model at chance: its pruned cases cannot collapse "because of" pruning
    layers_path: str  # its per-layer device times ("" without counters)
    key: str  # its artifact cache key: part of every pruned model's key
    latency_reference: LatencyReference  # compiled for latency once per process: every case times it again
    training: BaselineTraining
    top1_torch: float  # its test top1 in torch, beside `top1` on the device
    weak: str | None  # why it is below the session's quality floor (--prunebench-min-dense-top1), or None
    reference: Reference  # the session's dense median its cases' drift-corrected latencies use
    deployed: Deployed | None = None  # its IR (f16, int8); None: the ONNX file is what is measured


class DenseBaselines:
    """The dense baselines of this process, by model, data and deployment."""

    def __init__(self, settings: Settings, cache: ArtifactCache, datasets: Datasets, deployer: Deployer,
                 measurer: Measurer, progress: Progress) -> None:
        from ..reference import ReferenceStore

        self.settings = settings
        self.cache = cache
        self.datasets = datasets
        self.deployer = deployer
        self.measurer = measurer
        self.progress = progress
        self.references = ReferenceStore(settings.reference_dir)  # the session's reference dense medians
        self.trained: dict[tuple[str, DataSpec], TrainedBaseline] = {}
        self._measured: dict[tuple[str, DataSpec, Deployment], DenseBaseline] = {}

    def get(self, model_name: str, spec: DataSpec, deployment: Deployment) -> DenseBaseline:
        """Train (or load from the cache) the dense baseline, export, deploy and measure it once per process and
        deployment; a baseline below the quality floor stops the session (WeakBaselineError)."""
        key = (model_name, spec, replace(deployment, source=""))  # the same model whichever setting asked for it
        if key not in self._measured:
            self._measured[key] = self._measure(model_name, spec, deployment)
        dense = self._measured[key]
        if dense.weak:
            raise WeakBaselineError(dense.weak)
        return dense

    def _train(self, model_name: str, spec: DataSpec) -> TrainedBaseline:
        """The trained dense model and its placed ONNX file, once per process."""
        key = (model_name, spec)
        if key not in self.trained:
            from ..baseline import baseline_key, baseline_recipe, load_or_train_baseline
            from ..threads import share_cpus_with_workers

            threads = share_cpus_with_workers(self.settings.xdist_workers)
            data = self.datasets.get(spec)
            recipe = baseline_recipe(model_name, spec.kind, self.settings.baseline_epochs)
            cache_key = baseline_key(model_name, spec, self.datasets.digest(spec), recipe, self.settings, threads)
            model, onnx, training, _ = load_or_train_baseline(model_name, data, spec, cache_key, recipe,
                                                              self.settings, self.cache, self.progress)
            onnx_path = self.settings.artifacts / "dense" / f"{slug(model_name)}-{cache_key[:16]}.onnx"
            place(onnx, onnx_path)
            self.trained[key] = TrainedBaseline(model, onnx_path, training, cache_key)
        return self.trained[key]

    def _measure(self, model_name: str, spec: DataSpec, deployment: Deployment) -> DenseBaseline:
        from ..models import count_macs, count_params, count_weights
        from ..reference import reference_key
        from ..training import evaluate

        settings = self.settings
        trained = self._train(model_name, spec)
        data = self.datasets.get(spec)
        deployed = self.deployer.deploy(trained.onnx_path, deployment, spec)
        latency_reference = self.measurer.latency_reference(deployed.xml if deployed else trained.onnx_path,
                                                            deployment.hint)
        measurement = self.measurer.measure(latency_reference.path, data, deployment.hint,
                                            compiled=latency_reference.compiled)
        # The exported model as compiled, over the whole test set: what a collapse is judged on.
        collapse_reason = deployed_eval(measurement).collapse_reason(data.num_classes)
        # stacklevel: the warnings name the line that ran the case (run <- _run <- CaseRunner.dense <- get <- here)
        if collapse_reason:
            warnings.warn(f"dense {model_name} on {spec.label} is itself collapsed: {collapse_reason}. Its "
                          f"cases are not checked for collapse; train a longer baseline "
                          f"(--prunebench-baseline-epochs)", stacklevel=6)
        layers_path = write_layer_profile(trained.model, trained.onnx_path, measurement, latency_reference.path)
        top1_torch = evaluate(trained.model, data.test_x, data.test_y).top1
        shown_precision = deployed_precision(deployment, measurement.precision)
        self.progress(f"dense {model_name} on {spec.label}: top1 {top1_torch:.2f}% in torch, "
                      f"{measurement.top1:.2f}% on {settings.device} ({shown_precision}); latency "
                      f"{measurement.median_ms:.3f} ms; baseline of {trained.training.epochs} epoch(s)")
        gap_warning = precision_gap(model_name, settings.device, shown_precision, top1_torch, measurement.top1)
        if gap_warning:
            warnings.warn(PrunebenchWarning(gap_warning), stacklevel=6)
        weak = weak_baseline(model_name, spec, measurement.top1, trained.training.epochs, settings.min_dense_top1)
        reference = self.references.settle(
            reference_key(model_name, spec.label, settings.device, deployment.precision),
            measurement.median_ms, measurement.measured_at[0])
        model = trained.model
        return DenseBaseline(model, trained.onnx_path, measurement.top1, count_params(model), count_weights(model),
                             count_macs(model), collapse_reason, str(layers_path.resolve()) if layers_path else "",
                             trained.key, latency_reference, trained.training, top1_torch, weak, reference, deployed)


def dense_floor(spec: DataSpec, configured: float | None) -> float | None:
    """--prunebench-min-dense-top1 (0 = off), else the dataset's default floor."""
    if configured is not None:
        return configured or None
    return DENSE_TOP1_FLOORS.get(spec.kind)


def weak_baseline(model_name: str, spec: DataSpec, top1: float, epochs: int, configured: float | None) -> str | None:
    """The one line that stops the session when a dense baseline is below the quality floor, else None."""
    floor = dense_floor(spec, configured)
    if floor is None or top1 >= floor:
        return None
    return (f"dense {model_name} on {spec.label} reached {top1:.2f}% top1 after {epochs} epoch(s), below the floor of "
            f"{floor:g}% (--prunebench-min-dense-top1): its pruned copies would measure nothing about pruning; train "
            f"it longer (--prunebench-baseline-epochs N, or the default recipe without that option), or lower the "
            f"floor (--prunebench-min-dense-top1 P, or off to study weak baselines)")


def precision_gap(model_name: str, device: str, precision: str, top1_torch: float, top1_device: float) -> str | None:
    """A warning when the deployed dense model is over a point less accurate than in torch, naming the precision."""
    if top1_torch - top1_device <= PRECISION_GAP_POINTS:
        return None
    return (f"dense {model_name}: top1 {top1_device:.2f}% on {device} at {precision} is "
            f"{top1_torch - top1_device:.2f} points below {top1_torch:.2f}% in torch (f32); every case is measured "
            f"at {precision} (--prunebench-precision f32 measures at torch's precision)")
