"""The objects behind the plugin's hooks, built once per process by `build_session` and kept in `config.stash`.

`build_session` is the one place that asks whether this process is an xdist worker; every other difference
between the roles lives in xdist_roles.Controller and xdist_roles.Worker.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from .benchmark_records import BenchmarkRecords
from .cases import CaseService, RecordSink
from .collect import Collector
from .options import resolve
from .session_end import SessionEnd
from .settings import Settings
from .wandb_runs import WandbRuns
from .xdist_roles import Controller, ProcessRole, Worker

if TYPE_CHECKING:
    from .case import CaseRunner


@dataclass(frozen=True)
class PrunebenchSession:
    settings: Settings
    collector: Collector  # collection: schedule files, sweep points, example limits
    cases: CaseService  # a test's cases: run, record, pass or fail
    wandb: WandbRuns
    process: ProcessRole  # Controller (pytest alone, or xdist's controller) or Worker (an xdist worker)

    def session_finish(self, session: pytest.Session) -> None:
        self.wandb.finish(wait=False)  # the W&B process exits while pytest writes its summary
        self.process.session_finish(session)


def build_session(config: pytest.Config) -> PrunebenchSession:
    workerinput = getattr(config, "workerinput", None)  # xdist sets it on its workers only
    settings = resolve(config, workerinput or {})
    progress = functools.partial(_progress, config)

    @functools.cache  # one CaseRunner per process, built by the first case: collection never builds one
    def runner() -> CaseRunner:
        from .case import CaseRunner

        return CaseRunner(settings, progress)

    wandb = WandbRuns(settings, config.rootpath, host_work=lambda: runner().host_work(), progress=progress)
    process: ProcessRole
    sink: RecordSink
    if workerinput is not None:  # an xdist worker: its records travel to the controller
        process = sink = Worker(workerinput)
    else:
        records = BenchmarkRecords(config, settings)
        process, sink = Controller(settings, records, SessionEnd(settings, records, progress)), records
    cases = CaseService(settings, runner, sink, progress, wandb if wandb.enabled else None)
    return PrunebenchSession(settings, Collector(settings), cases, wandb, process)


def _progress(config: pytest.Config, message: str) -> None:
    """Long work shows as it moves, even while pytest captures output."""
    if config.get_verbosity() < 0:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(f"prunebench: {message}", file=sys.stderr)
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(f"prunebench: {message}")
