"""What a case produced, counted and put together as its CaseResult; and the wall time of each of its stages."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DeviceError
from ..schedule import Schedule
from ..settings import Settings
from .result import CaseResult

if TYPE_CHECKING:
    from ..device import DeviceMeasurement
    from ..training import EvalResult
    from .artifacts import CaseFiles
    from .dense import DenseBaseline
    from .pruned import PrunedModel


class Laps:
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


@dataclass(frozen=True)
class MeasuredCase:
    """Everything a case produced, before it is counted into its CaseResult."""

    name: str
    schedule: Schedule
    model_name: str
    dataset: str
    epochs: int
    dense: DenseBaseline
    pruned: PrunedModel
    pruned_eval: EvalResult  # right after pruning (or, with 0 epochs, the deployed model's on the device)
    collapse_reason: str | None
    files: CaseFiles
    layers_path: Path | None  # None: the device reported no performance counters
    measurement: DeviceMeasurement
    deployment: dict[str, object]  # deployment.deployment_record
    round_to_probe: str

    def result(self, settings: Settings, seconds: dict[str, float]) -> CaseResult:
        from ..intervals import AdaptiveRounds, LatencyIntervals
        from ..models import count_macs, count_params, count_weights
        from ..pruning import layer_sizes, reached_sparsity

        schedule, model, dense, pruned, measurement = (self.schedule, self.pruned.model, self.dense, self.pruned,
                                                       self.measurement)
        rounds = settings.latency_rounds
        return CaseResult(
            name=self.name, model=self.model_name, dataset=self.dataset, device=settings.device,
            schedule=schedule.name, schedule_hash=schedule.semantic_hash(), epochs=self.epochs,
            top1=measurement.top1, top5=measurement.top5, top1_pruned=self.pruned_eval.top1, top1_dense=dense.top1,
            params=count_params(model), params_dense=dense.params, weights=count_weights(model),
            weights_dense=dense.weights, macs=count_macs(model), macs_dense=dense.macs,
            onnx_bytes=self.files.onnx_bytes, onnx_path=str(self.files.onnx_path.resolve()),
            latencies_s=measurement.latencies_s, latency_ms=measurement.median_ms,
            latency_ms_dense=_known(measurement.reference_median_ms), throughput_fps=measurement.throughput_fps,
            collapse_reason=self.collapse_reason, precision=str(self.deployment["precision"]),
            sparsities={p.name: p.desired_sparsity for p in schedule.pruners if p.splicing is None},  # no target
            measured_at=measurement.measured_at,
            history=pruned.history, seconds=seconds, pruner_kinds={p.name: p.kind for p in schedule.pruners},
            pruner_rankers={p.name: p.ranker for p in schedule.pruners},
            structures_path=str(self.files.structures_path.resolve()), device_ms=measurement.device_ms,
            layers_path=str(self.layers_path.resolve()) if self.layers_path else "",
            layers_path_dense=dense.layers_path, round_to=schedule.rounding(), round_to_probe=self.round_to_probe,
            artifact_cache=pruned.cache, reached=reached_sparsity(model, schedule, layer_sizes(dense.model, schedule)),
            top1_dense_torch=dense.top1_torch, baseline_epochs=dense.training.epochs,
            bn_recalibration=settings.bn_recalibration, worker=measurement.worker,
            worker_openvino=measurement.worker_openvino, latency_ms_ref=dense.reference.latency_ms,
            intervals=LatencyIntervals.of(measurement.latencies_s, measurement.reference_latencies_s),
            precision_target=rounds.target if isinstance(rounds, AdaptiveRounds) else None,
            early_terminated=pruned.early_terminated, deployment=self.deployment,
        )


def _known(reference_median_ms: float | None) -> float:
    """The dense median of the case's window: every case is timed interleaved with its dense model."""
    if reference_median_ms is None:
        raise DeviceError("the case's measurement timed no dense model beside it: its speed-up is unknown")
    return reference_median_ms
