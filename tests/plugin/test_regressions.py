"""--prunebench-compare-fail: regression rules on record figures against the run --benchmark-compare selects.

This file holds the plugin layer's tests (pytester runs); the topic's other tests are in tests/unit/test_regressions.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import CHANNELS_SCHEDULE, SCHEDULE_SUITE, tiny_arguments, write_schedules

# -- through pytest ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_storage(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Path:
    """One saved run of the suite in a file storage, what a CI job keeps from main: made once for this file."""
    root = tmp_path_factory.mktemp("saved-run")
    write_schedules(root, channels=CHANNELS_SCHEDULE)
    (root / "test_suite.py").write_text(SCHEDULE_SUITE, encoding="utf-8")
    storage = root / "storage"
    env = {name: value for name, value in os.environ.items() if name != "PYTEST_ADDOPTS"}  # as pytester does
    run = subprocess.run([sys.executable, "-m", "pytest", *saved_run_args(shared_cache, storage),
                          "--benchmark-autosave"], cwd=root, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return storage


def saved_run_args(cache: Path, storage: Path) -> list[str]:
    return [*tiny_arguments(cache), "--prunebench-artifacts=artifacts", "--prunebench-epochs", "0",
            f"--benchmark-storage=file://{storage}"]


@pytest.fixture
def saved(pytester: pytest.Pytester, shared_cache: Path, saved_storage: Path) -> tuple[list[str], Path]:
    """The suite, and a copy of the saved run (a test may change its copy)."""
    write_schedules(pytester.path, channels=CHANNELS_SCHEDULE)
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    storage = Path(shutil.copytree(saved_storage, pytester.path / "storage"))
    (path,) = storage.rglob("0001_*.json")
    return saved_run_args(shared_cache, storage), path


def test_an_unchanged_run_passes_its_gates(pytester: pytest.Pytester, saved: tuple[list[str], Path]) -> None:
    args, _ = saved
    result = pytester.runpytest_subprocess(*args, "--benchmark-compare", "--prunebench-compare-fail",
                                           "top1:0.5,top5:1%,macs:0")

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*prunebench: --prunebench-compare-fail passed*",
                                 "compared with *0001_*.json: 1 case(s) in both runs, 0 regression(s)"])


def test_a_less_accurate_run_fails_the_session_with_a_table(pytester: pytest.Pytester,
                                                            saved: tuple[list[str], Path]) -> None:
    args, path = saved
    # The saved run was 5 points more accurate, and had a case this run no longer has.
    data = json.loads(path.read_text())
    (bench,) = data["benchmarks"]
    top1 = bench["extra_info"]["top1"]
    bench["extra_info"]["top1"] = top1 + 5
    data["benchmarks"].append({**bench, "name": "test_schedule[old]", "fullname": "test_suite.py::test_schedule[old]"})
    path.write_text(json.dumps(data))
    result = pytester.runpytest_subprocess(*args, "--benchmark-compare", "--prunebench-compare-fail", "top1:0.5")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1)  # every test passed: the gate alone fails the session
    result.stdout.fnmatch_lines([
        "*prunebench: --prunebench-compare-fail FAILED*",
        "compared with *0001_*.json: 1 case(s) in both runs, 1 regression(s)",
        "case * metric * before * after * bound * worst allowed",
        f"test_suite.py::test_schedule?channels? * top1 * {top1 + 5:.4g} * {top1:.4g} * top1:0.5 * "
        f"{top1 + 4.5:.4g}",
        "not in this run (missing): test_suite.py::test_schedule?old?",
    ])
    assert "Traceback" not in result.stdout.str()


def test_a_latency_gate_that_fires_inside_the_noise_says_so(pytester: pytest.Pytester,
                                                            saved: tuple[list[str], Path]) -> None:
    args, path = saved
    data = json.loads(path.read_text())
    (bench,) = data["benchmarks"]
    assert len(bench["extra_info"]["latency_speedup_ci"]) == 2 and len(bench["extra_info"]["latency_ms_ci"]) == 2
    # A saved run far faster, but measured so loosely that its interval holds any figure of this run.
    bench["extra_info"].update(latency_speedup=1000.0, latency_speedup_ci=[0.0, 1000.0])
    path.write_text(json.dumps(data))
    result = pytester.runpytest_subprocess(*args, "--benchmark-compare", "--prunebench-compare-fail",
                                           "latency_speedup:5%")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*prunebench: --prunebench-compare-fail FAILED*",
        "inside the noise: test_suite.py::test_schedule?channels? latency_speedup: *overlaps the saved run's "
        "[[]0, 1000[]], so no change is plausible",
        "1 of 1 regression(s) are inside the measurement noise: they still fail the gate; *",
    ])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "*--prunebench-compare-fail top1:0.5: add --benchmark-compare (the saved run to compare with*"),
        (["--benchmark-compare=0042"], "*--prunebench-compare-fail top1:0.5: --benchmark-compare found no saved run "
                                       "in *; save one first (--benchmark-autosave on main*"),
    ],
    ids=["no-compare", "no-saved-run"],
)
def test_gates_without_a_saved_run_are_a_usage_error(pytester: pytest.Pytester, saved: tuple[list[str], Path],
                                                     extra: list[str], message: str) -> None:
    args, _ = saved
    result = pytester.runpytest_subprocess(*args, "--prunebench-compare-fail", "top1:0.5", *extra)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert "prunebench: test_schedule" not in result.stdout.str()  # stopped before any case ran
