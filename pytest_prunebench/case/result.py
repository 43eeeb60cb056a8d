"""A finished case: every figure of its record, frozen; `extra_info()` is its pytest-benchmark record's
`extra_info` (record.py lists the fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..intervals import LatencyIntervals


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
    intervals: LatencyIntervals | None = None  # 95% intervals of the median and the speed-up
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
