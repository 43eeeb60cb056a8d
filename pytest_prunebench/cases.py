"""The case service: runs a test's case on any runner, records it, and decides pass or fail (bounds, collapse).

It builds no runner and writes no file: whoever wires the session (session.py) hands it a runner factory, a
record sink (pytest-benchmark's on the controller, the xdist spool on a worker) and, with W&B, the run writer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from .bounds import bound_failures
from .collect import searched, sweep_model
from .errors import WeakBaselineError, fail_test_on_error
from .schedule import CaseBounds, Schedule, load_schedule, schedule_yaml
from .settings import Settings

if TYPE_CHECKING:
    from .case import CaseResult
    from .search import CaseTrial
    from .sweep import Sweep, SweepPoint

Record = dict[str, Any]  # one case's pytest-benchmark record as plain data (CaseService.record_of)


class Runner(Protocol):
    """What the service needs of case.CaseRunner."""

    def run(self, schedule: Schedule, name: str | None = None, *,
            on_epoch: Callable[[int, float], bool] | None = None) -> CaseResult: ...


class RecordSink(Protocol):
    """Where records go: benchmark_records.BenchmarkRecords, or xdist_roles.Worker on an xdist worker."""

    def record(self, record: Record) -> None: ...

    def amend(self, names: set[str], fields: dict[str, Any]) -> None:
        """Fields added to records already made (their extra_info is updated already): the copies kept for the
        summary too."""


class CaseWatcher(Protocol):
    """Told of every case: wandb_runs.WandbRuns writes its W&B run."""

    def case_starting(self) -> None: ...

    def case_finished(self, node: pytest.Item, result: CaseResult, passed: bool) -> None: ...


@dataclass
class CaseService:
    settings: Settings
    runner: Callable[[], Runner]  # built on first use: collection and a session without cases never build one
    sink: RecordSink
    progress: Callable[[str], None]
    watcher: CaseWatcher | None = None
    _cases_per_node: dict[str, int] = field(default_factory=dict)

    def run_case(self, node: pytest.Item, schedule: str | Path | Schedule, name: str | None,
                 on_collapse: str = "fail") -> CaseResult:
        """Run one case for a test, record it, then check collapse and the case's bounds."""
        result, loaded, failures, _ = self.case(node, schedule, name, on_collapse)
        if failures:
            pytest.fail(failure_message(loaded, failures), pytrace=False)
        return result

    def case(self, node: pytest.Item, schedule: str | Path | Schedule, name: str | None, on_collapse: str,
             trial: CaseTrial | None = None) -> tuple[CaseResult, Schedule, list[str], Record]:
        """Run and record one case: (result, schedule, bound and collapse failures, record). `trial` (a
        searched sweep's search.CaseTrial) may stop retraining early and labels the record."""
        if self.watcher is not None:
            self.watcher.case_starting()

        def run() -> tuple[Schedule, str, CaseResult]:
            loaded = schedule if isinstance(schedule, Schedule) else load_schedule(schedule)
            suffix = self._record_suffix(node, loaded, name)
            on_epoch = None if trial is None else trial.on_epoch
            try:
                return loaded, suffix, self.runner().run(loaded, node.name + suffix, on_epoch=on_epoch)
            except WeakBaselineError as exc:
                # No case of this session is worth running on it: stop here (pytest, and xdist's controller, end
                # the session after this test, with exit code 1).
                node.session.shouldfail = str(exc)
                raise

        loaded, suffix, result = fail_test_on_error(run)
        if trial is not None:
            result = replace(result, search=trial.labels(result))
        record = self.record_of(node, result, suffix)
        self.sink.record(record)
        # An early-terminated case stopped because it was worse than others: recorded, never failed.
        failures = [] if result.early_terminated else self._bound_failures(result, loaded)
        if result.collapsed and (on_collapse == "fail" or failures):  # a recorded collapse explains other misses
            failures.insert(0, _collapse_line(result, hint=on_collapse == "fail"))
        if self.watcher is not None:
            self.watcher.case_finished(node, result, passed=not failures)
        return result, loaded, failures, record

    def amend_records(self, records: list[Record], **fields: Any) -> None:
        """Add fields to records already made (e.g. on_pareto_front, known when a search ends). The record's
        extra_info is the one pytest-benchmark (or the xdist hand-over) writes; the summary rows are copies."""
        for record in records:
            record["extra_info"].update(fields)
        self.sink.amend({record["fullname"] for record in records}, fields)

    def run_sweep(self, node: pytest.Item, point: SweepPoint, on_collapse: str) -> list[CaseResult]:
        """A grid point is one case; a random sweep draws its cases with hypothesis, guided by its metric; a
        bayes sweep (or any sweep, with --prunebench-study) runs its cases through an Optuna study."""
        if point.values is None and searched(self.settings, point.sweep):
            from .search import run_search

            return run_search(self, node, point.sweep, sweep_model(self.settings, point.sweep), on_collapse)
        if point.values is None:
            return self._draw_sweep(node, point.sweep, sweep_model(self.settings, point.sweep), on_collapse)
        return [self.run_case(node, self.sweep_schedule(point), None, on_collapse)]

    def sweep_schedule(self, point: SweepPoint, values: dict[str, Any] | None = None) -> Schedule:
        """The schedule of a grid point (or of `values` drawn from a random sweep), on the model it runs on."""
        from .sweep import point_schedule

        chosen = point.values if values is None else values
        if chosen is None:
            raise ValueError(f"{point.case_id()} is a random sweep: pass the drawn values")
        return point_schedule(point.sweep, chosen, sweep_model(self.settings, point.sweep))

    def _draw_sweep(self, node: pytest.Item, sweep: Sweep, model: str, on_collapse: str) -> list[CaseResult]:
        from hypothesis import given, target
        from hypothesis import settings as hypothesis_settings

        from .strategies import SEARCH_SETTINGS
        from .sweep import point_schedule
        from .tracking import run_summary

        results: dict[str, CaseResult] = {}  # by name: shrinking and the example database replay cases
        scores: dict[str, float] = {}

        def case(values: dict[str, Any]) -> None:
            result = self.run_case(node, point_schedule(sweep, values, model), None, on_collapse)
            results[result.name] = result
            score = run_summary(result.extra_info(), result.latencies_s).get(sweep.metric or "")
            if score is not None:  # device_ms is null on a device without counters: no score then
                scores[result.name] = score
                sign = 1.0 if sweep.goal == "maximize" else -1.0
                target(sign * score, label=f"{sweep.goal} {sweep.metric}")

        # Hypothesis keys its example database by the test function: one key per suite and sweep content.
        case._hypothesis_internal_add_digest = node.nodeid.encode() + sweep.digest()  # type: ignore[attr-defined]
        examples = self.settings.examples or sweep.run_cap or SEARCH_SETTINGS.max_examples
        try:
            hypothesis_settings(SEARCH_SETTINGS, max_examples=examples)(given(sweep.points())(case))()
        finally:
            if scores:
                best = (max if sweep.goal == "maximize" else min)(scores, key=scores.__getitem__)
                self.progress(f"{node.name}: {len(results)} drawn case(s); best {sweep.metric} {scores[best]:g} "
                              f"({best})")
        return list(results.values())

    def _bound_failures(self, result: CaseResult, schedule: Schedule) -> list[str]:
        """The schedule's bounds, except where --prunebench-threshold KEY=VALUE sets one for every case."""
        overrides = dict(self.settings.thresholds)
        own = replace(schedule.thresholds, **dict.fromkeys(overrides))
        return (bound_failures(result, own, schedule.path)
                + bound_failures(result, CaseBounds(**overrides), "--prunebench-threshold"))

    def _record_suffix(self, node: pytest.Item, schedule: Schedule, name: str | None) -> str:
        """'' for a test's first unnamed case, else `::name`: the same names in every run. A generated schedule
        is always named by its configuration, so every hypothesis example is its own record."""
        count = self._cases_per_node.get(node.nodeid, 0)
        self._cases_per_node[node.nodeid] = count + 1
        anonymous = name is None and count == 0 and not schedule.generated
        return "" if anonymous else f"::{name or schedule.name}"

    def record_of(self, node: pytest.Item, result: CaseResult, suffix: str) -> Record:
        """A record as plain data, so an xdist worker can hand it to the controller."""
        callspec = getattr(node, "callspec", None)
        return {
            "name": node.name + suffix, "fullname": node.nodeid + suffix,
            "param": callspec.id if callspec else None,
            "params": {k: str(v) for k, v in callspec.params.items()} if callspec else None,
            "extra_info": result.extra_info(), "samples": list(result.latencies_s),
            "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": len(result.latencies_s),
                        "max_time": 0.0, "min_time": 0.0, "precision": None, "confidence": None,
                        "warmup": self.settings.warmup, "device": result.device},
        }


def failure_message(schedule: Schedule, failures: list[str]) -> str:
    message = "prunebench case failed:\n  " + "\n  ".join(failures)
    if schedule.generated:  # the configuration itself, ready to save as a schedule file and rerun
        text = schedule_yaml(schedule.active()).rstrip().replace("\n", "\n  ")
        message += f"\nconfiguration {schedule.name} (pruners at sparsity 0 left out):\n  {text}"
    return message


def _collapse_line(result: CaseResult, hint: bool) -> str:
    retraining = "retraining was skipped" if result.epochs else "no retraining was scheduled"
    line = (f"{result.name} collapsed when pruned: {result.collapse_reason}; {retraining} (such models never "
            f"recovered in the seed's runs)")
    if hint:
        line += "; to record collapses without failing, mark the suite `pytest.mark.prunebench(on_collapse=\"record\")`"
    return line
