"""Weights & Biases: one offline run per case, read back from its `run-*.wandb` file and compared with the
pytest-benchmark JSON; options and their refusals; a broken W&B set-up never costs a record.

This file holds the plugin layer's tests (pytester runs); the topic's other tests are in tests/unit/test_wandb.py,
tests/e2e/test_wandb.py.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from tiny import CHANNELS_SCHEDULE, SCHEDULE_SUITE, run_schedule_suite, write_schedules
from wandb_offline import OfflineRun, offline_runs

# Writes whether this process (or an xdist worker) imported wandb.
IMPORT_PROBE = """
import sys

def pytest_sessionfinish(session):
    worker = getattr(session.config, "workerinput", {}).get("workerid", "main")
    with open(f"imported-{worker}.txt", "w") as out:
        out.write(str("wandb" in sys.modules))
"""


def records(root: Path) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in json.loads((root / "out.json").read_text())["benchmarks"]}


def assert_run_matches_record(run: OfflineRun, record: dict[str, Any]) -> None:
    info = record["extra_info"]
    assert run.name == record["name"]
    assert run.job_type == "test_suite"
    assert set(run.tags) == {info["model"], info["dataset"], info["device"]}
    # config: what the case was, with flat per-pruner keys
    for key in ("model", "dataset", "device", "epochs", "schedule", "schedule_hash", "precision"):
        assert run.config[key] == info[key], key
    pruner_keys = {k for k in info if k.startswith(("sparsity.", "kind.", "ranker."))}
    assert pruner_keys and {k: run.config[k] for k in pruner_keys} == {k: info[k] for k in pruner_keys}
    # summary: every figure of the record, and the latency statistics of its samples
    for key in ("top1", "top5", "top1_pruned", "top1_dense", "params", "macs", "macs_dense", "onnx_bytes",
                "latency_ms", "latency_ms_dense", "throughput_fps", "latency_speedup", "mac_speedup", "collapsed",
                "latency_ms_rel", "latency_ms_ref"):
        assert run.summary[key] == info[key], key
    assert [run.summary["latency_speedup_ci_low"], run.summary["latency_speedup_ci_high"]] == info["latency_speedup_ci"]
    stats = record["stats"]
    assert run.summary["latency_median_ms"] == pytest.approx(stats["median"] * 1000, rel=1e-12)
    assert run.summary["latency_mean_ms"] == pytest.approx(stats["mean"] * 1000, rel=1e-12)
    assert stats["min"] * 1000 <= run.summary["latency_p90_ms"] <= stats["max"] * 1000
    assert run.summary["latency_rounds"] == stats["rounds"]
    assert run.summary["passed"] is True
    # history: one row per retraining epoch
    assert len(run.history) == info["retrained_epochs"] == info["epochs"]
    for epoch, row in enumerate(run.history):
        assert row["epoch"] == epoch
        assert row["retrain/loss"] > 0 and 0 <= row["retrain/top1"] <= 100 and row["retrain/lr"] > 0
    assert run.exit_code == 0


def test_every_case_is_one_offline_run_that_matches_its_record(pytester: pytest.Pytester, tiny_args: list[str],
                                                                wandb_env: None) -> None:
    result = run_schedule_suite(pytester, tiny_args, "--wandb-project", "check", "--prunebench-epochs", "1",
                                "--wandb-dir=wb", "--wandb-log-model")

    result.assert_outcomes(passed=2)
    found = records(pytester.path)
    runs = {run.name: run for run in offline_runs(pytester.path / "wb")}
    assert set(runs) == set(found)
    for name, run in runs.items():
        assert_run_matches_record(run, found[name])
        assert run.project == "check"
        (artifact,) = run.artifacts
        assert artifact["type"] == "model" and artifact["files"] == [Path(found[name]["extra_info"]["onnx_path"]).name]
    groups = {run.group for run in runs.values()}
    assert len(groups) == 1 and next(iter(groups)).startswith("prunebench-")
    output = result.stdout.str()
    result.stdout.fnmatch_lines(["*prunebench: test_schedule?channels?: W&B run */wb/wandb/offline-run-*"])
    assert "wandb:" not in output  # no banner, no redirected console
    assert not (pytester.path / "wandb").exists()  # --wandb-dir, not the working directory


def test_xdist_workers_log_their_runs_into_one_group(pytester: pytest.Pytester, tiny_args: list[str],
                                                     wandb_env: None) -> None:
    result = run_schedule_suite(pytester, tiny_args, "-n", "2", "--wandb-project", "check", "--wandb-group",
                                "nightly", "--prunebench-epochs", "0", "--wandb-dir=wb")

    result.assert_outcomes(passed=2)
    found = records(pytester.path)
    runs = offline_runs(pytester.path / "wb")
    assert sorted(run.name for run in runs) == sorted(found)
    assert {run.group for run in runs} == {"nightly"}
    assert len({run.path.parent for run in runs}) == 2  # each run its own directory
    for run in runs:
        assert_run_matches_record(run, found[run.name])


@pytest.mark.parametrize("args", [[], ["--wandb-project", "x", "--wandb-mode", "disabled"]],
                         ids=["no-project", "disabled"])
def test_without_a_project_wandb_is_neither_imported_nor_written(pytester: pytest.Pytester, tiny_args: list[str],
                                                                 wandb_env: None, args: list[str]) -> None:
    pytester.makeconftest(IMPORT_PROBE)
    result = run_schedule_suite(pytester, tiny_args, "--prunebench-epochs", "0", "-k", "channels", *args)

    result.assert_outcomes(passed=1)
    assert (pytester.path / "imported-main.txt").read_text() == "False"
    assert not list(pytester.path.rglob("*.wandb"))
    assert not (pytester.path / "wandb").exists()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--wandb-project", "team/project"], "--wandb-project 'team/project' is not a W&B project name (*)"),
        (["--wandb-project", "check", "--wandb-dir=blocker"], "*"),  # a file where the runs' directory should be
    ],
    ids=["bad-project-name", "unwritable-dir"],
)
def test_a_broken_wandb_setup_is_a_warning_and_loses_no_record(pytester: pytest.Pytester, tiny_args: list[str],
                                                               wandb_env: None, args: list[str], reason: str) -> None:
    (pytester.path / "blocker").write_text("not a directory")
    result = run_schedule_suite(pytester, tiny_args, "--prunebench-epochs", "0", "-k", "channels", *args)

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*test_schedule?channels?: no W&B run written ({reason}); the pytest-benchmark "
                                 f"record is kept*"])
    assert set(records(pytester.path)) == {"test_schedule[channels]"}
    assert not list(pytester.path.rglob("*.wandb"))


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to watch the run's connect() calls")
def test_an_offline_run_connects_to_nothing_beyond_this_host(pytester: pytest.Pytester, tiny_args: list[str],
                                                             wandb_env: None) -> None:
    write_schedules(pytester.path, channels=CHANNELS_SCHEDULE)
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    trace = pytester.path / "connect.trace"
    result = pytester.run("strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace), sys.executable, "-m",
                          "pytest", *tiny_args, "--prunebench-epochs", "0", "--wandb-project", "check",
                          "--wandb-dir=wb", "--wandb-log-model")

    assert result.ret == 0, result.stdout.str()[-2000:]
    assert len(offline_runs(pytester.path / "wb")) == 1
    calls = [line for line in trace.read_text().splitlines() if "connect(" in line]
    local = ("AF_UNIX", "AF_NETLINK", 'inet_addr("127.', 'inet_pton(AF_INET6, "::1"')
    assert [call for call in calls if not any(mark in call for mark in local)] == []
    # The trace did see connections: wandb talks to its own service process over a local socket.
    assert any("AF_UNIX" in call or "127.0.0.1" in call for call in calls), calls
