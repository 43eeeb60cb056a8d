"""pytest hooks, options and fixtures only; each forwards to one object of the PrunebenchSession in
`config.stash` (session.py): its collector, case service, W&B runs or this process's role (xdist_roles.py).

Import-light: this module loads in every pytest run of the environment, so torch, openvino and wandb are
imported only when a case runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .collect import collapse_policy
from .options import add_options
from .schedule import Schedule
from .session import PrunebenchSession, build_session

if TYPE_CHECKING:
    from .case import CaseResult
    from .cases import CaseService
    from .sweep import SweepPoint

SESSION = pytest.StashKey[PrunebenchSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SESSION] = build_session(config)
    config.addinivalue_line("markers", "prunebench(on_collapse='fail', sweep=None): a pruning case measured on an "
                            "OpenVINO device; on_collapse='record' records a collapsed case without failing it; "
                            "sweep='file.yaml' names the W&B sweep file(s) of a sweep suite")
    config.stash[SESSION].process.configure()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    metafunc.config.stash[SESSION].collector.parametrize(metafunc)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[SESSION].collector.mark_cases(items)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[SESSION].process.session_start()


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_benchmark_generate_machine_info(config: pytest.Config) -> dict[str, Any] | None:
    return config.stash[SESSION].process.machine_info()


@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_spooled(session: pytest.Session) -> Any:
    """Around pytest-benchmark's sessionfinish, which writes the JSON before anything else: the spooled records
    of xdist workers that never handed theirs over (Ctrl-C) are recorded before that."""
    session.config.stash[SESSION].process.collect_spooled()
    return (yield)


def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[SESSION].session_finish(session)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.config.stash[SESSION].process.configure_node(node)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    node.config.stash[SESSION].process.node_down(node)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.config.stash[SESSION].process.terminal_summary(terminalreporter)


def pytest_unconfigure(config: pytest.Config) -> None:
    if SESSION in config.stash:
        config.stash[SESSION].wandb.finish(wait=True)


class Prunebench:
    """The `prunebench` fixture: `prunebench.run(schedule)` runs one case and returns its CaseResult."""

    def __init__(self, cases: CaseService, node: pytest.Item, on_collapse: str) -> None:
        self._cases = cases
        self._node = node
        self.settings = cases.settings
        self.on_collapse = on_collapse

    def run(self, schedule: str | Path | Schedule, name: str | None = None) -> CaseResult:
        """Run one case. Keeps no per-call state: under hypothesis every example is its own case and record."""
        return self._cases.run_case(self._node, schedule, name, self.on_collapse)

    def sweep_schedule(self, point: SweepPoint) -> Schedule:
        """The schedule a grid point of `prunebench_sweep` runs (its groups expanded on the case's model)."""
        return self._cases.sweep_schedule(point)

    def run_sweep(self, point: SweepPoint) -> list[CaseResult]:
        """Run the `prunebench_sweep` parameter: a grid point's case, or a random sweep's drawn cases."""
        return self._cases.run_sweep(self._node, point, self.on_collapse)


@pytest.fixture
def prunebench(request: pytest.FixtureRequest) -> Prunebench:
    return Prunebench(request.config.stash[SESSION].cases, request.node, collapse_policy(request.node))

