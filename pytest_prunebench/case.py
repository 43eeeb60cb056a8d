"""One case: schedule -> dense baseline -> prune + thin -> retrain -> ONNX -> device measurement -> result.

Usable without pytest: `CaseRunner(Settings()).run(load_schedule(path))`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .data import Dataset, DataSpec, parse_data_spec
from .errors import ModelError, PrunebenchError, PrunebenchWarning, ScheduleError, WeakBaselineError
from .schedule import DEPLOYMENT_KEYS, Schedule
from .settings import (
    DEFAULT_CALIBRATION,
    DEFAULT_MAX_DROP,
    Deployment,
    Settings,
    canonical_model_name,
    model_from_file_name,
)

CASE_ONNX, CASE_MODEL, CASE_DOCUMENT = "model.onnx", "model.pt", "case.json"  # a pruned case's cache entry
DEFAULT_FINE_TUNE_EPOCHS = 2  # after the last pruning/thinning epoch, when a schedule does not say
Progress = Callable[[str], None]


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "case"


@dataclass(frozen=True)
class CaseResult:
    name: str
    model: str
    dataset: str
    device: str
    schedule: str
    schedule_hash: str
    epochs: int
    top1: float
    top5: float
    top1_pruned: float
    top1_dense: float
    params: int
    params_dense: int
    weights: int
    weights_dense: int
    macs: int
    macs_dense: int
    onnx_bytes: int
    onnx_path: str
    latencies_s: tuple[float, ...]
    latency_ms: float
    latency_ms_dense: float
    throughput_fps: float
    collapse_reason: str | None  # why the pruned model counts as collapsed (EvalResult.collapse_reason)
    precision: str
    sparsities: dict[str, float]
    measured_at: tuple[float, float]
    history: tuple[dict[str, float], ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)
    pruner_kinds: dict[str, str] = field(default_factory=dict)
    pruner_rankers: dict[str, str] = field(default_factory=dict)
    structures_path: str = ""  # JSON beside the ONNX file: per pruned conv, its scores and removed structures
    device_ms: float | None = None  # the device's own compute time per inference (performance counters)
    layers_path: str = ""  # JSON beside the ONNX file: per conv / fc layer, MACs and device time
    layers_path_dense: str = ""  # the same for the dense baseline
    round_to: int = 1  # kept structures rounded up to a multiple of this
    round_to_probe: str = ""  # round_to: auto: what the device's granularity probe saw ("": round_to was given)
    artifact_cache: str = "off"  # the pruned + retrained model: "hit" (from the cache), "built", or "off"
    reached: dict[str, float] = field(default_factory=dict)  # per pruner, the sparsity its layers really reached
    top1_dense_torch: float | None = None  # the dense model in torch (f32), beside top1_dense on the device
    baseline_epochs: int = 0  # epochs the dense baseline trained
    bn_recalibration: int = 0  # training images BatchNorm statistics were re-estimated on after pruning (0: off)
    worker: str = ""  # with --prunebench-broker: the device worker that measured it, and its OpenVINO version
    worker_openvino: str = ""
    latency_ms_ref: float | None = None  # the session's reference dense median (reference.py); None: unknown
    intervals: Any = None  # intervals.LatencyIntervals: 95% intervals of the median and the speed-up
    precision_target: float | None = None  # --prunebench-rounds auto: the speed-up's half-width aimed at
    early_terminated: bool = False  # a study's pruner stopped its retraining (search.py)
    search: dict[str, Any] = field(default_factory=dict)  # study, trial, objectives ... of a searched sweep's case
    deployment: dict[str, Any] = field(default_factory=dict)  # deployment_record: precision, IR, NNCF, ...

    @property
    def collapsed(self) -> bool:
        return self.collapse_reason is not None

    @property
    def latency_speedup(self) -> float:
        return self.latency_ms_dense / self.latency_ms

    @property
    def mac_speedup(self) -> float:
        return self.macs_dense / self.macs

    @property
    def latency_ms_rel(self) -> float:
        """Drift-corrected latency: the session's reference dense median times pruned / dense from this case's own
        interleaved window (the absolute median when no reference is known)."""
        if self.latency_ms_ref is None:
            return self.latency_ms
        return self.latency_ms_ref / self.latency_speedup

    def extra_info(self) -> dict[str, Any]:
        """Plain JSON values only: pytest-benchmark stores numpy scalars as 'UNSERIALIZABLE[...]'."""
        info: dict[str, Any] = {
            "model": self.model, "dataset": self.dataset, "device": self.device, "schedule": self.schedule,
            "schedule_hash": self.schedule_hash, "epochs": int(self.epochs),
            "top1": float(self.top1), "top5": float(self.top5), "top1_pruned": float(self.top1_pruned),
            "top1_dense": float(self.top1_dense), "params": int(self.params), "params_dense": int(self.params_dense),
            "weights": int(self.weights), "weights_dense": int(self.weights_dense),
            "macs": int(self.macs), "macs_dense": int(self.macs_dense),
            "onnx_bytes": int(self.onnx_bytes), "onnx_path": self.onnx_path,
            "latency_ms": float(self.latency_ms), "latency_ms_dense": float(self.latency_ms_dense),
            "throughput_fps": float(self.throughput_fps), "latency_speedup": float(self.latency_speedup),
            "mac_speedup": float(self.mac_speedup), "collapsed": bool(self.collapsed),
            "collapse_reason": self.collapse_reason, "precision": self.precision,
            "measured_at": [float(t) for t in self.measured_at], "retrained_epochs": len(self.history),
            "structures_path": self.structures_path, "layers_path": self.layers_path,
            "layers_path_dense": self.layers_path_dense,
            "device_ms": None if self.device_ms is None else float(self.device_ms),
            "e2e_ms": float(self.latency_ms), "round_to": self.round_to,
            "round_to_auto": bool(self.round_to_probe), "round_to_probe": self.round_to_probe,
            "artifact_cache": self.artifact_cache,
            "top1_dense_torch": None if self.top1_dense_torch is None else float(self.top1_dense_torch),
            "baseline_epochs": int(self.baseline_epochs), "bn_recalibration": int(self.bn_recalibration),
            "latency_ms_rel": float(self.latency_ms_rel),
            "latency_ms_ref": None if self.latency_ms_ref is None else float(self.latency_ms_ref),
            "early_terminated": bool(self.early_terminated),
        }
        if self.intervals is not None:
            info.update(latency_ms_ci=self.intervals.latency_ms.to_json(),
                        latency_speedup_ci=self.intervals.speedup.to_json())
            if self.latency_ms_ref is not None:
                info["latency_ms_rel_ci"] = self.intervals.speedup.inverted(self.latency_ms_ref).to_json()
            precision = self.intervals.speedup.half_width(self.latency_speedup)
            info.update(latency_precision=float(precision), latency_precision_target=self.precision_target,
                        latency_precision_met=None if self.precision_target is None
                        else bool(precision <= self.precision_target))
        info["latency_rounds"] = len(self.latencies_s)
        if self.worker:
            info.update(worker=self.worker, worker_openvino=self.worker_openvino)
        info.update({f"seconds.{stage}": float(seconds) for stage, seconds in self.seconds.items()})
        for pruner, sparsity in self.sparsities.items():
            info[f"sparsity.{pruner}"] = float(sparsity)
        info.update({f"reached.{pruner}": float(sparsity) for pruner, sparsity in self.reached.items()})
        info.update({f"kind.{pruner}": kind for pruner, kind in self.pruner_kinds.items()})
        info.update({f"ranker.{pruner}": ranker for pruner, ranker in self.pruner_rankers.items()})
        info.update(self.search)
        info.update(self.deployment)  # its `precision` (int8) over the compiled hint's
        return info


@dataclass(frozen=True)
class _Dense:
    model: Any
    onnx_path: Path
    top1: float
    params: int
    weights: int
    macs: int
    collapse_reason: str | None  # a dense model at chance: its pruned cases cannot collapse "because of" pruning
    layers_path: str  # its per-layer device times ("" without counters)
    key: str  # its artifact cache key: part of every pruned model's key
    compiled: Any  # compiled for latency once per process: every case times it again, interleaved
    training: Any  # baseline.BaselineTraining: how it was trained
    top1_torch: float  # its test top1 in torch, beside `top1` on the device
    weak: str | None  # why it is below the session's quality floor (--prunebench-min-dense-top1), or None
    reference: Any  # reference.Reference: the session's dense median its cases' drift-corrected latencies use
    deployed: Any = None  # quantize.Deployed: its IR (f16, int8); None: the ONNX file is what is measured


class CaseRunner:
    """Runs cases; keeps datasets, dense baselines and their measurements for the life of the process."""

    def __init__(self, settings: Settings, progress: Progress | None = None) -> None:
        from .cache import ArtifactCache
        from .granularity import SessionSteps
        from .lock import HostGate, default_gate_path, shares_host
        from .reference import ReferenceStore

        self.settings = settings
        self.progress: Progress = progress or (lambda _message: None)
        self.cache = ArtifactCache(None if settings.no_cache else settings.cache, settings.lock_timeout, self.progress)
        self._datasets: dict[DataSpec, Dataset] = {}
        self._data_digests: dict[DataSpec, str] = {}
        self._dense: dict[tuple[str, DataSpec, Deployment], _Dense] = {}
        self._baselines: dict[tuple[str, DataSpec], tuple[Any, Path, Any, str]] = {}
        gated = settings.host_gate == "on" or (settings.host_gate == "auto" and shares_host(settings.device))
        self.gate = HostGate(default_gate_path(), settings.lock_timeout) if gated else None
        self._remote: Any = None  # broker.RemoteMeasurer, with --prunebench-broker
        self.references = ReferenceStore(settings.reference_dir)  # the session's reference dense medians
        self.steps = SessionSteps(settings.reference_dir)  # round_to: auto, probed once per device and precision

    # -- resolution -------------------------------------------------------------------------------------------

    def model_name(self, schedule: Schedule) -> str:
        name = self.settings.model or schedule.model_hint()
        if not name:
            model = model_from_file_name(schedule.path) or "resnet56"
            raise ScheduleError(schedule.path, "prunebench.model", f"the schedule names no model: add "
                                f"`prunebench: {{model: {model}}}` or a thinning extension `arch:`, or pass "
                                f"--prunebench-model {model}")
        return canonical_model_name(name)

    def data_spec(self, schedule: Schedule) -> DataSpec:
        if self.settings.data is not None:
            return self.settings.data
        if schedule.dataset is None:
            return DataSpec("digits")
        try:
            return parse_data_spec(schedule.dataset)
        except ValueError as exc:
            raise ScheduleError(schedule.path, "prunebench.dataset", str(exc)) from None

    def epochs(self, schedule: Schedule) -> int:
        if self.settings.epochs is not None:
            return self.settings.epochs
        if schedule.epochs is not None:
            return schedule.epochs
        return schedule.pruning_horizon() + DEFAULT_FINE_TUNE_EPOCHS

    def dataset(self, spec: DataSpec) -> Dataset:
        from .data import load_dataset

        if spec not in self._datasets:
            self._datasets[spec] = load_dataset(spec)
        return self._datasets[spec]

    # -- stages -----------------------------------------------------------------------------------------------

    def deployment(self, schedule: Schedule | None) -> Deployment:
        """How a case deploys its models: the option first, then the schedule, then --ncs's f16, then the device's
        own precision; calibration and max_drop likewise (option, schedule, default)."""
        settings = self.settings
        if settings.precision is not None:
            precision, source = settings.precision, "option"
        elif schedule is not None and schedule.precision is not None:
            precision, source = schedule.precision, "schedule"
        elif settings.default_precision is not None:
            precision, source = settings.default_precision, "ncs"
        else:
            precision, source = None, "device"
        calibration = settings.calibration or (schedule and schedule.calibration) or DEFAULT_CALIBRATION
        max_drop = settings.max_drop or (schedule and schedule.max_drop) or DEFAULT_MAX_DROP
        return Deployment(precision, calibration, max_drop, source)

    def check_deployment(self, deployment: Deployment, schedule: Schedule | None, data: Dataset) -> None:
        """Before any training: NNCF importable, a calibration set the training split can hold."""
        if not deployment.quantized:
            return
        from .quantize import calibration_problem, nncf_version

        nncf_version()
        problem = calibration_problem(deployment, len(data.train_x))
        if problem is None:
            return
        if self.settings.calibration is None and schedule is not None and schedule.calibration:
            raise ScheduleError(schedule.path, "prunebench.calibration", problem)
        where = "--prunebench-calibration" if self.settings.calibration else "the default calibration of"
        raise PrunebenchError(f"{where} {problem}")

    def dense(self, model_name: str, spec: DataSpec, deployment: Deployment | None = None) -> _Dense:
        """Train (or load from the cache) the dense baseline, export, deploy and measure it once per process and
        deployment."""
        deployment = deployment or self.deployment(None)
        key = (model_name, spec, replace(deployment, source=""))  # the same model whichever setting asked for it
        if key not in self._dense:
            self._dense[key] = self._measure_dense(model_name, spec, deployment)
        dense = self._dense[key]
        if dense.weak:
            raise WeakBaselineError(dense.weak)
        return dense

    def _baseline(self, model_name: str, spec: DataSpec) -> tuple[Any, Path, Any, str]:
        """(the trained dense model, its placed ONNX file, how it trained, its cache key), once per process."""
        key = (model_name, spec)
        if key not in self._baselines:
            from .baseline import baseline_key, baseline_recipe, load_or_train_baseline
            from .threads import share_cpus_with_workers

            threads = share_cpus_with_workers(self.settings.xdist_workers)
            data = self.dataset(spec)
            recipe = baseline_recipe(model_name, spec.kind, self.settings.baseline_epochs)
            cache_key = baseline_key(model_name, spec, self.data_digest(spec), recipe, self.settings, threads)
            model, onnx, training, _ = load_or_train_baseline(model_name, data, spec, cache_key, recipe,
                                                              self.settings, self.cache, self.progress)
            onnx_path = self.settings.artifacts / "dense" / f"{slug(model_name)}-{cache_key[:16]}.onnx"
            _place(onnx, onnx_path)
            self._baselines[key] = (model, onnx_path, training, cache_key)
        return self._baselines[key]

    def _measure_dense(self, model_name: str, spec: DataSpec, deployment: Deployment) -> _Dense:
        from . import device
        from .lock import cpu_work
        from .models import count_macs, count_params, count_weights
        from .reference import reference_key
        from .training import evaluate

        model, onnx_path, training, cache_key = self._baseline(model_name, spec)
        data = self.dataset(spec)
        deployed = self.deploy(onnx_path, deployment, spec)
        model_path = deployed.xml if deployed else onnx_path
        if self.settings.broker:  # the worker compiles it (once per worker): the reference travels as its file
            compiled: Any = model_path
        else:
            with cpu_work():  # compiled once: its own measurement and every case's interleaved timing use it
                compiled = device.compile_for_latency(model_path, self.settings.device, deployment.hint)
        measurement = self._measure(model_path, data, deployment, compiled=compiled)
        # The exported model as compiled, over the whole test set: what a collapse is judged on.
        collapse_reason = _deployed_eval(measurement).collapse_reason(data.num_classes)
        if collapse_reason:
            warnings.warn(f"dense {model_name} on {spec.label} is itself collapsed: {collapse_reason}. Its "
                          f"cases are not checked for collapse; train a longer baseline "
                          f"(--prunebench-baseline-epochs)", stacklevel=5)
        layers_path = _write_layer_profile(model, onnx_path, measurement, model_path)
        top1_torch = evaluate(model, data.test_x, data.test_y).top1
        shown_precision = str(deployment.precision if deployment.quantized else measurement.precision)
        self.progress(f"dense {model_name} on {spec.label}: top1 {top1_torch:.2f}% in torch, "
                      f"{measurement.top1:.2f}% on {self.settings.device} ({shown_precision}); latency "
                      f"{measurement.median_ms:.3f} ms; baseline of {training.epochs} epoch(s)")
        gap_warning = precision_gap(model_name, self.settings.device, shown_precision, top1_torch, measurement.top1)
        if gap_warning:
            warnings.warn(PrunebenchWarning(gap_warning), stacklevel=5)
        weak = weak_baseline(model_name, spec, measurement.top1, training.epochs, self.settings.min_dense_top1)
        reference = self.references.settle(
            reference_key(model_name, spec.label, self.settings.device, deployment.precision),
            measurement.median_ms, measurement.measured_at[0])
        return _Dense(model, onnx_path, measurement.top1, count_params(model), count_weights(model),
                      count_macs(model), collapse_reason, str(layers_path.resolve()) if layers_path else "",
                      cache_key, compiled, training, top1_torch, weak, reference, deployed)

    def deploy(self, onnx_path: Path, deployment: Deployment, spec: DataSpec) -> Any:
        """The deployed IR of an exported model (quantize.Deployed, beside it), or None: the ONNX file itself."""
        if not deployment.converted:
            return None
        from .quantize import load_or_convert

        target = onnx_path.with_name(f"{onnx_path.stem}.{deployment.precision}.xml")
        return load_or_convert(self.cache, onnx_path, target, deployment, self.dataset(spec), self.data_digest(spec),
                               self.settings.seed, self.progress)

    def data_digest(self, spec: DataSpec) -> str:
        if spec not in self._data_digests:
            from .baseline import dataset_digest

            self._data_digests[spec] = dataset_digest(self.dataset(spec))
        return self._data_digests[spec]

    def _measure(self, model_path: Path, data: Dataset, deployment: Deployment, reference: Any = None,
                 compiled: Any = None) -> Any:
        from . import device
        from .lock import exclusive_measurement

        images = data.test_x.numpy()
        labels = data.test_y.numpy()
        if self.settings.broker:  # no local lock: the worker takes its device's lock and its host's gate
            if self._remote is None:
                from .broker import RemoteMeasurer

                self._remote = RemoteMeasurer(self.settings.broker)
            return self._remote.measure(model_path, reference, images, labels, self.settings, deployment.hint)
        with exclusive_measurement(self.settings.device, self.settings.lock_path, self.settings.lock_timeout,
                                   self.gate):
            return device.measure(model_path, self.settings.device, images, labels, deployment.hint,
                                  self.settings.latency_rounds, self.settings.warmup, reference, compiled)

    @contextlib.contextmanager
    def host_work(self) -> Iterator[None]:
        """A CPU-heavy section outside a case (e.g. writing its W&B run): waits while another process measures."""
        from .lock import cpu_work, gate_host_work

        with gate_host_work(self.gate), cpu_work():
            yield

    def run(self, schedule: Schedule, name: str | None = None, stop_on_collapse: bool = True,
            on_epoch: Callable[[int, float], bool] | None = None) -> CaseResult:
        """Run one case; a model that collapses when pruned is not retrained (`stop_on_collapse`). `on_epoch`
        (a study's pruner) sees every retraining epoch's top1 and may end retraining early."""
        from .lock import gate_host_work
        from .schedule.lr_trial import check_lr_schedulers

        check_lr_schedulers(schedule)  # what torch refuses, before anything trains (parsing imports no torch)
        with gate_host_work(self.gate):
            return self._run(schedule, name or schedule.name, stop_on_collapse, on_epoch)

    def _run(self, schedule: Schedule, name: str, stop_on_collapse: bool,
             on_epoch: Callable[[int, float], bool] | None = None) -> CaseResult:
        from .models import build_model
        from .pruning import check_layers
        from .threads import share_cpus_with_workers

        share_cpus_with_workers(self.settings.xdist_workers)
        if self.settings.round_to is not None:
            schedule = replace(schedule, round_to=self.settings.round_to)
        schedule, probe = self._resolve_round_to(schedule, name)
        for message in schedule.warnings:
            warnings.warn(message, stacklevel=3)
        laps = _Laps()
        model_name, spec = self.model_name(schedule), self.data_spec(schedule)
        self._check_artifacts_dir()
        data = self.dataset(spec)
        try:
            check_layers(schedule, build_model(model_name, data.num_classes), model_name)  # before any training
        except ModelError as exc:
            if self.settings.model is None:  # the schedule named it
                raise ScheduleError(schedule.path, "model", str(exc)) from None
            raise
        deployment = self.deployment(schedule)
        self.check_deployment(deployment, schedule, data)
        dense = self.dense(model_name, spec, deployment)
        laps.lap("dense")
        epochs = self.epochs(schedule)
        active = len(schedule.active().pruners)
        pruners = f"{active}" if active == len(schedule.pruners) else f"{active} of {len(schedule.pruners)}"
        self.progress(f"{name}: {pruners} pruner(s) on {model_name}, {epochs} retraining epoch(s)")
        stop = stop_on_collapse and dense.collapse_reason is None
        pruned = self._pruned(schedule, dense, data, epochs, stop, name, laps, on_epoch)
        onnx_path = self.settings.artifacts / slug(name) / f"{slug(name)}.onnx"
        onnx_bytes = _place(pruned.onnx, onnx_path)
        structures_path = onnx_path.with_suffix(".structures.json")
        structures_path.write_text(json.dumps(pruned.structures), encoding="utf-8")
        laps.lap("artifacts")
        deployed = self.deploy(onnx_path, deployment, spec)
        if deployed is not None:
            laps.lap("deploy")
        model_path = deployed.xml if deployed else onnx_path
        self.progress(f"{name}: measuring on {self.settings.device} ({self.settings.latency_rounds} rounds, dense "
                      f"interleaved)")
        measurement = self._measure(model_path, data, deployment, reference=dense.compiled)
        laps.lap("measure", measurement.seconds)
        if pruned.eval is None:  # 0 epochs: the deployed model is the pruned one, already evaluated on the device
            pruned = replace(pruned, eval=_deployed_eval(measurement))
        model = pruned.model
        layers_path = _write_layer_profile(model, onnx_path, measurement, model_path)
        laps.lap("layers")
        collapse_reason = None if dense.collapse_reason else pruned.eval.collapse_reason(data.num_classes)
        result = self._result(name, schedule, model, dense, epochs, pruned, measurement, onnx_path, onnx_bytes,
                              spec.label, model_name, collapse_reason, laps.seconds)
        result = replace(result, structures_path=str(structures_path.resolve()),
                         layers_path=str(layers_path.resolve()) if layers_path else "",
                         early_terminated=pruned.early_terminated, round_to_probe=probe,
                         deployment=deployment_record(deployment, measurement.precision, deployed, dense.deployed))
        result = replace(result, precision=result.deployment["precision"])
        self.progress(f"{name}: top1 {result.top1:.2f}% (dense {result.top1_dense:.2f}%), latency "
                      f"{result.latency_ms:.3f} ms ({result.latency_speedup:.2f}x), MACs {result.mac_speedup:.2f}x"
                      + (" [collapsed]" if result.collapsed else ""))
        return result

    def _resolve_round_to(self, schedule: Schedule, name: str) -> tuple[Schedule, str]:
        """`round_to: auto`: the step the device's granularity probe measured (once per session), and what the
        probe saw; any other round_to as it is, with ""."""
        from .granularity import AUTO_ROUND_TO
        from .lock import exclusive_measurement

        if schedule.round_to != AUTO_ROUND_TO:
            return schedule, ""
        if self.settings.broker:  # the probe times the device, which is behind a worker on another host
            device = self.settings.device
            raise ScheduleError(schedule.path, "prunebench.round_to",
                                f"auto probes {device} in this process, which --prunebench-broker measures on a "
                                f"device worker: run `prunebench granularity --device {device}` on the worker's "
                                f"host and give its step (round_to: N or --prunebench-round-to N)")
        settings = self.settings
        # The probe times float convs: at int8 it measures the device's float precision (the hint is None).
        hint = self.deployment(schedule).hint
        probed = self.steps.settled(settings.device, hint)
        if probed is None:
            self.progress(f"{name}: round_to auto: probing the channel granularity of {settings.device}")
            probed, fresh = self.steps.step(settings.device, hint, lambda: exclusive_measurement(
                settings.device, settings.lock_path, settings.lock_timeout, self.gate))
            self.progress(f"{name}: round_to auto -> {probed.step} ({probed.found}"
                          + ("" if fresh else f"; probed by {probed.by}") + ")")
        return replace(schedule, round_to=probed.step), probed.found

    def _check_artifacts_dir(self) -> None:
        """Before any training: the ONNX files and per-case JSON must have somewhere to go."""
        folder = self.settings.artifacts
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PrunebenchError(f"--prunebench-artifacts {folder}: not a directory this run can write "
                                  f"({exc.strerror or exc}); pass --prunebench-artifacts=DIR with a writable "
                                  f"directory") from None

    def case_key(self, schedule: Schedule, baseline_key: str, epochs: int, stop_on_collapse: bool) -> str:
        """What determines the pruned + retrained model: the baseline's key, the schedule's pruning content (not
        its name, path, comments or thresholds), the resolved epochs and learning rate, the seed."""
        from .cache import artifact_key

        content = schedule.content()
        for ignored in ("name", "path", "warnings", "thresholds", "model", "dataset", "epochs", "lr"):
            content.pop(ignored)
        for deployed in DEPLOYMENT_KEYS:  # how the model is deployed, not the model: the deployed cache's key
            content.pop(deployed, None)
        return artifact_key("cases", {"baseline": baseline_key, "schedule": content, "epochs": epochs,
                                      "lr": schedule.lr or self.settings.lr, "seed": self.settings.seed,
                                      "stop_on_collapse": stop_on_collapse,
                                      "bn_recalibration": self.settings.bn_recalibration})

    def _pruned(self, schedule: Schedule, dense: _Dense, data: Dataset, epochs: int, stop_on_collapse: bool,
                name: str, laps: _Laps, on_epoch: Callable[[int, float], bool] | None = None) -> _Pruned:
        """Prune, thin, retrain and export, or take all of that from the artifact cache. A case whose retraining
        a study's pruner may stop (`on_epoch`) is built afresh and not cached: its model is not the one its
        epochs' key names."""
        from .checkpoint import load_model, save_model
        from .export import export_onnx
        from .models import build_model
        from .pruning import structures_document
        from .training import EvalResult

        model_name = self.model_name(schedule)

        def build(directory: Path) -> None:
            model = copy.deepcopy(dense.model)
            eval_, history, masks, stopped = self._prune_and_retrain(model, schedule, data, epochs, stop_on_collapse,
                                                                     name, on_epoch)
            laps.lap("prune_retrain")
            export_onnx(model, directory / CASE_ONNX)
            save_model(model, directory / CASE_MODEL)
            structures = structures_document(list(masks), {p.name: p.ranker for p in schedule.pruners})
            document = {"pruned_eval": eval_ and asdict(eval_), "history": list(history), "structures": structures,
                        "early_terminated": stopped}
            (directory / CASE_DOCUMENT).write_text(json.dumps(document), encoding="utf-8")
            laps.lap("export")

        def load(directory: Path) -> _Pruned:
            document = json.loads((directory / CASE_DOCUMENT).read_text(encoding="utf-8"))
            model = load_model(build_model(model_name, data.num_classes), directory / CASE_MODEL)
            pruned_eval = document["pruned_eval"] and EvalResult(**document["pruned_eval"])
            return _Pruned(pruned_eval, tuple(document["history"]), document["structures"], model,
                           (directory / CASE_ONNX).read_bytes(), bool(document.get("early_terminated")))

        if on_epoch is not None:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="prunebench-trial-") as folder:
                build(Path(folder))
                return load(Path(folder))
        key = self.case_key(schedule, dense.key, epochs, stop_on_collapse)
        describe = {"case": name, "schedule": schedule.name, "model": model_name, "epochs": epochs}
        pruned, hit = self.cache.fetch("cases", key, describe, build, load)
        if hit:
            laps.lap("cache_load")
            self.progress(f"{name}: pruned and retrained model from the cache ({self.cache.entry_path('cases', key)})")
        return replace(pruned, cache="hit" if hit else "built" if self.cache.root else "off")

    def _prune_and_retrain(self, model: Any, schedule: Schedule, data: Dataset, epochs: int, stop_on_collapse: bool,
                           name: str, on_epoch: Callable[[int, float], bool] | None = None
                           ) -> tuple[Any, tuple[dict[str, float], ...], tuple[Any, ...], bool]:
        """(evaluation right after pruning, retraining history, masks in firing order). With 0 epochs the
        evaluation is None: the exported model is the pruned one, and its measurement on the device evaluates it
        (a torch pass over the test set would double the accuracy work of a rapid-pruning case)."""
        from .pruning import probe_images, prune_to_final
        from .training import TrainConfig, evaluate, recalibrate_after_pruning, retrain

        recalibration = self.settings.bn_recalibration
        if epochs == 0:
            masks = prune_to_final(model, schedule, probe_images(data.train_x, self.settings.seed))
            recalibrate_after_pruning(model, data.train_x, recalibration, self.settings.seed)
            return None, (), tuple(masks), False
        config = TrainConfig(epochs=epochs, lr=schedule.lr or self.settings.lr, seed=self.settings.seed,
                             stop_on_collapse=stop_on_collapse, recalibration_images=recalibration)
        outcome = retrain(model, schedule, data, config, lambda m: self.progress(f"{name}: {m}"), on_epoch)
        pruned_eval = outcome.pruned_eval or evaluate(model, data.test_x, data.test_y)
        return (pruned_eval, tuple(vars(record) for record in outcome.history), tuple(outcome.masks),
                outcome.early_terminated)

    def _result(self, name: str, schedule: Schedule, model: Any, dense: _Dense, epochs: int, pruned: _Pruned,
                measurement: Any, onnx_path: Path, onnx_bytes: int, dataset: str, model_name: str,
                collapse_reason: str | None, seconds: dict[str, float]) -> CaseResult:
        from .intervals import LatencyIntervals
        from .models import count_macs, count_params, count_weights
        from .pruning import layer_sizes, reached_sparsity

        return CaseResult(
            name=name, model=model_name, dataset=dataset, device=self.settings.device, schedule=schedule.name,
            schedule_hash=schedule.semantic_hash(), epochs=epochs, top1=measurement.top1, top5=measurement.top5,
            top1_pruned=pruned.eval.top1, top1_dense=dense.top1, params=count_params(model),
            params_dense=dense.params, weights=count_weights(model), weights_dense=dense.weights,
            macs=count_macs(model), macs_dense=dense.macs, onnx_bytes=onnx_bytes, onnx_path=str(onnx_path.resolve()),
            latencies_s=measurement.latencies_s, latency_ms=measurement.median_ms,
            latency_ms_dense=measurement.reference_median_ms, throughput_fps=measurement.throughput_fps,
            collapse_reason=collapse_reason, precision=measurement.precision,
            sparsities={p.name: p.desired_sparsity for p in schedule.pruners if p.splicing is None},  # no target
            measured_at=measurement.measured_at,
            history=pruned.history, seconds=seconds, pruner_kinds={p.name: p.kind for p in schedule.pruners},
            pruner_rankers={p.name: p.ranker for p in schedule.pruners}, device_ms=measurement.device_ms,
            round_to=schedule.rounding(),
            layers_path_dense=dense.layers_path, artifact_cache=pruned.cache,
            worker=measurement.worker, worker_openvino=measurement.worker_openvino,
            reached=reached_sparsity(model, schedule, layer_sizes(dense.model, schedule)),
            top1_dense_torch=dense.top1_torch, baseline_epochs=dense.training.epochs,
            bn_recalibration=self.settings.bn_recalibration, latency_ms_ref=dense.reference.latency_ms,
            intervals=LatencyIntervals.of(measurement.latencies_s, measurement.reference_latencies_s),
            precision_target=getattr(self.settings.latency_rounds, "target", None),
        )


# Below these, a dense baseline fails the session (--prunebench-min-dense-top1): its pruned copies would say
# nothing about pruning. None: no floor (synthetic data is for smoke tests, with baselines untrained on purpose).
DENSE_TOP1_FLOORS: dict[str, float | None] = {"digits": 90.0, "cifar10": 80.0, "synthetic": None}
PRECISION_GAP_POINTS = 1.0  # a dense model this much less accurate on the device than in torch is a warning


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


def deployment_record(deployment: Deployment, compiled: str, deployed: Any, dense_deployed: Any) -> dict[str, Any]:
    """A record's deployment fields: `precision` is the deployed one (int8 for a quantized model, else what the
    device compiled at), `inference_precision` what the device compiled the float parts at, `precision_source`
    where the precision came from; a converted model adds its IR (`ir_path`, `ir_bytes`), and a quantized one
    NNCF's version, its calibration images, its top1 before quantization and its layers kept in float."""
    record: dict[str, Any] = {"precision": deployment.precision if deployment.quantized else compiled,
                              "inference_precision": compiled, "precision_source": deployment.source}
    if deployed is not None:
        record.update(deployed.record())
    if deployment.precision == "int8-accuracy":
        record["max_drop"] = deployment.max_drop
    if dense_deployed is not None and dense_deployed.top1_float is not None:
        record["top1_dense_float"] = dense_deployed.top1_float
    return record


def _write_layer_profile(model: Any, onnx_path: Path, measurement: Any, measured: Path) -> Path | None:
    """Per conv / fc layer: MACs, device time and share, beside the measured model file (the ONNX file, or its
    deployed IR: OpenVINO keeps the ONNX layer names through conversion); None without counters."""
    from .layercost import layer_profile
    from .lock import cpu_work

    if measurement.counters is None:
        return None
    with cpu_work():
        profile = layer_profile(model, onnx_path, measurement.counters, measurement.median_ms)
    return profile.write(measured.with_suffix(".layers.json"))


def _place(content: bytes, target: Path) -> int:
    """Write a cached file where the record points (a later `prunebench cache prune` must not break records);
    returns its size in bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    partial.write_bytes(content)
    os.replace(partial, target)
    return len(content)


def _deployed_eval(measurement: Any) -> Any:
    """The exported model as compiled, over the whole test set, as a training.EvalResult (no loss)."""
    from .training import EvalResult

    return EvalResult(measurement.top1, measurement.top5, math.nan, measurement.distinct_predictions)


@dataclass(frozen=True)
class _Pruned:
    eval: Any  # training.EvalResult right after pruning, before retraining; None: the measurement's (0 epochs)
    history: tuple[dict[str, float], ...]
    structures: dict[str, Any]  # pruning.structures_document: per pruned conv, scores and removed structures
    model: Any  # the thinned, retrained model
    onnx: bytes  # its ONNX file, read from the cache entry under the entry's lock
    early_terminated: bool = False
    cache: str = "off"


class _Laps:
    """Wall time per stage, for the record's `seconds`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, stage: str, parts: dict[str, float] | None = None) -> None:
        """The time since the last lap; `parts` (a breakdown of this stage) are kept as `stage.part`."""
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._clock, 3)
        self.seconds.update({f"{stage}.{part}": round(seconds, 3) for part, seconds in (parts or {}).items()})
        self._clock = now
