"""Faults in real runs: kill -9 at several stages then a rerun, Ctrl-C, the cache across runs.

Each run is a real pytest process on tiny settings (resnet20, synthetic data), killed by signal from outside.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny import CHANNELS_SCHEDULE, FILTERS_SCHEDULE, SCHEDULE_SUITE, seed_baselines, write_schedules

from pytest_prunebench.cache import ArtifactCache


# channels retrains (its schedule sets the epochs), filters does not: each run has a slow and a fast case.
def slow(epochs: int) -> str:
    return CHANNELS_SCHEDULE.replace("prunebench:\n", f"prunebench:\n  epochs: {epochs}\n")


FAST = FILTERS_SCHEDULE + "prunebench:\n  epochs: 0\n"


@pytest.fixture
def project(tmp_path: Path, shared_cache: Path) -> Path:
    """A project with the suite, and an own cache that starts with the session's trained baselines."""
    (tmp_path / "test_suite.py").write_text(SCHEDULE_SUITE, encoding="utf-8")
    seed_baselines(shared_cache, tmp_path / "cache")
    return tmp_path


def pytest_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "test_suite.py", "--prunebench-data=synthetic",
            "--prunebench-baseline-epochs=1", "--prunebench-rounds=10", "--prunebench-warmup=2",
            "--prunebench-cache=cache", "--prunebench-artifacts=artifacts", "--benchmark-json=out.json",
            "--prunebench-lock-timeout=60", "-p", "no:cacheprovider",
            *extra]


def run_until(project: Path, trigger: str, sig: signal.Signals, *extra: str) -> tuple[str, int]:
    """Run the suite; on the first output line containing `trigger`, send `sig` to its whole process group."""
    proc = subprocess.Popen(pytest_command(*extra), cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if trigger in line:
            os.killpg(proc.pid, sig)
            break
    else:
        proc.wait(timeout=60)
        pytest.fail(f"the run ended before {trigger!r}:\n{''.join(seen)}")
    rest, _ = proc.communicate(timeout=120)
    return "".join(seen) + rest, proc.returncode


def records(project: Path) -> dict[str, dict]:
    document = json.loads((project / "out.json").read_text(encoding="utf-8"))
    return {bench["name"]: bench["extra_info"] for bench in document["benchmarks"]}


def test_killed_at_each_stage_then_reruns_complete_from_the_cache(project: Path) -> None:
    write_schedules(project, channels=slow(1), filters=FAST)
    cache = ArtifactCache(project / "cache", 5)
    # In retraining (its first epoch follows), at export (after the last epoch), in measurement.
    for trigger in ("[channels]: pruned at epoch 0", "[channels]: retrain epoch 1/1", "[channels]: measuring on"):
        _, status = run_until(project, trigger, signal.SIGKILL)
        assert status == -signal.SIGKILL
        assert all(entry.problem is None for entry in cache.entries())  # nothing half-written ever counts
    (case_entry,) = (entry for entry in cache.entries() if entry.kind == "cases")  # built before the last kill
    assert case_entry.describe["case"] == "test_schedule[channels]"
    (case_entry.path / "model.onnx").write_bytes(b"edited by hand")  # the one damage the rerun must report

    rerun = subprocess.run(pytest_command(), cwd=project, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert rerun.stdout.count("is unusable") == 1  # the edited entry, and nothing left by the kills
    assert f"cache entry {case_entry.path} is unusable (model.onnx has 14 bytes" in rerun.stdout
    assert sorted(records(project)) == ["test_schedule[channels]", "test_schedule[filters]"]
    assert records(project)["test_schedule[channels]"]["artifact_cache"] == "built"
    assert cache.leftovers() == [] and all(entry.problem is None for entry in cache.entries())
    assert not list(project.glob("**/*.partial"))

    # Unchanged again: nothing is trained, every model comes from the cache, and the device measures anew.
    before = records(project)
    again = subprocess.run(pytest_command(), cwd=project, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:]
    after = records(project)
    assert {name: info["artifact_cache"] for name, info in after.items()} == dict.fromkeys(before, "hit")
    assert "retrain epoch" in rerun.stdout and "retrain epoch" not in again.stdout
    assert "dense resnet20: training" not in again.stdout and "is unusable" not in again.stdout
    for name in before:
        for key in ("top1", "top1_pruned", "macs", "params", "onnx_bytes", "retrained_epochs"):
            assert after[name][key] == before[name][key], (name, key)
        assert after[name]["measured_at"] != before[name]["measured_at"]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["sequential", "xdist"])
def test_ctrl_c_writes_the_records_of_finished_cases(project: Path, workers: list[str]) -> None:
    write_schedules(project, a_fast=FAST, b_slow=slow(50))
    proc = subprocess.Popen(pytest_command(*workers), cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    # The per-layer file is written after the measurement, the record right after it.
    while not list(project.glob("artifacts/*a_fast*/*.layers.json")) and proc.poll() is None:
        assert time.monotonic() < deadline, "the fast case never finished"
        time.sleep(0.2)
    time.sleep(2.0)  # recorded (and spooled); the slow case is retraining
    os.killpg(proc.pid, signal.SIGINT)
    # Generous: under `make test` the other worker loads the host (epochs ran 8x slower in one CI run) and a C-level
    # wait on the host gate or a lock (--prunebench-lock-timeout=60) holds the interrupt until it returns. One CI
    # run still exceeded 120 s here; see the session note.
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output[-3000:]
    assert list(records(project)) == ["test_schedule[a_fast]"]
    assert "Traceback" not in output


# One test, two cases: the fast one is recorded while the slow one retrains.
PAIR_SUITE = """
import os
from pathlib import Path

def test_pair(prunebench):
    Path("worker.pid").write_text(str(os.getpid()))
    prunebench.run("schedules/a_fast.yaml")
    prunebench.run("schedules/b_slow.yaml")
"""


def test_a_killed_xdist_worker_loses_no_finished_record(project: Path) -> None:
    """The worker dies before it can hand its records over: the one it spooled still reaches the JSON."""
    write_schedules(project, a_fast=FAST, b_slow=slow(50))
    (project / "test_suite.py").write_text(PAIR_SUITE, encoding="utf-8")
    proc = subprocess.Popen(pytest_command("-n", "2"), cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (project / "artifacts" / "test_pair" / "test_pair.layers.json").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "the fast case never finished"
        time.sleep(0.2)
    time.sleep(2.0)  # recorded (and spooled); the slow case is retraining
    os.kill(int((project / "worker.pid").read_text()), signal.SIGKILL)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, output[-3000:]
    assert "crashed while running" in output
    assert list(records(project)) == ["test_pair"]
