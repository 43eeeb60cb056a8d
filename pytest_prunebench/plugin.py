"""pytest hooks, options and fixtures only; each forwards to the PrunebenchSession in `config.stash`.

Import-light: this module loads in every pytest run of the environment, so torch, openvino and wandb are
imported only when a case runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import REFERENCE_KEY, WANDB_GROUP_KEY, add_options, resolve
from .schedule import Schedule
from .session import SPOOL_KEY, WORKER_RECORDS, PrunebenchSession, collapse_policy

if TYPE_CHECKING:
    from .case import CaseResult
    from .sweep import SweepPoint

SESSION = pytest.StashKey[PrunebenchSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    session = PrunebenchSession(config, resolve(config))
    config.stash[SESSION] = session
    config.addinivalue_line("markers", "prunebench(on_collapse='fail', sweep=None): a pruning case measured on an "
                            "OpenVINO device; on_collapse='record' records a collapsed case without failing it; "
                            "sweep='file.yaml' names the W&B sweep file(s) of a sweep suite")
    if (session.settings.device != "CPU" or session.settings.broker) and not hasattr(config, "workerinput"):
        session.check_device()  # an explicitly chosen device (or the broker) must exist before any training starts
    if session.settings.study is not None and not hasattr(config, "workerinput"):
        session.check_study()  # so must the study storage


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "prunebench_schedule" in metafunc.fixturenames:
        session = metafunc.config.stash[SESSION]
        files = session.schedule_files()
        metafunc.parametrize("prunebench_schedule", files, ids=session.schedule_ids(files))
    if "prunebench_sweep" in metafunc.fixturenames:
        points = metafunc.config.stash[SESSION].sweep_points(metafunc.definition)
        metafunc.parametrize("prunebench_sweep", points, ids=[point.case_id() for point in points])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cases = [item for item in items if "prunebench" in getattr(item, "fixturenames", ())]
    for item in cases:  # `-m prunebench` / `-m "not prunebench"` select the cases
        item.add_marker("prunebench")
    config.stash[SESSION].limit_examples(cases)


def pytest_sessionstart(session: pytest.Session) -> None:
    prunebench = session.config.stash[SESSION]
    if prunebench.settings.compare_fail and not hasattr(session.config, "workerinput"):
        prunebench.saved_run()  # a missing saved run stops the session before any case runs
    prunebench.gather_machine_info()


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_benchmark_generate_machine_info(config: pytest.Config) -> dict[str, Any] | None:
    return config.stash[SESSION].machine_info()


@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_spooled(session: pytest.Session) -> Any:
    """Around pytest-benchmark's sessionfinish, which writes the JSON before anything else: the spooled records
    of xdist workers that never handed theirs over (Ctrl-C) are recorded before that."""
    if not hasattr(session.config, "workerinput"):
        session.config.stash[SESSION].collect_spooled()
    return (yield)


def pytest_sessionfinish(session: pytest.Session) -> None:
    prunebench = session.config.stash[SESSION]
    prunebench.finish_tracking(wait=False)  # the W&B process exits while pytest writes its summary
    if hasattr(session.config, "workeroutput"):  # an xdist worker: its records travel to the controller
        session.config.workeroutput[WORKER_RECORDS] = prunebench.worker_records
        return
    if prunebench.settings.report is not None:
        prunebench.write_report()
    if prunebench.settings.compare_fail:
        prunebench.check_gates(session)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker logs its W&B runs into the controller's group, spools its records to it, and scales its
    drift-corrected latencies to the session's one reference dense median (reference.py)."""
    session = node.config.stash[SESSION]
    node.workerinput[WANDB_GROUP_KEY] = session.settings.wandb_group
    node.workerinput[SPOOL_KEY] = str(session.spool_dir())
    node.workerinput[REFERENCE_KEY] = str(session.spool_dir() / "references")  # one reference per session


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    node.config.stash[SESSION].worker_finished(getattr(node, "workeroutput", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.config.stash[SESSION].terminal_summary(terminalreporter)


def pytest_unconfigure(config: pytest.Config) -> None:
    if SESSION in config.stash:
        config.stash[SESSION].finish_tracking(wait=True)


class Prunebench:
    """The `prunebench` fixture: `prunebench.run(schedule)` runs one case and returns its CaseResult."""

    def __init__(self, session: PrunebenchSession, node: pytest.Item, on_collapse: str) -> None:
        self._session = session
        self._node = node
        self.settings = session.settings
        self.on_collapse = on_collapse

    def run(self, schedule: str | Path | Schedule, name: str | None = None) -> CaseResult:
        """Run one case. Keeps no per-call state: under hypothesis every example is its own case and record."""
        return self._session.run_case(self._node, schedule, name, self.on_collapse)

    def sweep_schedule(self, point: SweepPoint) -> Schedule:
        """The schedule a grid point of `prunebench_sweep` runs (its groups expanded on the case's model)."""
        return self._session.sweep_schedule(point)

    def run_sweep(self, point: SweepPoint) -> list[CaseResult]:
        """Run the `prunebench_sweep` parameter: a grid point's case, or a random sweep's drawn cases."""
        return self._session.run_sweep(self._node, point, self.on_collapse)


@pytest.fixture
def prunebench(request: pytest.FixtureRequest) -> Prunebench:
    return Prunebench(request.config.stash[SESSION], request.node, collapse_policy(request.node))

