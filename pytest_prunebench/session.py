"""The per-session object behind the plugin: runs cases, turns them into pytest-benchmark records, reports."""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import summary
from .errors import PrunebenchError, PrunebenchWarning, WeakBaselineError, fail_test_on_error
from .schedule import Schedule, Thresholds, find_yaml_files, load_schedule, schedule_yaml
from .settings import Settings
from .thresholds import threshold_failures

if TYPE_CHECKING:
    from .case import CaseResult, CaseRunner
    from .gates import GateReport
    from .sweep import Sweep, SweepPoint
    from .tracking_process import TrackingProcess


WORKER_RECORDS = "prunebench_records"
SPOOL_KEY = "prunebench_spool"  # workerinput: the controller's directory where workers also append each record
DEFAULT_SWEEP_MODEL = "resnet20"  # when neither the sweep's `model` parameter nor --prunebench-model names one
MARKER_KWARGS = frozenset({"on_collapse", "sweep"})
COLLAPSE_POLICIES = ("fail", "record")  # what a collapsed case does to its test (suites choose with the marker)


@dataclass(frozen=True)
class _RecordSource:
    """What pytest-benchmark's Metadata reads from its fixture; one per case, since that fixture is single-use."""

    name: str
    fullname: str
    group: str | None
    param: str | None
    params: dict[str, Any] | None
    extra_info: dict[str, Any]
    cprofile_stats: None = None
    has_error: bool = False


@dataclass
class PrunebenchSession:
    config: pytest.Config
    settings: Settings
    rows: list[dict[str, Any]] = field(default_factory=list)  # what the summary shows, from every process
    worker_records: list[dict[str, Any]] = field(default_factory=list)
    _runner: CaseRunner | None = None
    gate_report: GateReport | None = None
    _cases_per_node: dict[str, int] = field(default_factory=dict)
    _spool: Path | None = None  # on the controller of an xdist run: see spool_dir
    _tracker: TrackingProcess | None = None  # writes the W&B runs (see _start_tracking)
    _machine_info: Callable[[], dict[str, Any] | None] | None = None  # see gather_machine_info

    # -- start ------------------------------------------------------------------------------------------------

    def gather_machine_info(self) -> None:
        """pytest-benchmark's machine info for the JSON (0.25 s here, mostly a `python -m cpuinfo` child) is
        gathered in the background while the first case starts, instead of after the last one."""
        benchmarks = getattr(self.config, "_benchmarksession", None)
        if hasattr(self.config, "workerinput") or benchmarks is None:
            return
        if not (benchmarks.save or benchmarks.autosave or benchmarks.json):
            return
        import cpuinfo  # noqa: F401  (pytest-benchmark imports it in the call: not in a thread)
        from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info as generate

        from .lock import in_background

        gathered: dict[str, dict[str, Any]] = {}
        thread = in_background(lambda: gathered.update(info=generate()), "machine-info")

        def result() -> dict[str, Any] | None:
            thread.join()
            return gathered.get("info")  # None: it failed, and pytest-benchmark gathers it itself

        self._machine_info = result

    def machine_info(self) -> dict[str, Any] | None:
        return self._machine_info() if self._machine_info is not None else None

    def check_device(self) -> None:
        from . import device

        try:
            if self.settings.broker:  # the device is on the workers' hosts: the broker must answer now
                from .broker import connect

                connect(self.settings.broker).close()
                return
            device.check_device(self.settings.device)
        except PrunebenchError as exc:
            raise pytest.UsageError(str(exc)) from None

    def schedule_files(self) -> list[Path]:
        return find_yaml_files(self.settings.schedules)

    @staticmethod
    def schedule_ids(files: list[Path]) -> list[str]:
        """File stems; the parent folder is added only where two stems collide. Stable across runs."""
        stems = [f.stem for f in files]
        return [f.stem if stems.count(f.stem) == 1 else f"{f.parent.name}/{f.stem}" for f in files]

    def sweep_points(self, definition: pytest.Function) -> list[SweepPoint]:
        """The cases of a sweep suite: one per grid point, one per random sweep (its cases are drawn inside).

        Files come from the suite's `pytest.mark.prunebench(sweep=...)` (relative to the suite file), else from
        --prunebench-sweep. A bad file is a collection error of one line.
        """
        from .sweep import SweepPoint, early_terminate_problem

        points: list[Any] = []
        for path in self._sweep_files(definition):
            sweep = fail_test_on_error(functools.partial(self._load_sweep, path))
            problem = early_terminate_problem(sweep, self.settings.epochs)
            if problem is not None:
                pytest.fail(f"{path}: early_terminate: {problem}", pytrace=False)
            values = sweep.grid() if sweep.method == "grid" and not self._searched(sweep) else [None]
            points += [SweepPoint(sweep, point) for point in values]
        return points

    def _searched(self, sweep: Sweep) -> bool:
        """bayes sweeps always run through an Optuna study; grid and random ones when a study URL is given."""
        return sweep.method == "bayes" or self.settings.study is not None

    def check_study(self) -> None:
        """--prunebench-study: the storage must open now, before any training (search.open_storage)."""
        from .search import open_storage

        try:
            open_storage(self.settings.study, self.settings.root)
        except PrunebenchError as exc:
            raise pytest.UsageError(str(exc)) from None

    def _sweep_files(self, definition: pytest.Function) -> list[Path]:
        for marker in definition.iter_markers("prunebench"):
            if "sweep" in marker.kwargs:
                given = marker.kwargs["sweep"]
                patterns = (given,) if isinstance(given, str | Path) else tuple(given)
                files = find_yaml_files(tuple(str(definition.path.parent / Path(p).expanduser()) for p in patterns))
                if not files:
                    pytest.fail(f"{definition.nodeid}: pytest.mark.prunebench(sweep={given!r}) names no .yaml/.yml "
                                f"file (paths are relative to the suite file)", pytrace=False)
                return files
        return find_yaml_files(self.settings.sweeps)

    def _load_sweep(self, path: Path) -> Sweep:
        """The sweep file, its groups checked against the model its cases prune."""
        from .sweep import check_groups, load_sweep

        sweep = load_sweep(path)
        check_groups(sweep, self._sweep_model(sweep))
        return sweep

    def _sweep_model(self, sweep: Sweep) -> str:
        """--prunebench-model (the model of every case), else the sweep's `model`, else resnet20."""
        from .sweep import model_of

        return self.settings.model or model_of(sweep, DEFAULT_SWEEP_MODEL)

    def limit_examples(self, items: list[pytest.Item]) -> None:
        """--prunebench-examples N: every hypothesis test among the cases draws N examples.

        Hypothesis has no public way to change one test's settings after decoration; its own pytest plugin sets
        the same attribute (`_hypothesis_internal_use_settings`) for parametrised tests, so this does too.
        """
        if self.settings.examples is None:
            return
        tests = {id(f): f for item in items if getattr(f := getattr(item, "obj", None), "is_hypothesis_test", False)}
        if not tests:
            return
        from hypothesis import settings as hypothesis_settings

        for test in tests.values():
            function: Any = getattr(test, "__func__", test)
            current = getattr(function, "_hypothesis_internal_use_settings", None) or hypothesis_settings.default
            function._hypothesis_internal_use_settings = hypothesis_settings(current,
                                                                             max_examples=self.settings.examples)

    # -- cases ------------------------------------------------------------------------------------------------

    @property
    def runner(self) -> CaseRunner:
        if self._runner is None:
            from .case import CaseRunner

            self._runner = CaseRunner(self.settings, self.progress)
        return self._runner

    @property
    def tracking(self) -> bool:
        return bool(self.settings.wandb_project) and self.settings.wandb_mode != "disabled"

    def run_case(self, node: pytest.Item, schedule: str | Path | Schedule, name: str | None,
                 on_collapse: str = "fail") -> CaseResult:
        """Run one case for a test, record it, then check collapse and the schedule's declarative thresholds."""
        result, loaded, failures, _ = self._case(node, schedule, name, on_collapse)
        if failures:
            pytest.fail(self._failure_message(loaded, failures), pytrace=False)
        return result

    def _case(self, node: pytest.Item, schedule: str | Path | Schedule, name: str | None, on_collapse: str,
              trial: Any = None) -> tuple[CaseResult, Schedule, list[str], dict[str, Any]]:
        """Run and record one case: (result, schedule, threshold and collapse failures, record). `trial` (a
        searched sweep's search.CaseTrial) may stop retraining early and labels the record."""
        if self.tracking and self._tracker is None:
            self._start_tracking()
        def run() -> tuple[Schedule, str, CaseResult]:
            loaded = schedule if isinstance(schedule, Schedule) else load_schedule(schedule)
            suffix = self._record_suffix(node, loaded, name)
            extra = {} if trial is None else {"on_epoch": trial.on_epoch}
            try:
                return loaded, suffix, self.runner.run(loaded, node.name + suffix, **extra)
            except WeakBaselineError as exc:
                # No case of this session is worth running on it: stop here (pytest, and xdist's controller, end
                # the session after this test, with exit code 1).
                node.session.shouldfail = str(exc)
                raise

        loaded, suffix, result = fail_test_on_error(run)
        if trial is not None:
            result = replace(result, search=trial.labels(result))
        record = self._record(node, result, suffix)
        self.record(record)
        # An early-terminated case stopped because it was worse than others: recorded, never failed.
        failures = [] if result.early_terminated else self._threshold_failures(result, loaded)
        if result.collapsed and (on_collapse == "fail" or failures):  # a recorded collapse explains other misses
            failures.insert(0, _collapse_line(result, hint=on_collapse == "fail"))
        if self.tracking:
            self._track(node, result, passed=not failures)
        return result, loaded, failures, record

    def run_sweep(self, node: pytest.Item, point: SweepPoint, on_collapse: str) -> list[CaseResult]:
        """A grid point is one case; a random sweep draws its cases with hypothesis, guided by its metric; a
        bayes sweep (or any sweep, with --prunebench-study) runs its cases through an Optuna study."""
        if point.values is None and self._searched(point.sweep):
            from .search import run_search

            return run_search(self, node, point.sweep, self._sweep_model(point.sweep), on_collapse)
        if point.values is None:
            return self._draw_sweep(node, point.sweep, self._sweep_model(point.sweep), on_collapse)
        return [self.run_case(node, self.sweep_schedule(point), None, on_collapse)]

    def sweep_schedule(self, point: SweepPoint, values: dict[str, Any] | None = None) -> Schedule:
        """The schedule of a grid point (or of `values` drawn from a random sweep), on the model it runs on."""
        from .sweep import point_schedule

        chosen = point.values if values is None else values
        if chosen is None:
            raise ValueError(f"{point.case_id()} is a random sweep: pass the drawn values")
        return point_schedule(point.sweep, chosen, self._sweep_model(point.sweep))

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

    def _start_tracking(self) -> TrackingProcess:
        """W&B runs are written by a child process, which warms up on another core while the first case loads
        its data; the case's measurements wait until it is ready (lock.in_background)."""
        from .lock import in_background
        from .tracking_process import TrackingProcess

        self._tracker = TrackingProcess()
        in_background(self._tracker.ready, "wandb-start")
        return self._tracker

    def _track(self, node: pytest.Item, result: CaseResult, passed: bool) -> None:
        """One W&B run for the case. Any W&B failure is a warning: the record above is already written."""
        from .tracking import TrackedCase, TrackingError, WandbTarget

        target = WandbTarget(
            project=self.settings.wandb_project or "", entity=self.settings.wandb_entity,
            group=self.settings.wandb_group or "", mode=self.settings.wandb_mode,
            directory=Path(self.settings.wandb_dir or self.config.rootpath).resolve(),
            log_model=self.settings.wandb_log_model)
        tracker = self._tracker or self._start_tracking()
        try:
            with self.runner.host_work():  # wandb's service writes the run: not during a measurement
                where = tracker.log(target, TrackedCase.of(result), suite=node.path.stem, passed=passed)
        except TrackingError as exc:
            warnings.warn(PrunebenchWarning(f"{result.name}: no W&B run written ({exc}); the pytest-benchmark "
                                            f"record is kept"), stacklevel=2)
            return
        self.progress(f"{result.name}: W&B run {where}")

    def finish_tracking(self, wait: bool) -> None:
        """End the W&B process's input (it exits after its last run); with `wait`, wait for it to exit."""
        if self._tracker is None:
            return
        if wait:
            self._tracker.wait()
        else:
            self._tracker.close()

    def _threshold_failures(self, result: CaseResult, schedule: Schedule) -> list[str]:
        """The schedule's bounds, except where --prunebench-threshold KEY=VALUE sets one for every case."""
        overrides = dict(self.settings.thresholds)
        own = replace(schedule.thresholds, **dict.fromkeys(overrides))
        return (threshold_failures(result, own, schedule.path)
                + threshold_failures(result, Thresholds(**overrides), "--prunebench-threshold"))

    @staticmethod
    def _failure_message(schedule: Schedule, failures: list[str]) -> str:
        message = "prunebench case failed:\n  " + "\n  ".join(failures)
        if schedule.generated:  # the configuration itself, ready to save as a schedule file and rerun
            text = schedule_yaml(schedule.active()).rstrip().replace("\n", "\n  ")
            message += f"\nconfiguration {schedule.name} (pruners at sparsity 0 left out):\n  {text}"
        return message

    def _record_suffix(self, node: pytest.Item, schedule: Schedule, name: str | None) -> str:
        """'' for a test's first unnamed case, else `::name`: the same names in every run. A generated schedule
        is always named by its configuration, so every hypothesis example is its own record."""
        count = self._cases_per_node.get(node.nodeid, 0)
        self._cases_per_node[node.nodeid] = count + 1
        anonymous = name is None and count == 0 and not schedule.generated
        return "" if anonymous else f"::{name or schedule.name}"

    def _record(self, node: pytest.Item, result: CaseResult, suffix: str) -> dict[str, Any]:
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

    def record(self, record: dict[str, Any]) -> None:
        """One pytest-benchmark record per case: stats are the device latency samples in seconds.

        On an xdist worker the record waits for the controller: pytest-benchmark is off under xdist and every
        worker would overwrite the same JSON file.
        """
        if hasattr(self.config, "workerinput"):
            _replace_by_name(self.worker_records, record, lambda r: r["fullname"])
            self._append_to_spool(record)
            return
        _replace_by_name(self.rows, {"name": record["name"], "fullname": record["fullname"], **record["extra_info"]},
                         lambda r: r["fullname"])
        benchmarks = getattr(self.config, "_benchmarksession", None)
        if benchmarks is None:
            warnings.warn(PrunebenchWarning("pytest-benchmark is not active (-p no:benchmark?): no record written"),
                          stacklevel=2)
            return
        from pytest_benchmark.stats import Metadata

        source = _RecordSource(name=record["name"], fullname=record["fullname"], group="prunebench",
                               param=record["param"], params=record["params"], extra_info=record["extra_info"])
        metadata = Metadata(source, iterations=1, options=record["options"])
        for sample in record["samples"]:
            metadata.update(sample)
        _replace_by_name(benchmarks.benchmarks, metadata, lambda m: m.fullname)

    def worker_finished(self, workeroutput: dict[str, Any]) -> None:
        for record in workeroutput.get(WORKER_RECORDS, []):
            self.record(record)

    # -- records that survive a worker: Ctrl-C, a crash -------------------------------------------------------

    def spool_dir(self) -> Path:
        """The controller's directory where local xdist workers append every record the moment it is made.

        A worker hands its records over when it finishes; one interrupted by Ctrl-C (or killed) may never do so.
        Remote workers (`--tx ssh=...`) cannot reach it and rely on the hand-over alone.
        """
        if self._spool is None:
            import tempfile

            self._spool = Path(tempfile.mkdtemp(prefix="prunebench-records-"))
        return self._spool

    def _append_to_spool(self, record: dict[str, Any]) -> None:
        import json

        workerinput = getattr(self.config, "workerinput", {})
        folder = Path(workerinput.get(SPOOL_KEY) or "")
        if not workerinput.get(SPOOL_KEY) or not folder.is_dir():
            return
        with (folder / f"{workerinput.get('workerid', 'worker')}.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def collect_spooled(self) -> None:
        """At session end on the controller: every spooled record no worker handed over, then the spool goes."""
        import json
        import shutil

        if self._spool is None:
            return
        known = {row["fullname"] for row in self.rows}
        for path in sorted(self._spool.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:  # the last line of a worker killed while writing it
                    continue
                if record["fullname"] not in known:
                    self.record(record)
                    known.add(record["fullname"])
        shutil.rmtree(self._spool, ignore_errors=True)
        self._spool = None

    # -- regression gates (--prunebench-compare-fail) ---------------------------------------------------------

    def saved_run(self) -> tuple[str, dict[str, dict[str, Any]]]:
        """The run `--benchmark-compare` selected: its file and each case's extra_info by full name.

        pytest-benchmark loads it in its own pytest_configure (trylast), so this is asked at session start.
        """
        gates = ", ".join(map(str, self.settings.compare_fail))
        if not self.config.getoption("benchmark_compare", None):
            raise pytest.UsageError(f"--prunebench-compare-fail {gates}: add --benchmark-compare (the saved run to "
                                    f"compare with, e.g. --benchmark-compare or --benchmark-compare=0001)")
        benchmarks = getattr(self.config, "_benchmarksession", None)
        loaded = getattr(benchmarks, "compared_mapping", None) or {}
        if not loaded:
            storage = getattr(benchmarks, "storage", "the benchmark storage")
            raise pytest.UsageError(f"--prunebench-compare-fail {gates}: --benchmark-compare found no saved run in "
                                    f"{storage}; save one first (--benchmark-autosave on main, see the README's "
                                    f"CI recipe)")
        path, by_name = list(loaded.items())[-1]  # several matches: the newest
        return str(path), {name: bench.get("extra_info", {}) for name, bench in by_name.items()}

    def write_report(self) -> None:
        """--prunebench-report DIR: the report of this session's cases (every worker's), as `prunebench report`."""
        from .report import Case, write_report

        report = self.settings.report
        if report is None:
            return
        if not self.rows:
            warnings.warn(PrunebenchWarning(f"--prunebench-report {self.settings.report}: no case ran, no report"),
                          stacklevel=2)
            return
        try:
            written = write_report([Case(row["fullname"], row) for row in self.rows], report)
        except (PrunebenchError, OSError) as exc:  # the records are written already: a report never loses them
            warnings.warn(PrunebenchWarning(f"--prunebench-report: {exc}"), stacklevel=2)
            return
        self.progress(f"report: {written[-1]} ({len(self.rows)} case(s))")

    def check_gates(self, session: pytest.Session) -> None:
        """At session end: every case of this run against the saved run; a regression fails the session."""
        from .gates import evaluate

        source, before = self.saved_run()
        now = {row["fullname"]: row for row in self.rows}
        self.gate_report = evaluate(self.settings.compare_fail, now, before, source)
        if self.gate_report.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    # -- output -----------------------------------------------------------------------------------------------

    def progress(self, message: str) -> None:
        """Long work shows as it moves, even while pytest captures output."""
        if self.config.get_verbosity() < 0:
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None or capture is None:
            print(f"prunebench: {message}", file=sys.stderr)
            return
        with capture.global_and_fixture_disabled():
            reporter.ensure_newline()
            reporter.write_line(f"prunebench: {message}")

    def terminal_summary(self, reporter: Any) -> None:
        summary.cases_summary(reporter, self.rows, self.settings.device)
        self._studies_summary(reporter)
        if self.gate_report is not None:
            from .gates import report_lines

            verdict = "FAILED" if self.gate_report.failed else "passed"
            reporter.write_sep("-", f"prunebench: --prunebench-compare-fail {verdict}",
                               red=self.gate_report.failed, green=not self.gate_report.failed)
            for line in report_lines(self.gate_report):
                reporter.write_line(line)

    def amend_records(self, records: list[dict[str, Any]], **fields: Any) -> None:
        """Add fields to records already made (e.g. on_pareto_front, known when a search ends). The record's
        extra_info is the one pytest-benchmark (or the xdist hand-over) writes; the summary rows are copies."""
        names = {record["fullname"] for record in records}
        for record in records:
            record["extra_info"].update(fields)
        for row in self.rows:
            if row["fullname"] in names:
                row.update(fields)

    def _studies_summary(self, reporter: Any) -> None:
        """Per study this session's cases belong to: its Pareto front and parameter importance, over every trial
        of the study (all processes and hosts that worked on it)."""
        studies = sorted({row["study"] for row in self.rows if isinstance(row.get("study"), str)})
        if not studies:
            return
        from .search import summary_lines

        for name in studies:
            reporter.write_sep("-", f"prunebench: study {name}")
            for line in summary_lines(self.settings.study, self.settings.root, name):
                reporter.write_line(line)


def collapse_policy(node: pytest.Item) -> str:
    """`on_collapse` from the closest `prunebench` marker that sets it (test, class or module)."""
    for marker in node.iter_markers("prunebench"):
        unknown = sorted(set(marker.kwargs) - MARKER_KWARGS)
        if unknown or marker.args:
            pytest.fail(f"{node.nodeid}: pytest.mark.prunebench takes only on_collapse=... and sweep=..., got "
                        f"{', '.join(unknown) or marker.args}", pytrace=False)
        if "on_collapse" in marker.kwargs:
            policy = marker.kwargs["on_collapse"]
            if policy not in COLLAPSE_POLICIES:
                pytest.fail(f"{node.nodeid}: pytest.mark.prunebench(on_collapse={policy!r}): use one of "
                            f"{', '.join(map(repr, COLLAPSE_POLICIES))}", pytrace=False)
            return policy
    return "fail"


def _collapse_line(result: CaseResult, hint: bool) -> str:
    retraining = "retraining was skipped" if result.epochs else "no retraining was scheduled"
    line = (f"{result.name} collapsed when pruned: {result.collapse_reason}; {retraining} (such models never "
            f"recovered in the seed's runs)")
    if hint:
        line += "; to record collapses without failing, mark the suite `pytest.mark.prunebench(on_collapse=\"record\")`"
    return line


def _replace_by_name(items: list[Any], item: Any, name: Callable[[Any], str]) -> None:
    """Append, dropping an earlier entry of the same name: hypothesis replays examples (shrinking, the example
    database), and a case run twice is one record, the latest."""
    items[:] = [existing for existing in items if name(existing) != name(item)]
    items.append(item)
