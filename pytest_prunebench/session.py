"""The per-session object behind the plugin: runs cases, turns them into pytest-benchmark records, reports."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .errors import PrunebenchError
from .schedule import Schedule, find_schedule_files, load_schedule
from .settings import Settings
from .thresholds import threshold_failures

if TYPE_CHECKING:
    from .case import CaseResult, CaseRunner


WORKER_RECORDS = "prunebench_records"


class PrunebenchWarning(UserWarning):
    """Something a user should know that does not fail a case."""


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
    _cases_per_node: dict[str, int] = field(default_factory=dict)

    # -- start ------------------------------------------------------------------------------------------------

    def check_device(self) -> None:
        from . import device

        try:
            device.check_device(self.settings.device)
        except PrunebenchError as exc:
            raise pytest.UsageError(str(exc)) from None

    def schedule_files(self) -> list[Path]:
        return find_schedule_files(self.settings.schedules)

    @staticmethod
    def schedule_ids(files: list[Path]) -> list[str]:
        """File stems; the parent folder is added only where two stems collide. Stable across runs."""
        stems = [f.stem for f in files]
        return [f.stem if stems.count(f.stem) == 1 else f"{f.parent.name}/{f.stem}" for f in files]

    # -- cases ------------------------------------------------------------------------------------------------

    @property
    def runner(self) -> CaseRunner:
        if self._runner is None:
            from .case import CaseRunner

            self._runner = CaseRunner(self.settings, self.progress)
        return self._runner

    def start_warnings(self) -> list[PrunebenchWarning]:
        if not self.settings.wandb_project:
            return []
        return [PrunebenchWarning(f"--wandb-project {self.settings.wandb_project}: W&B logging is not implemented "
                                  f"yet; results go to pytest-benchmark only")]

    def run_case(self, node: pytest.Item, schedule: str | Path | Schedule, name: str | None) -> CaseResult:
        """Run one case for a test, record it, then check the schedule's declarative thresholds."""
        try:
            loaded = schedule if isinstance(schedule, Schedule) else load_schedule(schedule)
            suffix = self._record_suffix(node, loaded, name)
            result = self.runner.run(loaded, node.name + suffix)
        except PrunebenchError as exc:
            error = str(exc)
        else:
            error = None
        if error is not None:  # failed outside the handler, or pytest prints the message twice, chained
            pytest.fail(error, pytrace=False)
        self.record(self._record(node, result, suffix))
        failures = threshold_failures(result, loaded.thresholds, loaded.path)
        if failures:
            pytest.fail("prunebench threshold failed:\n  " + "\n  ".join(failures), pytrace=False)
        return result

    def _record_suffix(self, node: pytest.Item, schedule: Schedule, name: str | None) -> str:
        """'' for a test's first unnamed case, else `::name`: the same names in every run."""
        count = self._cases_per_node.get(node.nodeid, 0)
        self._cases_per_node[node.nodeid] = count + 1
        return "" if name is None and count == 0 else f"::{name or schedule.name}"

    def _record(self, node: pytest.Item, result: CaseResult, suffix: str) -> dict[str, Any]:
        """A record as plain data, so an xdist worker can hand it to the controller."""
        callspec = getattr(node, "callspec", None)
        return {
            "name": node.name + suffix, "fullname": node.nodeid + suffix,
            "param": callspec.id if callspec else None,
            "params": {k: str(v) for k, v in callspec.params.items()} if callspec else None,
            "extra_info": result.extra_info(), "samples": list(result.latencies_s),
            "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": self.settings.rounds,
                        "max_time": 0.0, "min_time": 0.0, "precision": None, "confidence": None,
                        "warmup": self.settings.warmup, "device": result.device},
        }

    def record(self, record: dict[str, Any]) -> None:
        """One pytest-benchmark record per case: stats are the device latency samples in seconds.

        On an xdist worker the record waits for the controller: pytest-benchmark is off under xdist and every
        worker would overwrite the same JSON file.
        """
        if hasattr(self.config, "workerinput"):
            self.worker_records.append(record)
            return
        self.rows.append({"name": record["name"], **record["extra_info"]})
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
        benchmarks.benchmarks.append(metadata)

    def worker_finished(self, workeroutput: dict[str, Any]) -> None:
        for record in workeroutput.get(WORKER_RECORDS, []):
            self.record(record)

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
        if not self.rows:
            return
        reporter.write_sep("-", f"prunebench: {len(self.rows)} case(s) on {self.settings.device}")
        header = ("case", "top1 %", "dense %", "latency ms", "speed-up", "MAC speed-up", "params", "ONNX KB")
        rows = [(r["name"], f"{r['top1']:.2f}", f"{r['top1_dense']:.2f}", f"{r['latency_ms']:.3f}",
                 f"{r['latency_speedup']:.2f}x", f"{r['mac_speedup']:.2f}x", f"{r['params']:,}",
                 f"{r['onnx_bytes'] / 1024:.0f}") for r in sorted(self.rows, key=lambda row: row["name"])]
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
            reporter.write_line("  ".join(cells))
        precision = sorted({r["precision"] for r in self.rows})
        reporter.write_line(f"precision: {', '.join(precision)}; speed-up = dense median / pruned median latency, "
                            f"timed interleaved in each case's window")
