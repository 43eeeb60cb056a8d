"""W&B sweep files: parsing and validation, grid points, hypothesis draws, points as schedules.

This file holds the plugin layer's tests (pytester runs); the topic's other tests are in tests/unit/test_sweep.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# -- sweep suites through pytest ------------------------------------------------------------------------------

SWEEP_SUITE = (Path(__file__).resolve().parents[2] / "bench_suites" / "test_sweep.py").read_text()
TINY_GRID = """\
method: grid
parameters:
  model: {value: resnet20}
  epochs: {value: 0}
  sparsity.layer3: {values: [0.2, 0.4]}
"""
TINY_RANDOM = """\
method: random
metric: {name: latency_ms_rel, goal: minimize}
run_cap: 3
parameters:
  model: {value: resnet20}
  epochs: {value: 0}
  sparsity.layer3.1: {min: 0.1, max: 0.5, distribution: q_uniform, q: 0.02}
  kind.layer3.1: {values: [filters, channels]}
"""


def sweep_records(path: Path) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in json.loads(path.read_text())["benchmarks"]}


def test_a_grid_sweep_is_one_case_per_point_and_a_random_sweep_draws_run_cap(pytester: pytest.Pytester,
                                                                             tiny_args: list[str]) -> None:
    (pytester.path / "sweeps").mkdir()
    (pytester.path / "sweeps" / "grid.yaml").write_text(TINY_GRID)
    (pytester.path / "sweeps" / "random.yaml").write_text(TINY_RANDOM)
    pytester.makepyfile(test_sweep=SWEEP_SUITE)
    result = pytester.runpytest_subprocess(*tiny_args, "--prunebench-artifacts=artifacts", "-v",
                                           "--benchmark-json=out.json", "--hypothesis-seed=1")

    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines_random([
        "*test_sweep.py::test_sweep?grid:sparsity.layer3=0.2? PASSED*",
        "*test_sweep.py::test_sweep?grid:sparsity.layer3=0.4? PASSED*",
        "*test_sweep.py::test_sweep?random? PASSED*",
        "*prunebench: test_sweep?random?: 3 drawn case(s); best latency_ms_rel * (test_sweep?random?::cfg-*)*",
    ])
    found = sweep_records(pytester.path / "out.json")
    grid = {n: r for n, r in found.items() if n.startswith("test_sweep[grid:")}
    assert sorted(r["extra_info"]["sparsity.layer3"] for r in grid.values()) == [0.2, 0.4]
    drawn = {n: r for n, r in found.items() if n.startswith("test_sweep[random]::cfg-")}
    assert len(drawn) == 3 and len(found) == 5, sorted(found)
    for record in drawn.values():
        info = record["extra_info"]
        assert 0.1 <= info["sparsity.layer3.1"] <= 0.5 and info["kind.layer3.1"] in ("filters", "channels")
    best = min(r["extra_info"]["latency_ms_rel"] for r in drawn.values())  # drift-corrected: what is ranked
    result.stdout.fnmatch_lines([f"*best latency_ms_rel {best:g} *"])


def test_a_suite_names_its_sweep_with_the_marker(pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    (pytester.path / "mine").mkdir()
    (pytester.path / "mine" / "only.yaml").write_text(TINY_GRID.replace("[0.2, 0.4]", "[0.3]"))
    pytester.makepyfile(test_sweep=SWEEP_SUITE.replace('on_collapse="record"', 'on_collapse="record", '
                                                       'sweep="mine/only.yaml"'))
    result = pytester.runpytest_subprocess(*tiny_args, "--prunebench-artifacts=artifacts", "--collect-only", "-q")

    result.stdout.fnmatch_lines(["test_sweep.py::test_sweep?only?",
                                 "1 test collected*"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TINY_GRID.replace("grid", "bayes") + "metric: [{name: top1}, {name: latency_ms, goal: minimize}]\n",
         "*bad.yaml: metric?0?.goal: missing: each objective of a list says minimize or maximize*"),
        (TINY_GRID.replace("layer3", "layer7"), "*bad.yaml: parameters.sparsity.layer7: resnet20 has no conv, "
                                                "residual block or stage named 'layer7'*"),
        ("method: grid\nparameters: [", "*bad.yaml: line 2, column 14: YAML syntax error*"),
    ],
    ids=["bayes", "unknown-group", "yaml-syntax"],
)
def test_a_bad_sweep_file_is_one_line_and_a_failed_run(pytester: pytest.Pytester, text: str, message: str) -> None:
    (pytester.path / "bad.yaml").write_text(text)
    pytester.makepyfile(test_sweep=SWEEP_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--prunebench-sweep=bad.yaml")

    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error: nothing runs
    result.stdout.fnmatch_lines([message])
    output = result.stdout.str()
    assert "Traceback" not in output and "pytest_prunebench/" not in output, output


def test_a_marker_naming_no_file_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sweep=SWEEP_SUITE.replace('on_collapse="record"', 'on_collapse="record", '
                                                       'sweep="missing/*.yaml"'))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q")

    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*test_sweep: pytest.mark.prunebench(sweep='missing/*.yaml') names no .yaml/.yml "
                                 "file (paths are relative to the suite file)*"])


def test_the_model_option_is_the_model_the_groups_expand_on(pytester: pytest.Pytester) -> None:
    """--prunebench-model runs every case on its model: the sweep's groups must expand on that model too."""
    (pytester.path / "stage.yaml").write_text(TINY_GRID.replace("[0.2, 0.4]", "[0.3]"))
    pytester.makepyfile(test_groups="""
        def test_groups(prunebench, prunebench_sweep):
            schedule = prunebench.sweep_schedule(prunebench_sweep)
            with open("layers.txt", "w") as out:
                out.write(schedule.model_hint() + " " + ",".join(schedule.pruners[0].layers))
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--prunebench-sweep=stage.yaml",
                                           "--prunebench-model", "resnet32")

    result.assert_outcomes(passed=1)
    model, layers = (pytester.path / "layers.txt").read_text().split()
    assert model == "resnet32"
    assert layers.split(",") == [f"layer3.{block}.conv1" for block in range(5)]  # resnet32: 5 blocks per stage
