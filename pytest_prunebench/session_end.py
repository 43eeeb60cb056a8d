"""The end of a session on the process that writes the records (xdist_roles.Controller): the regression rules
(--prunebench-compare-fail), the report (--prunebench-report) and the terminal summary."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from . import summary
from .benchmark_records import BenchmarkRecords
from .errors import PrunebenchError, PrunebenchWarning
from .settings import Settings

if TYPE_CHECKING:
    from .regressions import RegressionReport


@dataclass
class SessionEnd:
    settings: Settings
    records: BenchmarkRecords
    progress: Callable[[str], None]
    regression_report: RegressionReport | None = None

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

    def check_regressions(self, session: pytest.Session) -> None:
        """At session end: every case of this run against the saved run; a regression fails the session."""
        from .regressions import compare_runs

        source, before = self.records.saved_run()
        now = {row["fullname"]: row for row in self.rows}
        self.regression_report = compare_runs(self.settings.compare_fail, now, before, source)
        if self.regression_report.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def terminal_summary(self, reporter: Any) -> None:
        summary.cases_summary(reporter, self.rows, self.settings.device)
        self._studies_summary(reporter)
        if self.regression_report is not None:
            from .regressions import report_lines

            verdict = "FAILED" if self.regression_report.failed else "passed"
            reporter.write_sep("-", f"prunebench: --prunebench-compare-fail {verdict}",
                               red=self.regression_report.failed, green=not self.regression_report.failed)
            for line in report_lines(self.regression_report):
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
