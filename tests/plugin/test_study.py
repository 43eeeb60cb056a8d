"""Searched sweeps (search.py): W&B distributions as Optuna's, the admission rule that makes run_cap exact, stale
trials, storages (journal file, a real redis-server, sqlite), the Pareto front, and the plugin running them.

This file holds the plugin layer's tests (pytester runs); the topic's other tests are in tests/unit/test_study.py,
tests/e2e/test_study.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from study_sweeps import TINY_BAYES

from pytest_prunebench import search
from pytest_prunebench.search import (
    ADMITTED,
    DUPLICATE,
    open_study,
)
from pytest_prunebench.sweep import parse_sweep

ROOT = Path(__file__).resolve().parents[2]


# -- through pytest ---------------------------------------------------------------------------------------------

SWEEP_SUITE = (ROOT / "bench_suites" / "test_sweep.py").read_text()


def records(path: Path) -> dict[str, dict[str, Any]]:
    return {b["name"]: b["extra_info"] for b in json.loads(path.read_text())["benchmarks"]}


def test_a_two_objective_bayes_sweep_records_its_trials_and_front(pytester: pytest.Pytester,
                                                                 tiny_args: list[str]) -> None:
    (pytester.path / "bayes.yaml").write_text(yaml.safe_dump(TINY_BAYES))
    pytester.makepyfile(test_sweep=SWEEP_SUITE)
    result = pytester.runpytest_subprocess(*tiny_args, "--prunebench-artifacts=artifacts", "--prunebench-sweep",
                                           "bayes.yaml", "--benchmark-json=out.json",
                                           "--prunebench-study=studies/s.journal", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    found = records(pytester.path / "out.json")
    assert len(found) == 3 and all(n.startswith("test_sweep[bayes]::cfg-") for n in found)
    infos = list(found.values())
    assert sorted(i["trial"] for i in infos) == [0, 1, 2] and len({i["study"] for i in infos}) == 1
    assert len({i["sparsity.layer3"] for i in infos}) == 3  # no configuration twice
    assert all(i["objectives"] == {"top1": "maximize", "latency_ms": "minimize"} for i in infos)
    # a latency objective is the drift-corrected figure (search.OBJECTIVE_FIELDS), never one window's median
    assert all(i["objective.latency_ms"] == i["latency_ms_rel"] and i["objective.top1"] == i["top1"] for i in infos)
    # the front, recomputed here from the JSON alone
    for info in infos:
        beaten = any(o["top1"] >= info["top1"] and o["latency_ms_rel"] <= info["latency_ms_rel"]
                     and (o["top1"], o["latency_ms_rel"]) != (info["top1"], info["latency_ms_rel"]) for o in infos)
        assert info["on_pareto_front"] is (not beaten)
    result.stdout.fnmatch_lines(["*prunebench: study bayes-*", "*Pareto front (* case(s)):*",
                                 "*parameter importance for top1 (fANOVA)*"])
    # prunebench report shows the front and the importance of the same study
    finished = subprocess.run([sys.executable, "-m", "pytest_prunebench.cli", "report", "out.json", "--out", "rep"],
                              cwd=pytester.path, capture_output=True, text=True, env={**os.environ,
                                                                                      "PYTHONPATH": str(ROOT)})
    assert finished.returncode == 0, finished.stderr
    text = (pytester.path / "rep" / "report.md").read_text()
    assert "## Study " in text and "Pareto front" in text
    front = [n for n, i in found.items() if i["on_pareto_front"]]
    assert all(n.rsplit("::", 1)[-1] in text for n in front)


# random: unseeded, the agents draw apart. tpe with a seed (TINY_BAYES's), as a sweep file may well say: both agents
# draw the same start-up configurations, which admission turns into duplicates (told, never measured twice).
@pytest.mark.parametrize("sampler", [{"type": "random"}, TINY_BAYES["sampler"]], ids=["random", "seeded-tpe"])
def test_two_pytest_processes_on_one_sweep_run_exactly_run_cap_distinct_cases(pytester: pytest.Pytester,
                                                                               tiny_args: list[str],
                                                                               sampler: dict[str, Any]) -> None:
    import optuna

    document = {**TINY_BAYES, "run_cap": 4, "sampler": sampler}
    (pytester.path / "bayes.yaml").write_text(yaml.safe_dump(document))
    pytester.makepyfile(test_sweep=SWEEP_SUITE)
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [subprocess.Popen([sys.executable, "-m", "pytest", *tiny_args, "--prunebench-artifacts=artifacts",
                                   "--prunebench-sweep", "bayes.yaml", f"--benchmark-json=out{i}.json", "-q"],
                                  cwd=pytester.path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    each = [records(pytester.path / f"out{i}.json") for i in range(2)]
    both = {**each[0], **each[1]}
    assert len(each[0]) + len(each[1]) == len(both) == 4, [sorted(e) for e in each]
    assert len({i["sparsity.layer3"] for i in both.values()}) == 4
    assert sorted(i["trial"] for i in both.values())[0] == 0
    if "seed" in sampler:
        storage = search.open_storage(None, pytester.path)
        (summary,) = optuna.get_all_study_summaries(storage)
        slots = [t.system_attrs.get(search.SLOT) for t in optuna.load_study(study_name=summary.study_name,
                                                                             storage=storage).trials]
        assert DUPLICATE in slots and slots.count(ADMITTED) == 4
# Optuna's own HyperbandPruner decides here. With 2 epochs, min_iter 1 and eta 2 it has two brackets: one ranks a
# case on its epoch-1 top1 (a case that is not the best so far is stopped), the other would first rank it after
# epoch 2, which is the last and never reported. Optuna puts a trial in a bracket by a hash of the study name and
# the trial number: this name puts trials 0 and 2 in the first. The seeded random sampler draws layer1 sparsity
# 0.1, 0.1, 0.95: trial 2 prunes layer1 to 5% of its filters, far below trial 0 after epoch 1 (about 18% top1
# against 78% on the synthetic data), so the pruner must stop it.
HYPERBAND_REAL = {
    "name": "hyperband-stops", "method": "bayes", "metric": {"name": "top1", "goal": "maximize"}, "run_cap": 3,
    "sampler": {"type": "random", "seed": 2}, "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2},
    "parameters": {"model": {"value": "resnet20"}, "epochs": {"value": 2},
                   "sparsity.layer1": {"values": [0.1, 0.95]}, "sparsity.layer3": {"min": 0.1, "max": 0.2}},
}


def test_optunas_hyperband_stops_a_worse_case_which_is_measured_recorded_and_passes(
        pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    (pytester.path / "hb.yaml").write_text(yaml.safe_dump(HYPERBAND_REAL))
    pytester.makepyfile(test_sweep=SWEEP_SUITE)
    # min_top1 50: the stopped case misses it (it was stopped for being worse), which is not a failure
    result = pytester.runpytest_subprocess(*tiny_args, "--prunebench-artifacts=artifacts", "--prunebench-sweep",
                                           "hb.yaml", "--benchmark-json=out.json",
                                           "--prunebench-threshold", "min_top1=50")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*hyperband (min_iter 1, eta 2, 2 epoch(s)): 2 bracket(s); cases are first judged "
                                 "50% after epoch 1, 50% after epoch 2 (the last: these run to the end)*"])
    found = records(pytester.path / "out.json")
    assert len(found) == 3
    stopped = [i for i in found.values() if i["early_terminated"]]
    assert stopped, "Optuna's HyperbandPruner stopped no case"
    for info in stopped:
        assert info["epochs"] == 2 and info["retrained_epochs"] == 1 and info["sparsity.layer1"] == 0.95
        assert info["latency_ms"] > 0 and info["latency_ms_rel"] > 0 and info["onnx_bytes"] > 0
        assert info["artifact_cache"] == "off"  # never cached under the 2-epoch key
        assert (pytester.path / info["onnx_path"]).is_file()
        assert info["top1"] < 50
    assert all(i["retrained_epochs"] == 2 for i in found.values() if not i["early_terminated"])
    # the study's own record of the decision: PRUNED, ranked at its bracket's first rung against trial 0
    handle = open_study(parse_sweep(HYPERBAND_REAL, str(pytester.path / "hb.yaml")), None, pytester.path,
                        {"model": "resnet20", "dataset": "synthetic", "device": "CPU", "epochs": None}, 3)
    trials = {t.number: t for t in handle.study.get_trials()}
    by_trial = {i["trial"]: i for i in found.values()}
    for number, trial in trials.items():
        assert (trial.state.name == "PRUNED") is by_trial[number]["early_terminated"]
        assert trial.user_attrs[search.RECORD].endswith(by_trial[number]["schedule"])
    for info in stopped:
        pruned = trials[info["trial"]]
        assert list(pruned.intermediate_values) == [1] and "completed_rung_0" in pruned.system_attrs
        earlier = [t.intermediate_values[1] for n, t in trials.items() if n < info["trial"]
                   and "completed_rung_0" in t.system_attrs]
        assert earlier and pruned.intermediate_values[1] < max(earlier)


def test_a_rerun_of_a_finished_study_is_skipped_with_the_reason(pytester: pytest.Pytester,
                                                                tiny_args: list[str]) -> None:
    (pytester.path / "bayes.yaml").write_text(yaml.safe_dump({**TINY_BAYES, "run_cap": 1}))
    pytester.makepyfile(test_sweep=SWEEP_SUITE)
    arguments = (*tiny_args, "--prunebench-artifacts=artifacts", "--prunebench-sweep", "bayes.yaml")
    pytester.runpytest_subprocess(*arguments).assert_outcomes(passed=1)
    again = pytester.runpytest_subprocess(*arguments, "-rs")
    again.assert_outcomes(skipped=1)
    again.stdout.fnmatch_lines(["*bayes.yaml: study bayes-* has 1 of its 1 case(s) (earlier runs or other "
                                "processes ran them); none ran here. Raise run_cap to run more*"])


def test_a_study_url_that_cannot_be_reached_stops_pytest_before_any_case(pytester: pytest.Pytester) -> None:
    (pytester.path / "bayes.yaml").write_text(yaml.safe_dump(TINY_BAYES))
    pytester.makepyfile(test_sweep=SWEEP_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--prunebench-sweep=bayes.yaml",
                                           "--prunebench-study=redis://:hunter2@127.0.0.1:1/0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "hunter2" not in result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(["*--prunebench-study: *127.0.0.1:1*"])
    assert "Traceback" not in result.stderr.str()
