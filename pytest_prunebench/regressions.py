"""Regression rules on any record figure (`--prunebench-compare-fail top1:0.5,throughput_fps:5%`).

pytest-benchmark's `--benchmark-compare-fail` gates latency statistics only ("slower"); these rules compare the
figures in each record's `extra_info` (accuracy, throughput, speed-ups, size) with the run that
`--benchmark-compare` selects. Pure Python: the option parser imports this module in every pytest run.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import record

# Which way is worse for each figure a rule may name (record.FIELDS).
HIGHER_IS_BETTER = record.names(better="higher")
LOWER_IS_BETTER = record.names(better="lower")
COMPARED_METRICS = HIGHER_IS_BETTER + LOWER_IS_BETTER
# The record's 95% interval of a figure (intervals.py), where it has one.
INTERVALS = record.intervals()


@dataclass(frozen=True)
class RegressionRule:
    """`metric:bound` (absolute, in the metric's unit: points for top1) or `metric:bound%` (relative)."""

    metric: str
    bound: float
    relative: bool

    def __str__(self) -> str:
        return f"{self.metric}:{self.bound:g}{'%' if self.relative else ''}"

    def worst_allowed(self, before: float) -> float:
        margin = abs(before) * self.bound / 100 if self.relative else self.bound
        return before - margin if self.metric in HIGHER_IS_BETTER else before + margin

    def fails(self, before: float, after: float) -> bool:
        allowed = self.worst_allowed(before)
        return after < allowed if self.metric in HIGHER_IS_BETTER else after > allowed


def parse_regression_rules(text: str) -> tuple[RegressionRule, ...]:
    """`top1:0.5,top1:1%`: the `type=` parser of --prunebench-compare-fail."""
    rules = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        metric, sep, bound = item.partition(":")
        metric, bound = metric.strip(), bound.strip()
        if not sep or metric not in COMPARED_METRICS:
            raise argparse.ArgumentTypeError(f"{item!r} is not METRIC:BOUND or METRIC:BOUND% with METRIC one of "
                                              f"{', '.join(COMPARED_METRICS)}")
        relative = bound.endswith("%")
        try:
            value = float(bound.removesuffix("%"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: {bound!r} is not a number (top1:0.5 or top1:1%)") from None
        if not (math.isfinite(value) and value >= 0):
            raise argparse.ArgumentTypeError(f"{item!r}: the bound must be a finite number, 0 or more")
        rules.append(RegressionRule(metric, value, relative))
    if not rules:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least one METRIC:BOUND, e.g. top1:0.5")
    return tuple(rules)


@dataclass(frozen=True)
class Regression:
    case: str
    rule: RegressionRule
    before: float
    after: float
    noise: str = ""  # why the measured change may be noise (the records' 95% intervals), or ""

    @property
    def allowed(self) -> float:
        return self.rule.worst_allowed(self.before)


def _interval(value: Any) -> tuple[float, float] | None:
    if isinstance(value, list | tuple) and len(value) == 2 and all(_number(v) for v in value):
        return float(value[0]), float(value[1])
    return None


def noise_note(rule: RegressionRule, before: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """What says a regression of `rule` may be noise: this run's interval reaching the worst allowed value, or the
    two runs' intervals overlapping (no change is plausible); "" when the records carry no interval or neither holds."""
    key = INTERVALS.get(rule.metric)
    if key is None:
        return ""
    now_ci, before_ci = _interval(now.get(key)), _interval(before.get(key))
    if now_ci is None:
        return ""
    notes = []
    allowed = rule.worst_allowed(float(before[rule.metric]))
    if now_ci[0] <= allowed <= now_ci[1]:
        notes.append(f"this run's 95% interval [{now_ci[0]:.4g}, {now_ci[1]:.4g}] includes the worst allowed "
                     f"{allowed:.4g}")
    if before_ci is not None and now_ci[0] <= before_ci[1] and before_ci[0] <= now_ci[1]:
        notes.append(f"it overlaps the saved run's [{before_ci[0]:.4g}, {before_ci[1]:.4g}], so no change is "
                     f"plausible")
    return "; ".join(notes)


@dataclass(frozen=True)
class RegressionReport:
    source: str  # the saved run compared with
    compared: int  # cases found in both runs
    regressions: tuple[Regression, ...] = ()
    only_now: tuple[str, ...] = ()  # cases the saved run does not have
    only_before: tuple[str, ...] = ()  # cases of the saved run this run did not produce
    unmeasured: tuple[str, ...] = ()  # `case metric`: a figure missing on one side

    @property
    def failed(self) -> bool:
        return bool(self.regressions)


def compare_runs(rules: tuple[RegressionRule, ...], now: Mapping[str, Mapping[str, Any]],
                 before: Mapping[str, Mapping[str, Any]], source: str) -> RegressionReport:
    """Every rule for every case in both runs (by full name); `now` and `before` map it to its extra_info."""
    regressions, unmeasured = [], []
    common = sorted(set(now) & set(before))
    for case in common:
        for rule in rules:
            old, new = before[case].get(rule.metric), now[case].get(rule.metric)
            if old is None or new is None or not (_number(old) and _number(new)):
                unmeasured.append(f"{case} {rule.metric}")
            elif rule.fails(float(old), float(new)):
                regressions.append(Regression(case, rule, float(old), float(new),
                                              noise_note(rule, before[case], now[case])))
    return RegressionReport(source, len(common), tuple(regressions), tuple(sorted(set(now) - set(before))),
                      tuple(sorted(set(before) - set(now))), tuple(unmeasured))


def report_lines(report: RegressionReport) -> list[str]:
    """The table a CI log shows: one row per regression, then what could not be compared."""
    lines = [f"compared with {report.source}: {report.compared} case(s) in both runs, "
             f"{len(report.regressions)} regression(s)"]
    if report.regressions:
        rows = [("case", "metric", "before", "after", "bound", "worst allowed")]
        rows += [(r.case, r.rule.metric, f"{r.before:.4g}", f"{r.after:.4g}", str(r.rule), f"{r.allowed:.4g}")
                 for r in report.regressions]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                  for row in rows]
        noisy = [r for r in report.regressions if r.noise]
        lines += [f"inside the noise: {r.case} {r.rule.metric}: {r.noise}" for r in noisy]
        if noisy:
            lines.append(f"{len(noisy)} of {len(report.regressions)} regression(s) are inside the measurement noise: "
                         f"they still fail the gate; measure them more precisely (--prunebench-rounds auto, "
                         f"--prunebench-precision-target) or gate on a wider bound")
    lines += [f"not in the saved run (new): {case}" for case in report.only_now]
    lines += [f"not in this run (missing): {case}" for case in report.only_before]
    lines += [f"not compared (figure missing in one run): {item}" for item in report.unmeasured]
    return lines


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
