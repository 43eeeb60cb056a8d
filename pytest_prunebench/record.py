"""The record's fields in one table: what each is, its unit, which way is better, where it goes.

A finished case becomes a pytest-benchmark record (`CaseResult.extra_info()`), a W&B run (config and summary), and
the figures CI gates, sweep metrics and reports compare. Which fields describe the case and which measure it, and
which direction of a figure is worse, are read from `FIELDS` here, not restated in each of those modules.

Adding a figure: one `Field` line here, its computation in `CaseResult.extra_info()` (case/result.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Field:
    """One record field.

    `config`: it describes the case (model, schedule, ...): a W&B config value, never a summary figure.
    `better`: a figure with a direction can be gated (`--prunebench-compare-fail`) and optimised by a sweep.
    `sweep`: a sweep's `metric` may name it (W&B summary statistics included, which are not record fields).
    `interval`: the record field holding its 95% interval (intervals.py), if it has one.
    """

    name: str
    unit: str = ""
    config: bool = False
    better: Better | None = None
    sweep: bool = False
    interval: str | None = None
    doc: str = ""


FIELDS: tuple[Field, ...] = (
    # What the case is.
    Field("model", config=True, doc="the model's name"),
    Field("dataset", config=True, doc="the dataset's label"),
    Field("device", config=True, doc="the OpenVINO device measured on"),
    Field("precision", config=True, doc="the deployed precision (f32, bf16, f16, int8, ...)"),
    Field("schedule", config=True, doc="the schedule's name"),
    Field("schedule_hash", config=True, doc="a hash of what the schedule does"),
    Field("epochs", "epochs", config=True, doc="retraining epochs"),
    Field("round_to", config=True, doc="kept structures rounded up to a multiple of this"),
    Field("study", config=True, doc="a searched sweep's Optuna study"),
    Field("trial", config=True, doc="its trial number"),
    # Accuracy.
    Field("top1", "%", better="higher", sweep=True, doc="top1 of the deployed model on the device"),
    Field("top5", "%", better="higher", sweep=True, doc="top5 of the deployed model on the device"),
    Field("top1_pruned", "%", better="higher", sweep=True, doc="top1 right after pruning, before retraining"),
    # Latency.
    Field("latency_ms_rel", "ms", better="lower", sweep=True, interval="latency_ms_rel_ci",
          doc="drift-corrected latency: the session's reference dense median / latency_speedup"),
    Field("latency_ms", "ms", better="lower", sweep=True, interval="latency_ms_ci",
          doc="median batch-1 latency in this case's window"),
    Field("latency_median_ms", "ms", sweep=True, doc="W&B summary: the median of the latency samples"),
    Field("latency_mean_ms", "ms", sweep=True, doc="W&B summary: their mean"),
    Field("latency_p90_ms", "ms", sweep=True, doc="W&B summary: their 90th percentile"),
    Field("e2e_ms", "ms", better="lower", sweep=True, interval="latency_ms_ci",
          doc="the latency median again, under the name the original design used"),
    Field("device_ms", "ms", better="lower", sweep=True, doc="the device's own compute time per inference"),
    Field("latency_speedup", "x", better="higher", sweep=True, interval="latency_speedup_ci",
          doc="dense median / pruned median, timed interleaved in one window"),
    Field("mac_speedup", "x", better="higher", sweep=True, doc="dense MACs / pruned MACs"),
    Field("throughput_fps", "images/s", better="higher", sweep=True, doc="images per second over the test set"),
    # Size.
    Field("params", better="lower", sweep=True, doc="parameters of the pruned model"),
    Field("weights", better="lower", sweep=True, doc="conv and fc weights of the pruned model"),
    Field("macs", better="lower", sweep=True, doc="multiply-accumulates per inference"),
    Field("onnx_bytes", "bytes", better="lower", sweep=True, doc="size of the exported ONNX file"),
)
BY_NAME = {field.name: field for field in FIELDS}
# Per-pruner fields (`sparsity.<pruner>`, ...): the configuration a sweep panel correlates, W&B config values.
PRUNER_PREFIXES = ("sparsity.", "kind.", "ranker.")


def names(*, config: bool | None = None, better: Better | None = None, sweep: bool | None = None
          ) -> tuple[str, ...]:
    """The fields that match every condition given, in table order."""
    return tuple(field.name for field in FIELDS
                 if (config is None or field.config == config) and (better is None or field.better == better)
                 and (sweep is None or field.sweep == sweep))


def intervals() -> dict[str, str]:
    """Figure -> the record field of its 95% interval."""
    return {field.name: field.interval for field in FIELDS if field.interval}
