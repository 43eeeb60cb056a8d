"""One W&B run per case (--wandb-project), written by a child process (tracking_process.py)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .errors import PrunebenchWarning
from .settings import Settings

if TYPE_CHECKING:
    from .case import CaseResult
    from .tracking_process import TrackingProcess


@dataclass
class WandbRuns:
    """The session's W&B runs: cases.CaseService tells it of every case (cases.CaseWatcher)."""

    settings: Settings
    rootpath: Path
    host_work: Callable[[], AbstractContextManager[None]]  # the runner's: CPU work that waits out measurements
    progress: Callable[[str], None]
    _tracker: TrackingProcess | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.wandb_project) and self.settings.wandb_mode != "disabled"

    def case_starting(self) -> None:
        if self._tracker is None:
            self._start()

    def _start(self) -> TrackingProcess:
        """W&B runs are written by a child process, which warms up on another core while the first case loads
        its data; the case's measurements wait until it is ready (threads.in_background)."""
        from .threads import in_background
        from .tracking_process import TrackingProcess

        self._tracker = TrackingProcess()
        in_background(self._tracker.ready, "wandb-start")
        return self._tracker

    def case_finished(self, node: pytest.Item, result: CaseResult, passed: bool) -> None:
        """One W&B run for the case. Any W&B failure is a warning: the record above is already written."""
        from .tracking import TrackedCase, TrackingError, WandbTarget

        target = WandbTarget(
            project=self.settings.wandb_project or "", entity=self.settings.wandb_entity,
            group=self.settings.wandb_group or "", mode=self.settings.wandb_mode,
            directory=Path(self.settings.wandb_dir or self.rootpath).resolve(),
            log_model=self.settings.wandb_log_model)
        tracker = self._tracker or self._start()
        try:
            with self.host_work():  # wandb's service writes the run: not during a measurement
                where = tracker.log(target, TrackedCase.of(result), suite=node.path.stem, passed=passed)
        except TrackingError as exc:
            warnings.warn(PrunebenchWarning(f"{result.name}: no W&B run written ({exc}); the pytest-benchmark "
                                            f"record is kept"), stacklevel=2)
            return
        self.progress(f"{result.name}: W&B run {where}")

    def finish(self, wait: bool) -> None:
        """End the W&B process's input (it exits after its last run); with `wait`, wait for it to exit."""
        if self._tracker is None:
            return
        if wait:
            self._tracker.wait()
        else:
            self._tracker.close()
