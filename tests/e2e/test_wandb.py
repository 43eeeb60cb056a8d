"""Weights & Biases: one offline run per case, read back from its `run-*.wandb` file and compared with the
pytest-benchmark JSON; options and their refusals; a broken W&B set-up never costs a record.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_wandb.py, tests/plugin/test_wandb.py.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest
from wandb_offline import BLOCK, OfflineRun, offline_runs

from pytest_prunebench import tracking_process
from pytest_prunebench.tracking import (
    TrackedCase,
    TrackingError,
    WandbTarget,
)
from pytest_prunebench.tracking_process import TrackingProcess


def finished_run(directory: Path, timeout: float = 30.0) -> OfflineRun:
    """The one run under `directory` once its exit record is on disk: `run.finish()` in this process returns
    before wandb's service process has necessarily written the last records (seen once, under heavy load)."""
    deadline = time.monotonic() + timeout
    while True:
        (found,) = offline_runs(directory)
        if found.exit_code is not None or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_the_run_file_reader_joins_records_that_span_blocks(tmp_path: Path, wandb_env: None) -> None:
    """A record longer than one 32 KiB block is split into first/middle/last chunks by wandb-core itself."""
    import wandb

    from pytest_prunebench.tracking import quiet_settings

    run = wandb.init(project="reader", mode="offline", dir=str(tmp_path), settings=quiet_settings(),
                     reinit="create_new")
    run.summary.update({"big": "x" * 100_000, "small": 1})
    for step in range(3):
        run.log({"step_value": step}, step=step)
    run.finish()

    found = finished_run(tmp_path)
    assert found.summary["big"] == "x" * 100_000 and found.summary["small"] == 1
    assert [row["step_value"] for row in found.history] == [0, 1, 2]
    assert found.path.stat().st_size > 2 * BLOCK


def tracked_case(name: str, tmp_path: Path) -> TrackedCase:
    onnx = tmp_path / f"{name}.onnx"
    onnx.write_bytes(b"not read unless --wandb-log-model")
    info = {"model": "resnet20", "dataset": "synthetic", "device": "CPU", "epochs": 1, "top1": 51.5,
            "sparsity.pruner1": 0.5, "measured_at": [1.0, 2.0]}
    return TrackedCase(name, "resnet20", "synthetic", "CPU", info, (0.002, 0.003, 0.004),
                       ({"epoch": 0, "loss": 1.5, "top1": 40.0, "lr": 0.1},), str(onnx), 1000, 100)


def test_the_tracking_process_writes_each_run_and_reports_w_and_b_errors_in_one_line(tmp_path: Path,
                                                                                       wandb_env: None) -> None:
    tracker = TrackingProcess()
    target = WandbTarget("check", None, "g1", "offline", tmp_path / "runs", log_model=False)
    tracker.ready()
    where = Path(tracker.log(target, tracked_case("first", tmp_path), "test_suite", passed=True))
    with pytest.raises(TrackingError, match=r"^--wandb-project 'a/b' is not a W&B project name \(.*\)$"):
        tracker.log(replace(target, project="a/b"), tracked_case("refused", tmp_path), "test_suite", passed=True)
    tracker.log(target, tracked_case("second", tmp_path), "test_suite", passed=False)  # still serving
    tracker.wait()

    runs = {run.name: run for run in offline_runs(tmp_path / "runs")}
    assert set(runs) == {"first", "second"} and where == runs["first"].path.parent
    first = runs["first"]
    assert first.config["sparsity.pruner1"] == 0.5 and first.config["suite"] == "test_suite"
    assert first.summary["top1"] == 51.5 and first.summary["latency_median_ms"] == pytest.approx(3.0)
    assert first.summary["passed"] is True and runs["second"].summary["passed"] is False
    assert first.history[0]["retrain/loss"] == 1.5 and first.exit_code == 0


def signalled_tracker(signal_number: int) -> TrackingProcess:
    """A started tracking process that was sent `signal_number` once ready."""
    tracker = TrackingProcess()
    tracker.ready()
    assert tracker.pid is not None
    os.kill(tracker.pid, signal_number)
    return tracker


def test_a_tracking_process_that_died_makes_each_later_run_a_tracking_error(tmp_path: Path,
                                                                             wandb_env: None) -> None:
    tracker = signalled_tracker(signal.SIGKILL)
    target = WandbTarget("check", None, "g1", "offline", tmp_path / "runs", log_model=False)
    for name in ("one", "two"):
        with pytest.raises(TrackingError, match=r"the W&B process (exited \(code -9\)|is gone)"):
            tracker.log(target, tracked_case(name, tmp_path), "test_suite", passed=True)
    tracker.wait()
    assert not list((tmp_path).rglob("*.wandb"))


def test_a_tracking_process_that_does_not_start_in_time_is_a_tracking_error(
        tmp_path: Path, wandb_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracking_process, "READY_TIMEOUT_S", 0.001)  # the child's start takes about a second
    tracker = TrackingProcess()
    tracker.ready()  # what measurements wait for: it must return
    target = WandbTarget("check", None, "g1", "offline", tmp_path / "runs", log_model=False)
    with pytest.raises(TrackingError, match=r"^the W&B process did not start within 0.001 s$"):
        tracker.log(target, tracked_case("late", tmp_path), "test_suite", passed=True)
    tracker.wait()
    assert not (tmp_path / "runs").exists()


def test_the_tracking_process_ignores_ctrl_c_so_the_run_being_written_ends(tmp_path: Path,
                                                                            wandb_env: None) -> None:
    tracker = signalled_tracker(signal.SIGINT)
    target = WandbTarget("check", None, "g1", "offline", tmp_path / "runs", log_model=False)
    tracker.log(target, tracked_case("after-sigint", tmp_path), "test_suite", passed=True)
    tracker.wait()
    assert [run.name for run in offline_runs(tmp_path / "runs")] == ["after-sigint"]
