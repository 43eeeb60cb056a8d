"""The two roles a pytest process plays, as pytest-xdist has DSession and WorkerInteractor.

`Controller`: the process that writes pytest-benchmark's JSON and the report and checks the regression rules:
pytest alone, or xdist's controller, which hands its workers the spool and gathers their records. `Worker`: an
xdist worker, whose records travel to the controller. session.build_session picks one per process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .benchmark_records import BenchmarkRecords, Record, replace_by_name
from .errors import PrunebenchError
from .options import REFERENCE_KEY, WANDB_GROUP_KEY
from .session_end import SessionEnd
from .settings import Settings

WORKER_RECORDS = "prunebench_records"  # workeroutput: a worker's records, handed over when it finishes
SPOOL_KEY = "prunebench_spool"  # workerinput: the controller's directory where workers also append each record


class ProcessRole:
    """What the plugin's hooks ask of this process; a role does nothing where it has no part."""

    def configure(self) -> None:
        """At pytest_configure, before any collection or training."""

    def session_start(self) -> None:
        """At pytest_sessionstart."""

    def machine_info(self) -> dict[str, Any] | None:
        return None

    def collect_spooled(self) -> None:
        """At session end, before pytest-benchmark writes its JSON."""

    def session_finish(self, session: pytest.Session) -> None:
        """At pytest_sessionfinish, after the W&B process was told to finish."""

    def configure_node(self, node: Any) -> None:
        """xdist's pytest_configure_node (on the controller only)."""

    def node_down(self, node: Any) -> None:
        """xdist's pytest_testnodedown (on the controller only)."""

    def terminal_summary(self, reporter: Any) -> None:
        """At pytest_terminal_summary."""


@dataclass
class Controller(ProcessRole):
    settings: Settings
    records: BenchmarkRecords
    end: SessionEnd
    _spool: Path | None = None  # on the controller of an xdist run: see spool_dir

    def configure(self) -> None:
        if self.settings.device != "CPU" or self.settings.broker:
            self._check_device()  # an explicitly chosen device (or the broker) must exist before any training starts
        if self.settings.study is not None:
            self._check_study()  # so must the study storage

    def _check_device(self) -> None:
        from . import device

        try:
            if self.settings.broker:  # the device is on the workers' hosts: the broker must answer now
                from .broker import connect

                connect(self.settings.broker).close()
                return
            device.check_device(self.settings.device)
        except PrunebenchError as exc:
            raise pytest.UsageError(str(exc)) from None

    def _check_study(self) -> None:
        """--prunebench-study: the storage must open now, before any training (search.open_storage)."""
        from .search import open_storage

        try:
            open_storage(self.settings.study, self.settings.root)
        except PrunebenchError as exc:
            raise pytest.UsageError(str(exc)) from None

    def session_start(self) -> None:
        if self.settings.compare_fail:
            self.records.saved_run()  # a missing saved run stops the session before any case runs
        self.records.gather_machine_info()

    def machine_info(self) -> dict[str, Any] | None:
        return self.records.machine_info()

    def session_finish(self, session: pytest.Session) -> None:
        if self.settings.report is not None:
            self.end.write_report()
        if self.settings.compare_fail:
            self.end.check_regressions(session)

    def terminal_summary(self, reporter: Any) -> None:
        self.end.terminal_summary(reporter)

    # -- xdist: the workers' records ------------------------------------------------------------------------

    def configure_node(self, node: Any) -> None:
        """Every worker logs its W&B runs into the controller's group, spools its records to it, and scales its
        drift-corrected latencies to the session's one reference dense median (reference.py)."""
        node.workerinput[WANDB_GROUP_KEY] = self.settings.wandb_group
        node.workerinput[SPOOL_KEY] = str(self.spool_dir())
        node.workerinput[REFERENCE_KEY] = str(self.spool_dir() / "references")  # one reference per session

    def node_down(self, node: Any) -> None:
        for record in getattr(node, "workeroutput", {}).get(WORKER_RECORDS, []):
            self.records.record(record)

    def spool_dir(self) -> Path:
        """The controller's directory where local xdist workers append every record the moment it is made.

        A worker hands its records over when it finishes; one interrupted by Ctrl-C (or killed) may never do so.
        Remote workers (`--tx ssh=...`) cannot reach it and rely on the hand-over alone.
        """
        if self._spool is None:
            import tempfile

            self._spool = Path(tempfile.mkdtemp(prefix="prunebench-records-"))
        return self._spool

    def collect_spooled(self) -> None:
        """At session end: every spooled record no worker handed over, then the spool goes."""
        import shutil

        if self._spool is None:
            return
        known = self.records.recorded()
        for path in sorted(self._spool.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:  # the last line of a worker killed while writing it
                    continue
                if record["fullname"] not in known:
                    self.records.record(record)
                    known.add(record["fullname"])
        shutil.rmtree(self._spool, ignore_errors=True)
        self._spool = None


@dataclass
class Worker(ProcessRole):
    """An xdist worker: pytest-benchmark is off here and every worker would overwrite the same JSON file, so its
    records wait for the controller (cases.RecordSink)."""

    workerinput: dict[str, Any]
    records: list[Record] = field(default_factory=list)

    def record(self, record: Record) -> None:
        replace_by_name(self.records, record, lambda r: r["fullname"])
        self._append_to_spool(record)

    def amend(self, names: set[str], fields: dict[str, Any]) -> None:
        """The records here are the ones amended: nothing else keeps a copy."""

    def _append_to_spool(self, record: Record) -> None:
        folder = Path(self.workerinput.get(SPOOL_KEY) or "")
        if not self.workerinput.get(SPOOL_KEY) or not folder.is_dir():
            return
        with (folder / f"{self.workerinput.get('workerid', 'worker')}.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def session_finish(self, session: pytest.Session) -> None:
        session.config.workeroutput[WORKER_RECORDS] = self.records  # type: ignore[attr-defined]

