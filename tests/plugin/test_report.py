"""`prunebench report` and --prunebench-report: pictures that hold drawn content, tables recomputed independently.

This file holds the plugin layer's tests (pytester runs); the topic's other tests are in tests/unit/test_report.py,
tests/e2e/test_report.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import run_schedule_suite


def test_a_session_writes_its_report_and_the_cli_reads_its_json(pytester: pytest.Pytester,
                                                                tiny_args: list[str]) -> None:
    result = run_schedule_suite(pytester, tiny_args, "--prunebench-epochs", "0",
                                "--prunebench-report=session-report")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*prunebench: report: *session-report/index.html (2 case(s))*"])
    # Each case keeps which structures it removed: channels 0.25 of layer3.1.conv2's 64 inputs is 16 of them.
    records = {b["name"]: b["extra_info"] for b in json.loads((pytester.path / "out.json").read_text())["benchmarks"]}
    layers = json.loads(Path(records["test_schedule[channels]"]["structures_path"]).read_text())
    assert list(layers) == ["layer3.1.conv2"]
    entry = layers["layer3.1.conv2"]
    assert (entry["kind"], entry["ranker"], entry["total"], len(entry["scores"])) == ("channels", "l2", 64, 64)
    assert len(entry["removed"]) == 16
    kept = [score for i, score in enumerate(entry["scores"]) if i not in entry["removed"]]
    assert max(entry["scores"][i] for i in entry["removed"]) <= min(kept)  # the lowest-ranked ones went
    assert (pytester.path / "session-report" / "filters.png").is_file()
    assert (pytester.path / "session-report" / "layers.png").is_file()  # per-layer time vs MACs, dense and pruned
    session_md = (pytester.path / "session-report" / "report.md").read_text()
    assert "`layers.png` shows" in session_md
    finished = subprocess.run([sys.executable, "-m", "pytest_prunebench.cli", "report", "out.json", "--out",
                               "cli-report"], cwd=pytester.path, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert "2 case(s) from 1 file(s)" in finished.stdout
    assert (pytester.path / "cli-report" / "report.md").read_text() == session_md  # same records, same report


def test_the_sensitivity_suite_records_one_group_per_case(pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    suite = (Path(__file__).resolve().parents[2] / "bench_suites" / "test_sensitivity.py").read_text()
    small = suite.replace('GROUPS = [f"layer{stage}.{block}" for stage in (1, 2, 3) for block in range(3)]',
                          'GROUPS = ["layer1.0", "layer3.2"]')
    small = small.replace("SPARSITIES = [round(0.1 * step, 1) for step in range(1, 10)]", "SPARSITIES = [0.2, 0.6]")
    assert small != suite and small.count("GROUPS = [") == 1
    pytester.makepyfile(test_sensitivity=small)
    result = pytester.runpytest_subprocess(*tiny_args, "--prunebench-artifacts=artifacts", "--benchmark-json=s.json",
                                           "--prunebench-report=rep")

    result.assert_outcomes(passed=4)
    records = {b["name"]: b["extra_info"] for b in json.loads((pytester.path / "s.json").read_text())["benchmarks"]}
    assert len(records) == 4
    for name, info in records.items():
        (key,) = [k for k in info if k.startswith("sparsity.")]
        group, sparsity = name.split("[")[1].split("]")[0].rsplit("-", 1)
        assert key == f"sparsity.{group}" and info[key] == float(sparsity) and info["epochs"] == 0
    assert (pytester.path / "rep" / "sensitivity.png").is_file()
    assert "Least sensitive:" in (pytester.path / "rep" / "report.md").read_text()
