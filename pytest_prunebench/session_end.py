"""The end of a session on the process that writes the records (xdist_roles.Controller): the regression gates
(--prunebench-compare-fail), the report (--prunebench-report) and the terminal summary."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from .benchmark_records import BenchmarkRecords
from .errors import PrunebenchError, PrunebenchWarning
from .settings import Settings

if TYPE_CHECKING:
    from .gates import GateReport


@dataclass
class SessionEnd:
    settings: Settings
    records: BenchmarkRecords
    progress: Callable[[str], None]
    gate_report: GateReport | None = None

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every case of the session, from every process: name, fullname and the record's extra_info."""
        return self.records.rows

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

        source, before = self.records.saved_run()
        now = {row["fullname"]: row for row in self.rows}
        self.gate_report = evaluate(self.settings.compare_fail, now, before, source)
        if self.gate_report.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def terminal_summary(self, reporter: Any) -> None:
        self._cases_summary(reporter)
        self._studies_summary(reporter)
        if self.gate_report is not None:
            from .gates import report_lines

            verdict = "FAILED" if self.gate_report.failed else "passed"
            reporter.write_sep("-", f"prunebench: --prunebench-compare-fail {verdict}",
                               red=self.gate_report.failed, green=not self.gate_report.failed)
            for line in report_lines(self.gate_report):
                reporter.write_line(line)

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

    def _cases_summary(self, reporter: Any) -> None:
        from .report import text_table

        if not self.rows:
            return
        collapsed = sum(1 for row in self.rows if row["collapsed"])
        reporter.write_sep("-", f"prunebench: {len(self.rows)} case(s) on {self.settings.device}, "
                                f"{collapsed} collapsed")
        header = ("case", "top1 %", "dense %", "latency ms [95% CI]", "abs ms [95% CI]", "speed-up [95% CI]",
                  "MAC speed-up", "params", "ONNX KB")
        rows = [_summary_cells(r) for r in sorted(self.rows, key=lambda row: row["name"])]
        for line in text_table(header, rows):
            reporter.write_line(line)
        precision = sorted({r["precision"] for r in self.rows})
        several = len(precision) > 1  # the dense model is deployed, and measured, once per precision then
        baselines = sorted({(r["model"], r["dataset"], r["top1_dense"], r.get("baseline_epochs"),
                             f" at {r['precision']}" if several else "") for r in self.rows})
        reporter.write_line("dense baselines: " + "; ".join(
            f"{model} on {dataset} {top1:.2f}% top1{at} ({epochs} epoch(s))"
            for model, dataset, top1, epochs, at in baselines))
        reporter.write_line(f"precision: {', '.join(precision)}; speed-up = dense median / pruned median latency, "
                            f"timed interleaved in each case's window")
        references = sorted({(r["model"], r["precision"], r["latency_ms_ref"]) for r in self.rows
                             if r.get("latency_ms_ref")})
        if references:
            reporter.write_line("latency ms = drift-corrected: the session's reference dense median ("
                                + "; ".join(f"{model}{f' {precision}' if several else ''} {ms:.3f} ms"
                                            for model, precision, ms in references)
                                + ") / speed-up; abs ms = the case's own median, which drifts between windows")
            reporter.write_line("95% CI: speed-up by a bootstrap over pairs of interleaved blocks (dense, pruned); "
                                "abs ms by order statistics")


def _summary_cells(row: dict[str, Any]) -> tuple[str, ...]:
    from .report import with_interval

    return (row["name"] + (" [collapsed]" if row["collapsed"] else ""), f"{row['top1']:.2f}",
            f"{row['top1_dense']:.2f}",
            with_interval(row.get("latency_ms_rel", row["latency_ms"]), row.get("latency_ms_rel_ci"), 3),
            with_interval(row["latency_ms"], row.get("latency_ms_ci"), 3),
            with_interval(row["latency_speedup"], row.get("latency_speedup_ci"), 2, "x"),
            f"{row['mac_speedup']:.2f}x", f"{row['params']:,}", f"{row['onnx_bytes'] / 1024:.0f}")

