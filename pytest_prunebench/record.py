"""The record's fields in one table: what each is, its unit, which way is better, where it goes.

A finished case becomes a pytest-benchmark record (`CaseResult.extra_info()`), a W&B run (config and summary), and
the figures regression rules (CI gates), sweep metrics and reports compare. Which fields describe the case and
which measure it, and which direction of a figure is worse, are read from `FIELDS` here, not restated in each of
those modules.

The terminal's table at the end of a session (summary.py) and the report's tables and `cases.csv` (report.py) show
the fields whose line here gives them a column, in this table's order, with the column's label and number format.

Adding a figure: one `Field` line here, its computation in `CaseResult.extra_info()` (case/result.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Better = Literal["higher", "lower"]
Table = Literal["terminal", "report"]


@dataclass(frozen=True)
class Column:
    """How one table shows a field: its header and its figure's text (`–` when the record has no such figure).

    `digits` decimals, then `suffix` (`1.23x`); `interval`: followed by the field's 95% interval, `1.234 [1.201-1.262]`;
    `thousands`: an integer count, `1,234,567`; `scale`: the figure divided by it first (bytes to KB: 1024);
    `flag`: a yes/no field, `yes` or empty.
    """

    label: str
    digits: int = 0
    suffix: str = ""
    interval: bool = False
    thousands: bool = False
    scale: float = 1.0
    flag: bool = False

    def text(self, value: Any, interval: Any = None) -> str:
        if self.flag:
            return "yes" if value else ""
        if not is_figure(value):
            return "–"
        if self.thousands:
            return f"{int(value / self.scale):,}"
        text = f"{value / self.scale:.{self.digits}f}{self.suffix}"
        if self.interval and isinstance(interval, list | tuple) and len(interval) == 2:
            low, high = (bound / self.scale for bound in interval)
            text += f" [{low:.{self.digits}f}-{high:.{self.digits}f}]"
        return text


@dataclass(frozen=True)
class Field:
    """One record field.

    `config`: it describes the case (model, schedule, ...): a W&B config value, never a summary figure.
    `better`: a figure with a direction can be compared by a regression rule (`--prunebench-compare-fail`) and
    optimised by a sweep.
    `sweep`: a sweep's `metric` may name it (W&B summary statistics included, which are not record fields).
    `per_epoch`: retraining reports it after every epoch too, so a sweep's early termination can judge a case on it.
    `interval`: the record field holding its 95% interval (intervals.py), if it has one.
    `replaces`: the older field this one supersedes where cases are compared; a record written before this field
    existed is shown, ranked and searched on the older one.
    `terminal`, `report`: its column in the session's terminal table, in report.md's case tables; `csv`: among
    the first columns of the report's cases.csv (every other record field follows).
    """

    name: str
    unit: str = ""
    config: bool = False
    better: Better | None = None
    sweep: bool = False
    per_epoch: bool = False
    interval: str | None = None
    replaces: str | None = None
    terminal: Column | None = None
    report: Column | None = None
    csv: bool = False
    doc: str = ""

    def column(self, table: Table) -> Column | None:
        return self.terminal if table == "terminal" else self.report

    def label(self, table: Table) -> str:
        return self._shown_in(table).label

    def shown(self, info: Mapping[str, Any]) -> tuple[str, Any, Any]:
        """(field, figure, its interval) a record shows for this field: the field `replaces` names when the record
        has no figure of this one."""
        name = self.name
        if self.replaces is not None and not is_figure(info.get(name)):
            name = self.replaces
        interval = intervals().get(name)
        return name, info.get(name), None if interval is None else info.get(interval)

    def cell(self, table: Table, info: Mapping[str, Any]) -> str:
        """The field's text in `table`'s column for one record."""
        _, value, interval = self.shown(info)
        return self.text(table, value, interval)

    def text(self, table: Table, value: Any, interval: Any = None) -> str:
        """A figure of this field (or of its dense counterpart) as `table`'s column shows it."""
        return self._shown_in(table).text(value, interval)

    def _shown_in(self, table: Table) -> Column:
        column = self.column(table)
        if column is None:
            raise KeyError(f"record field {self.name} has no {table} column")
        return column


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
    Field("top1", "%", better="higher", sweep=True, per_epoch=True, terminal=Column("top1 %", 2),
          report=Column("top1 %", 2), csv=True, doc="top1 of the deployed model on the device"),
    Field("top5", "%", better="higher", sweep=True, doc="top5 of the deployed model on the device"),
    Field("top1_pruned", "%", better="higher", sweep=True, doc="top1 right after pruning, before retraining"),
    Field("top1_dense", "%", terminal=Column("dense %", 2), doc="top1 of the dense baseline on the device"),
    # Latency.
    Field("latency_ms_rel", "ms", better="lower", sweep=True, interval="latency_ms_rel_ci", replaces="latency_ms",
          terminal=Column("latency ms [95% CI]", 3, interval=True),
          report=Column("latency ms [95%]", 3, interval=True), csv=True,
          doc="drift-corrected latency: the session's reference dense median / latency_speedup"),
    Field("latency_ms", "ms", better="lower", sweep=True, interval="latency_ms_ci",
          terminal=Column("abs ms [95% CI]", 3, interval=True),
          report=Column("absolute ms", 3), csv=True,
          doc="median batch-1 latency in this case's window"),
    Field("latency_median_ms", "ms", sweep=True, doc="W&B summary: the median of the latency samples"),
    Field("latency_mean_ms", "ms", sweep=True, doc="W&B summary: their mean"),
    Field("latency_p90_ms", "ms", sweep=True, doc="W&B summary: their 90th percentile"),
    Field("e2e_ms", "ms", better="lower", sweep=True, interval="latency_ms_ci",
          doc="the latency median again, under the name the original design used"),
    Field("device_ms", "ms", better="lower", sweep=True, doc="the device's own compute time per inference"),
    Field("latency_speedup", "x", better="higher", sweep=True, interval="latency_speedup_ci",
          terminal=Column("speed-up [95% CI]", 2, "x", interval=True),
          report=Column("speed-up [95%]", 2, interval=True), csv=True,
          doc="dense median / pruned median, timed interleaved in one window"),
    Field("mac_speedup", "x", better="higher", sweep=True, terminal=Column("MAC speed-up", 2, "x"),
          report=Column("MAC speed-up", 2), csv=True, doc="dense MACs / pruned MACs"),
    Field("throughput_fps", "images/s", better="higher", sweep=True, doc="images per second over the test set"),
    # Size.
    Field("params", better="lower", sweep=True, terminal=Column("params", thousands=True),
          report=Column("params", thousands=True), csv=True, doc="parameters of the pruned model"),
    Field("weights", better="lower", sweep=True, doc="conv and fc weights of the pruned model"),
    Field("macs", better="lower", sweep=True, report=Column("MACs", thousands=True), csv=True,
          doc="multiply-accumulates per inference"),
    Field("onnx_bytes", "bytes", better="lower", sweep=True, terminal=Column("ONNX KB", scale=1024), csv=True,
          doc="size of the exported ONNX file"),
    # The outcome.
    Field("collapsed", report=Column("collapsed", flag=True), csv=True,
          doc="the pruned model collapsed (see collapse_reason); its retraining was skipped"),
    Field("collapse_reason", csv=True, doc="why the case counts as collapsed, or null"),
)
BY_NAME = {field.name: field for field in FIELDS}
# Per-pruner fields (`sparsity.<pruner>`, ...): the configuration a sweep panel correlates, W&B config values.
PRUNER_PREFIXES = ("sparsity.", "kind.", "ranker.")


def names(*, config: bool | None = None, better: Better | None = None, sweep: bool | None = None,
          per_epoch: bool | None = None) -> tuple[str, ...]:
    """The fields that match every condition given, in table order."""
    return tuple(field.name for field in FIELDS
                 if (config is None or field.config == config) and (better is None or field.better == better)
                 and (sweep is None or field.sweep == sweep) and (per_epoch is None or field.per_epoch == per_epoch))


def intervals() -> dict[str, str]:
    """Figure -> the record field of its 95% interval."""
    return {field.name: field.interval for field in FIELDS if field.interval}


def columns(table: Table) -> tuple[Field, ...]:
    """The fields `table` shows, in table order."""
    return tuple(field for field in FIELDS if field.column(table) is not None)


def header(table: Table, fields: Sequence[Field] | None = None) -> tuple[str, ...]:
    """The labels of `fields`' columns in `table` (of every column it shows when None)."""
    return tuple(field.label(table) for field in (columns(table) if fields is None else fields))


def csv_first() -> tuple[str, ...]:
    """cases.csv's first columns: the fields marked `csv`, each followed by its interval."""
    return tuple(name for field in FIELDS if field.csv for name in (field.name, field.interval) if name)


def is_figure(value: Any) -> bool:
    """A number a table shows (not a flag, not NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
