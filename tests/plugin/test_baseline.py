"""Dense baselines trained to a stated quality: the recipe registry, the early stop, the cache key, the quality floor
and the torch/device precision gap. Pure units first, then real pytest sessions on tiny settings.

This file holds the plugin layer's tests (pytester runs); the topic's other tests are in
tests/unit/test_baseline.py, tests/e2e/test_baseline.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import FILTERS_SCHEDULE

# --- real sessions ----------------------------------------------------------------------------------------------

FOUR_CASE_SUITE = """
import pytest

@pytest.mark.parametrize("index", range(4))
def test_case(prunebench, index):
    prunebench.run("filters.yaml")
"""


@pytest.mark.parametrize("workers", [0, 2])
def test_a_weak_baseline_stops_the_session_with_the_floor_message(pytester: pytest.Pytester, tiny_args: list[str],
                                                                  workers: int) -> None:
    """A forced 1-epoch baseline under a floor it cannot reach: the case that met it fails with the floor's line
    (one per xdist worker, each was already running one), the others never run, no record is written."""
    pytester.makepyfile(test_suite=FOUR_CASE_SUITE)
    pytester.path.joinpath("filters.yaml").write_text(FILTERS_SCHEDULE, encoding="utf-8")
    xdist = ["-n", str(workers)] if workers else []
    result = pytester.runpytest_subprocess(*tiny_args, "--prunebench-min-dense-top1", "99.9", "-p", "xdist",
                                           *xdist, "--benchmark-json=run.json", "--prunebench-artifacts=artifacts")
    output = "\n".join(result.outlines + result.errlines)
    # xdist's controller ends a session a worker stopped as "interrupted" (2); alone, pytest says "failed" (1).
    assert result.ret == (pytest.ExitCode.INTERRUPTED if workers else pytest.ExitCode.TESTS_FAILED), output
    assert "below the floor of 99.9% (--prunebench-min-dense-top1)" in output
    assert "dense resnet20 on synthetic reached" in output and "after 1 epoch(s)" in output
    outcomes = result.parseoutcomes()
    assert 1 <= outcomes.get("failed", 0) <= max(workers, 1) and "passed" not in outcomes, output
    records = json.loads(Path(pytester.path, "run.json").read_text())["benchmarks"] if Path(
        pytester.path, "run.json").exists() else []
    assert records == []


def test_records_and_the_summary_carry_the_baseline(pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    pytester.makepyfile(test_suite="def test_one(prunebench):\n    prunebench.run('filters.yaml')\n")
    pytester.path.joinpath("filters.yaml").write_text(FILTERS_SCHEDULE, encoding="utf-8")
    result = pytester.runpytest_subprocess(*tiny_args, "--benchmark-json=run.json", "--prunebench-artifacts=artifacts")
    output = "\n".join(result.outlines)
    assert result.ret == pytest.ExitCode.OK, output
    (record,) = json.loads(Path(pytester.path, "run.json").read_text())["benchmarks"]
    info = record["extra_info"]
    assert info["baseline_epochs"] == 1 and isinstance(info["top1_dense_torch"], float)
    assert f"dense baselines: resnet20 on synthetic {info['top1_dense']:.2f}% top1 (1 epoch(s))" in output
    assert "% in torch," in output  # the once-per-session torch / device line


BLIND_MODEL = """
from pytest_prunebench.models import ResNetCifar


class Blind(ResNetCifar):
    \"\"\"A ResNet-20 whose logits ignore the image: it predicts one class for all of them, however trained.\"\"\"

    def forward(self, x):
        return super().forward(x) * 0 + self.fc.bias


def net(num_classes):
    return Blind(20, num_classes)
"""


def test_a_collapsed_dense_model_is_a_warning_and_its_cases_are_not_judged(pytester: pytest.Pytester,
                                                                          tiny_args: list[str]) -> None:
    pytester.makepyfile(test_suite="def test_one(prunebench):\n    prunebench.run('filters.yaml')\n",
                        blind_model=BLIND_MODEL)
    pytester.path.joinpath("filters.yaml").write_text(FILTERS_SCHEDULE, encoding="utf-8")
    result = pytester.runpytest_subprocess(*tiny_args, "--prunebench-model", "blind_model:net",
                                           "--benchmark-json=run.json", "--prunebench-artifacts=artifacts")
    output = "\n".join(result.outlines)
    assert result.ret == pytest.ExitCode.OK, output
    result.stdout.fnmatch_lines(["*dense blind_model:net on synthetic is itself collapsed: it predicts a single "
                                 "class*"])
    (record,) = json.loads(Path(pytester.path, "run.json").read_text())["benchmarks"]
    assert record["extra_info"]["collapsed"] is False and "0 collapsed" in output
