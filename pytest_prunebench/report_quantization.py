"""The report's pruning-vs-quantization section: dense and pruned, float and INT8, side by side.

A schedule deployed at a float precision and quantized (int8, int8-accuracy) on one device gives two records, and
each record timed its pruned model interleaved with the dense model deployed the same way: together, the four
variants dense-float, pruned-float, dense-int8 and pruned-int8. Whether pruning still pays after INT8 is read off
the quantized record alone: its speed-up was timed pruned against dense INT8 in one window, with a 95% interval.
Latencies across the two records come from two windows and carry the host's drift between them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

QUANTIZED = ("int8", "int8-accuracy")
PICTURE = "quantization.png"


@dataclass(frozen=True)
class Variants:
    """One schedule on one device: its float record and its quantized record."""

    schedule: str
    model: str
    device: str
    float_case: Any  # report.Case
    quantized_case: Any  # report.Case

    def latencies(self) -> dict[str, float]:
        """The four variants' median latency (ms), each from its own record's window."""
        return self._four("latency_ms_dense", "latency_ms")

    def top1(self) -> dict[str, float]:
        return self._four("top1_dense", "top1")

    def _four(self, dense_key: str, pruned_key: str) -> dict[str, float]:
        return {f"{variant}-{case.info.get('precision')}": case.figure(key)
                for case in (self.float_case, self.quantized_case)
                for variant, key in (("dense", dense_key), ("pruned", pruned_key))}

    @property
    def float_precision(self) -> str:
        return str(self.float_case.info.get("precision"))

    @property
    def quantized_precision(self) -> str:
        return str(self.quantized_case.info.get("precision"))

    @property
    def quantized_speedup(self) -> float:
        """Pruned over dense, both INT8, timed interleaved in one window."""
        return self.quantized_case.figure("latency_speedup")

    @property
    def quantized_interval(self) -> tuple[float, float] | None:
        interval = self.quantized_case.info.get("latency_speedup_ci")
        return (float(interval[0]), float(interval[1])) if isinstance(interval, list) and len(interval) == 2 else None

    def verdict(self) -> str:
        """Whether pruning still pays after INT8 on this device, from the quantized record's own interval."""
        speedup, interval = self.quantized_speedup, self.quantized_interval
        float_speedup = self.float_case.figure("latency_speedup")
        shown = f"{speedup:.2f}x" + (f" (95% interval {interval[0]:.2f}-{interval[1]:.2f})" if interval else "")
        against = f", against {float_speedup:.2f}x at {self.float_precision}"
        if interval is not None and interval[0] > 1:
            answer = "yes"
        elif interval is not None and interval[1] < 1:
            answer = "no, it is slower"
        elif interval is None:
            answer = "yes" if speedup > 1 else "no"
        else:
            answer = "not measurably"
        return (f"{self.schedule} ({self.model}, {self.device}): pruning after INT8 pays: {answer}; speed-up of "
                f"pruned-{self.quantized_precision} over dense-{self.quantized_precision} {shown}{against}; top1 "
                f"{self.quantized_case.figure('top1'):.2f}% vs {self.float_case.figure('top1'):.2f}% at "
                f"{self.float_precision}")


def variants(cases: Sequence[Any]) -> list[Variants]:
    """Schedules with a float and a quantized record on the same device and dataset (the last of each kind)."""
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for case in cases:
        key = tuple(str(case.info.get(k)) for k in ("schedule", "model", "device", "dataset"))
        kind = "quantized" if case.info.get("precision") in QUANTIZED else "float"
        groups.setdefault(key, {})[kind] = case
    return [Variants(key[0], key[1], key[2], kinds["float"], kinds["quantized"])
            for key, kinds in sorted(groups.items()) if len(kinds) == 2]


def markdown(found: Sequence[Variants]) -> list[str]:
    """The section: a table of the four variants per schedule, and the verdicts."""
    if not found:
        return []
    lines = ["## Pruning vs quantization", "", f"![Pruning vs quantization]({PICTURE})", "",
             "| schedule | variant | top1 % | latency ms |", "|---|---|---|---|"]
    for item in found:
        top1 = item.top1()
        lines += [f"| {item.schedule} | {name} | {_num(top1[name], 2)} | {_num(ms, 3)} |"
                  for name, ms in item.latencies().items()]
    lines += ["", "Whether pruning still pays after INT8 (the quantized record's pruned / dense ratio, timed "
                  "interleaved in one window; float and INT8 latencies come from two windows):", ""]
    lines += [f"- {item.verdict()}" for item in found]
    return [*lines, ""]


def figure(found: Sequence[Variants], pyplot: Any) -> Any:
    """Latency (left) and top1 (right) of the four variants, grouped by schedule."""
    fig, (latency_ax, top1_ax) = pyplot.subplots(1, 2, figsize=(12, 4.5))
    width = 0.2
    colours = ("#7f7f7f", "#1f77b4", "#c5b0d5", "#9467bd")
    for row, item in enumerate(found):
        for column, ((name, ms), top1) in enumerate(zip(item.latencies().items(), item.top1().values(),
                                                        strict=True)):
            x = row + (column - 1.5) * width
            shown = name.replace(item.float_precision, "float").replace(item.quantized_precision, "int8")
            label = shown if row == 0 else None
            latency_ax.bar(x, ms, width, color=colours[column], label=label)
            top1_ax.bar(x, top1, width, color=colours[column], label=label)
    names = [item.schedule for item in found]
    for ax, title in ((latency_ax, "latency (ms, median)"), (top1_ax, "top1 (%)")):
        ax.set_xticks(range(len(found)), names, rotation=20, ha="right")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    low = min((v for item in found for v in item.top1().values() if not math.isnan(v)), default=0.0)
    top1_ax.set_ylim(max(0.0, low - 5), 100.5)
    latency_ax.legend(fontsize=8)
    return fig


def _num(value: float, digits: int) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"
