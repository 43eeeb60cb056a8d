"""CaseRunner: one case through its stages, each the job of one object of this package."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..data import Dataset, DataSpec
from ..schedule import Schedule
from ..settings import Deployment, Settings
from . import resolution
from .artifacts import check_writable, place_case
from .dense import DenseBaseline, DenseBaselines
from .deployment import Deployer, deployment_record
from .measurement import Measurer, deployed_eval, write_layer_profile
from .outcome import Laps, MeasuredCase
from .pruned import OnEpoch, PrunedModels, case_key
from .resolution import Datasets, Progress
from .result import CaseResult

if TYPE_CHECKING:
    from ..quantize import Deployed


class CaseRunner:
    """Runs cases; keeps datasets, dense baselines and their measurements for the life of the process."""

    def __init__(self, settings: Settings, progress: Progress | None = None) -> None:
        from ..cache import ArtifactCache
        from ..granularity import SessionSteps

        self.settings = settings
        self.progress: Progress = progress or (lambda _message: None)
        self.cache = ArtifactCache(None if settings.no_cache else settings.cache, settings.lock_timeout, self.progress)
        self.datasets = Datasets()
        self.measurer = Measurer(settings)  # holds the host gate, and the broker's measurer with one
        self.deployer = Deployer(settings, self.cache, self.datasets, self.progress)
        self.baselines = DenseBaselines(settings, self.cache, self.datasets, self.deployer, self.measurer,
                                        self.progress)
        self.pruned = PrunedModels(settings, self.cache, self.progress)
        self.steps = SessionSteps(settings.reference_dir)  # round_to: auto, probed once per device and precision

    # -- resolution (also for scripts that run parts of a case: benchmarks/) ---------------------------------------

    def model_name(self, schedule: Schedule) -> str:
        return resolution.model_name(self.settings, schedule)

    def data_spec(self, schedule: Schedule) -> DataSpec:
        return resolution.data_spec(self.settings, schedule)

    def epochs(self, schedule: Schedule) -> int:
        return resolution.epochs(self.settings, schedule)

    def dataset(self, spec: DataSpec) -> Dataset:
        return self.datasets.get(spec)

    def data_digest(self, spec: DataSpec) -> str:
        return self.datasets.digest(spec)

    def deployment(self, schedule: Schedule | None) -> Deployment:
        """How a case deploys its models (Deployer.resolve)."""
        return self.deployer.resolve(schedule)

    def check_deployment(self, deployment: Deployment, schedule: Schedule | None, data: Dataset) -> None:
        self.deployer.check(deployment, schedule, data)

    def deploy(self, onnx_path: Path, deployment: Deployment, spec: DataSpec) -> Deployed | None:
        return self.deployer.deploy(onnx_path, deployment, spec)

    def dense(self, model_name: str, spec: DataSpec, deployment: Deployment | None = None) -> DenseBaseline:
        """The dense baseline, trained, deployed and measured once per process and deployment."""
        return self.baselines.get(model_name, spec, deployment or self.deployment(None))

    def case_key(self, schedule: Schedule, baseline_key: str, epochs: int, stop_on_collapse: bool) -> str:
        return case_key(self.settings, schedule, baseline_key, epochs, stop_on_collapse)

    def host_work(self) -> contextlib.AbstractContextManager[None]:
        """A CPU-heavy section outside a case (e.g. writing its W&B run): waits while another process measures."""
        return self.measurer.host_work()

    def _resolve_round_to(self, schedule: Schedule, name: str) -> tuple[Schedule, str]:
        return resolution.resolve_round_to(self.settings, schedule, name, self.deployment(schedule).hint,
                                           self.steps, self.measurer.host_gate, self.progress)

    # -- the case --------------------------------------------------------------------------------------------------

    def run(self, schedule: Schedule, name: str | None = None, stop_on_collapse: bool = True,
            on_epoch: OnEpoch | None = None) -> CaseResult:
        """Run one case; a model that collapses when pruned is not retrained (`stop_on_collapse`). `on_epoch`
        (a study's pruner) sees every retraining epoch's top1 and may end retraining early."""
        from ..lock import use_host_gate
        from ..schedule.lr_trial import check_lr_schedulers

        check_lr_schedulers(schedule)  # what torch refuses, before anything trains (parsing imports no torch)
        with use_host_gate(self.measurer.host_gate):
            return self._run(schedule, name or schedule.name, stop_on_collapse, on_epoch)

    def _run(self, schedule: Schedule, name: str, stop_on_collapse: bool, on_epoch: OnEpoch | None) -> CaseResult:
        from ..threads import share_cpus_with_workers

        settings = self.settings
        share_cpus_with_workers(settings.xdist_workers)

        # -- resolve: round_to, model, data and deployment, each checked before anything trains --------------------
        if settings.round_to is not None:
            schedule = replace(schedule, round_to=settings.round_to)
        schedule, probe = self._resolve_round_to(schedule, name)
        for message in schedule.warnings:
            warnings.warn(message, stacklevel=3)
        laps = Laps()
        model_name, spec = self.model_name(schedule), self.data_spec(schedule)
        check_writable(settings.artifacts)
        data = self.dataset(spec)
        resolution.check_model_layers(settings, schedule, model_name, data.num_classes)
        deployment = self.deployment(schedule)
        self.check_deployment(deployment, schedule, data)

        # -- the dense baseline: trained or cached, deployed and measured once per process -------------------------
        dense = self.dense(model_name, spec, deployment)
        laps.lap("dense")

        # -- the pruned model: pruned, thinned, retrained and exported, or from the artifact cache -----------------
        epochs = self.epochs(schedule)
        active = len(schedule.active().pruners)
        pruners = f"{active}" if active == len(schedule.pruners) else f"{active} of {len(schedule.pruners)}"
        self.progress(f"{name}: {pruners} pruner(s) on {model_name}, {epochs} retraining epoch(s)")
        stop = stop_on_collapse and dense.collapse_reason is None
        pruned = self.pruned.get(schedule, model_name, dense, data, epochs, stop, name, laps, on_epoch)
        files = place_case(settings.artifacts, name, pruned.onnx, pruned.structures)
        laps.lap("artifacts")

        # -- deployed and measured on the device, interleaved with the dense model ---------------------------------
        deployed = self.deploy(files.onnx_path, deployment, spec)
        if deployed is not None:
            laps.lap("deploy")
        model_path = deployed.xml if deployed else files.onnx_path
        self.progress(f"{name}: measuring on {settings.device} ({settings.latency_rounds} rounds, dense "
                      f"interleaved)")
        measurement = self.measurer.measure(model_path, data, deployment.hint, reference=dense.latency_reference)
        laps.lap("measure", measurement.seconds)
        layers_path = write_layer_profile(pruned.model, files.onnx_path, measurement, model_path)
        laps.lap("layers")

        # -- the result --------------------------------------------------------------------------------------------
        # 0 epochs: the deployed model is the pruned one, already evaluated on the device
        pruned_eval = deployed_eval(measurement) if pruned.eval is None else pruned.eval
        collapse_reason = None if dense.collapse_reason else pruned_eval.collapse_reason(data.num_classes)
        result = MeasuredCase(
            name=name, schedule=schedule, model_name=model_name, dataset=spec.label, epochs=epochs, dense=dense,
            pruned=pruned, pruned_eval=pruned_eval, collapse_reason=collapse_reason, files=files,
            layers_path=layers_path, measurement=measurement, round_to_probe=probe,
            deployment=deployment_record(deployment, measurement.precision, deployed, dense.deployed),
        ).result(settings, laps.seconds)
        self.progress(f"{name}: top1 {result.top1:.2f}% (dense {result.top1_dense:.2f}%), latency "
                      f"{result.latency_ms:.3f} ms ({result.latency_speedup:.2f}x), MACs {result.mac_speedup:.2f}x"
                      + (" [collapsed]" if result.collapsed else ""))
        return result
