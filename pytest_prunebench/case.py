"""One case: schedule -> dense baseline -> prune + thin -> retrain -> ONNX -> device measurement -> result.

Usable without pytest: `CaseRunner(Settings()).run(load_schedule(path))`.
"""

from __future__ import annotations

import copy
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data import Dataset, DataSpec, parse_data_spec
from .errors import ScheduleError
from .schedule import Schedule
from .settings import Settings, canonical_model_name

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
    collapsed: bool
    precision: str
    sparsities: dict[str, float]
    measured_at: tuple[float, float]
    history: tuple[dict[str, float], ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def latency_speedup(self) -> float:
        return self.latency_ms_dense / self.latency_ms

    @property
    def mac_speedup(self) -> float:
        return self.macs_dense / self.macs

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
            "mac_speedup": float(self.mac_speedup), "collapsed": bool(self.collapsed), "precision": self.precision,
            "measured_at": [float(t) for t in self.measured_at],
        }
        for pruner, sparsity in self.sparsities.items():
            info[f"sparsity.{pruner}"] = float(sparsity)
        return info


@dataclass(frozen=True)
class _Dense:
    model: Any
    onnx_path: Path
    top1: float
    params: int
    weights: int
    macs: int


class CaseRunner:
    """Runs cases; keeps datasets, dense baselines and their measurements for the life of the process."""

    def __init__(self, settings: Settings, progress: Progress | None = None) -> None:
        self.settings = settings
        self.progress: Progress = progress or (lambda _message: None)
        self._datasets: dict[DataSpec, Dataset] = {}
        self._dense: dict[tuple[str, DataSpec], _Dense] = {}

    # -- resolution -------------------------------------------------------------------------------------------

    def model_name(self, schedule: Schedule) -> str:
        name = self.settings.model or schedule.model_hint()
        if not name:
            raise ScheduleError(schedule.path, "prunebench.model", "the schedule names no model: add "
                                "`prunebench: {model: resnet56}` or a thinning extension `arch:`, or pass "
                                "--prunebench-model")
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

    def dense(self, model_name: str, spec: DataSpec) -> _Dense:
        """Train (or load) the dense baseline, export and measure it once per process."""
        key = (model_name, spec)
        if key not in self._dense:
            from .baseline import baseline_key, load_or_train_baseline
            from .export import export_onnx
            from .models import count_macs, count_params, count_weights

            data = self.dataset(spec)
            model = load_or_train_baseline(model_name, data, spec, self.settings, self.progress)
            key_hash = baseline_key(model_name, spec, self.settings)
            onnx_path = self.settings.artifacts / "dense" / f"{slug(model_name)}-{key_hash}.onnx"
            export_onnx(model, onnx_path)
            measurement = self._measure(onnx_path, data)
            self.progress(f"dense {model_name} on {self.settings.device}: top1 {measurement.top1:.2f}%, "
                          f"latency {measurement.median_ms:.3f} ms")
            self._dense[key] = _Dense(model, onnx_path, measurement.top1, count_params(model),
                                      count_weights(model), count_macs(model))
        return self._dense[key]

    def _measure(self, onnx_path: Path, data: Dataset, reference: Path | None = None) -> Any:
        from . import device
        from .lock import default_lock_path, device_lock

        lock_path = self.settings.lock_path or default_lock_path(self.settings.device)
        images = data.test_x.numpy()
        labels = data.test_y.numpy()
        with device_lock(lock_path, self.settings.lock_timeout):
            return device.measure(onnx_path, self.settings.device, images, labels, self.settings.precision,
                                  self.settings.rounds, self.settings.warmup, reference)

    def run(self, schedule: Schedule, name: str | None = None) -> CaseResult:
        from .export import export_onnx
        from .models import count_macs, count_params, count_weights
        from .pruning import check_layers, prune_to_final
        from .training import TrainConfig, evaluate, retrain

        name = name or schedule.name
        for message in schedule.warnings:
            warnings.warn(message, stacklevel=2)
        seconds: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            seconds[stage] = round(now - clock, 3)
            clock = now

        model_name, spec = self.model_name(schedule), self.data_spec(schedule)
        dense = self.dense(model_name, spec)
        data = self.dataset(spec)
        lap("dense")
        model = copy.deepcopy(dense.model)
        check_layers(schedule, model, model_name)
        epochs = self.epochs(schedule)
        self.progress(f"{name}: {len(schedule.pruners)} pruner(s) on {model_name}, {epochs} retraining epoch(s)")
        if epochs == 0:
            prune_to_final(model, schedule)
            pruned_eval = evaluate(model, data.test_x, data.test_y)
            history: tuple[dict[str, float], ...] = ()
        else:
            config = TrainConfig(epochs=epochs, lr=schedule.lr or self.settings.lr, seed=self.settings.seed)
            outcome = retrain(model, schedule, data, config, lambda m: self.progress(f"{name}: {m}"))
            pruned_eval = outcome.pruned_eval or evaluate(model, data.test_x, data.test_y)
            history = tuple(vars(record) for record in outcome.history)
        lap("prune_retrain")
        onnx_path = self.settings.artifacts / slug(name) / f"{slug(name)}.onnx"
        onnx_bytes = export_onnx(model, onnx_path)
        lap("export")
        measurement = self._measure(onnx_path, data, reference=dense.onnx_path)
        lap("measure")
        result = CaseResult(
            name=name, model=model_name, dataset=spec.label, device=self.settings.device, schedule=schedule.name,
            schedule_hash=schedule.semantic_hash(), epochs=epochs, top1=measurement.top1, top5=measurement.top5,
            top1_pruned=pruned_eval.top1, top1_dense=dense.top1, params=count_params(model),
            params_dense=dense.params, weights=count_weights(model), weights_dense=dense.weights,
            macs=count_macs(model), macs_dense=dense.macs, onnx_bytes=onnx_bytes, onnx_path=str(onnx_path.resolve()),
            latencies_s=measurement.latencies_s, latency_ms=measurement.median_ms,
            latency_ms_dense=measurement.reference_median_ms,
            throughput_fps=measurement.throughput_fps, collapsed=pruned_eval.collapsed(data.num_classes),
            precision=measurement.precision, sparsities={p.name: p.desired_sparsity for p in schedule.pruners},
            measured_at=measurement.measured_at, history=history, seconds=seconds,
        )
        self.progress(f"{name}: top1 {result.top1:.2f}% (dense {result.top1_dense:.2f}%), latency "
                      f"{result.latency_ms:.3f} ms ({result.latency_speedup:.2f}x), MACs {result.mac_speedup:.2f}x")
        return result

