"""Searched sweeps (search.py): W&B distributions as Optuna's, the admission rule that makes run_cap exact, stale
trials, storages (journal file, a real redis-server, sqlite), the Pareto front, and the plugin running them.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_study.py, tests/plugin/test_study.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from study_sweeps import TWO_OBJECTIVES

from pytest_prunebench import search
from pytest_prunebench.search import (
    ADMITTED,
    open_study,
)
from pytest_prunebench.sweep import parse_sweep

ROOT = Path(__file__).resolve().parents[2]


# -- studies on real storages ---------------------------------------------------------------------------------

AGENT = """
import json, sys, time
from pathlib import Path
from pytest_prunebench import search
from pytest_prunebench.sweep import parse_sweep

sweep = parse_sweep(json.loads(sys.argv[1]), "sweep.yaml")
url = None if sys.argv[2] == "-" else sys.argv[2]
handle = search.open_study(sweep, url, Path(sys.argv[3]), {}, search.budget(sweep, None))
agent = search.Agent(handle, lambda m: None)
for slot in agent.trials():
    if sys.argv[4] == "die":
        print("RUNNING", slot.number, flush=True)
        time.sleep(600)
    time.sleep(0.05)
    agent.tell(slot, f"case-{slot.number}", [slot.values["sparsity.layer3"], 1.0], False)
    print("RAN", json.dumps(slot.values, sort_keys=True), flush=True)
"""

DISCRETE = {**TWO_OBJECTIVES, "run_cap": 7, "parameters": {
    "sparsity.layer3": {"min": 0.1, "max": 0.5, "distribution": "q_uniform", "q": 0.1},
    "kind.layer3": {"values": ["filters", "channels"]}}}


def run_agents(tmp_path: Path, document: dict[str, Any], url: str | None, count: int,
               env: dict[str, str] | None = None, mode: str = "run") -> list[subprocess.Popen[str]]:
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return [subprocess.Popen([sys.executable, str(script), json.dumps(document), url or "-", str(tmp_path), mode],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
            for _ in range(count)]


def ran(processes: list[subprocess.Popen[str]]) -> list[str]:
    lines = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        lines += [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("RAN")]
    return lines


@pytest.mark.parametrize("storage", ["journal", "redis", "sqlite"])
def test_three_processes_on_one_study_run_exactly_run_cap_distinct_cases(tmp_path: Path, storage: str,
                                                                        request: pytest.FixtureRequest) -> None:
    """A discrete space of 10 configurations, TPE suggesting repeats: 7 distinct cases in all, none twice."""
    url = {"journal": None, "redis": request.getfixturevalue("redis_url") if storage == "redis" else None,
           "sqlite": f"sqlite:///{tmp_path}/study.db"}[storage]
    done = ran(run_agents(tmp_path, DISCRETE, url, 3))
    assert len(done) == 7 and len(set(done)) == 7, done
    handle = open_study(parse_sweep(DISCRETE, "sweep.yaml"), url, tmp_path, {}, 7)
    points = search.study_points(handle.study)
    assert len(points) == 7
    # a rerun continues the study: the budget is spent, nothing more runs
    assert ran(run_agents(tmp_path, DISCRETE, url, 1)) == []
    # and a larger run_cap continues it where it stopped, still without repeats
    assert len(set(ran(run_agents(tmp_path, {**DISCRETE, "run_cap": 9}, url, 1))) - set(done)) == 2


OPENER = """
import sys, time
from pathlib import Path
from pytest_prunebench import search
while time.time() < float(sys.argv[2]):  # start together: the race is in the first milliseconds
    time.sleep(0.001)
search.open_storage(sys.argv[1], Path("."))
"""


def test_agents_opening_one_new_sqlite_database_at_once_all_get_it(tmp_path: Path) -> None:
    """The losers of the race to create the tables and stamp the schema version retry (a CI run lost it once)."""
    script = tmp_path / "opener.py"
    script.write_text(OPENER)
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    for round_ in range(3):
        start = time.time() + 2.0
        processes = [subprocess.Popen([sys.executable, str(script), f"sqlite:///{tmp_path}/race{round_}.db",
                                       str(start)], stderr=subprocess.PIPE, text=True, env=environ, cwd=tmp_path)
                     for _ in range(4)]
        for process in processes:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err


def test_a_process_killed_mid_case_frees_its_slot_after_the_grace(tmp_path: Path) -> None:
    env = {"PRUNEBENCH_STUDY_HEARTBEAT": "0.1"}  # grace 2 s
    document = {**DISCRETE, "run_cap": 2}
    (doomed,) = run_agents(tmp_path, document, None, 1, env, mode="die")
    assert doomed.stdout is not None and doomed.stdout.readline().startswith("RUNNING")
    doomed.kill()
    doomed.wait()
    started = time.monotonic()
    done = ran(run_agents(tmp_path, document, None, 1, env))
    assert len(done) == 2, done  # the dead trial no longer counts
    assert time.monotonic() - started < 60
    handle = open_study(parse_sweep(document, "sweep.yaml"), None, tmp_path, {}, 2)
    slots = [t.system_attrs.get(search.SLOT) for t in handle.study.get_trials()]
    assert slots.count(search.ABANDONED) == 1 and slots.count(ADMITTED) == 2


def test_a_grid_through_a_study_is_split_without_overlap(tmp_path: Path) -> None:
    grid = {"method": "grid", "parameters": {"sparsity.layer3": {"values": [0.1, 0.2, 0.3, 0.4, 0.5]},
                                             "kind.layer3": {"values": ["filters", "channels"]}}}
    done = ran(run_agents(tmp_path, grid, None, 2))
    assert sorted(done) == sorted(json.dumps(p, sort_keys=True) for p in parse_sweep(grid, "g").grid())

# -- W&B distributions as Optuna distributions ----------------------------------------------------------------


@pytest.mark.parametrize(("sampler", "objectives"), [("tpe", 1), ("tpe", 2), ("gp", 1), ("gp", 2), ("nsgaii", 2),
                                                     ("random", 2)])
def test_every_sampler_a_sweep_can_name_fills_run_cap_on_a_mixed_space(tmp_path: Path, sampler: str,
                                                                      objectives: int) -> None:
    """As an outside user writes one: W&B's nested parameters, int, log-uniform, stepped and categorical values.
    The study is told a figure computed from the configuration: what is tested is that each sampler accepts the
    space and the agent admits run_cap distinct configurations."""
    metric: Any = [{"name": "top1", "goal": "maximize"}, {"name": "latency_ms_rel", "goal": "minimize"}]
    document = {"method": "bayes", "metric": metric[1] if objectives == 1 else metric, "run_cap": 6,
                "sampler": {"type": sampler, "seed": 0},
                "parameters": {"epochs": {"min": 0, "max": 2},
                               "lr": {"min": 0.001, "max": 0.1, "distribution": "log_uniform_values"},
                               "sparsity": {"parameters": {
                                   "layer1": {"min": 0.0, "max": 0.5},
                                   "layer3": {"min": 0.1, "max": 0.6, "distribution": "q_uniform", "q": 0.1}}},
                               "kind.layer3": {"values": ["filters", "channels"]}}}
    handle = open_study(parse_sweep(document, "mixed.yaml"), None, tmp_path, {}, 6)
    agent = search.Agent(handle, lambda _m: None)
    seen = []
    for slot in agent.trials():
        top1, latency = 100 - 50 * slot.values["sparsity.layer3"], 1 - slot.values["sparsity.layer1"]
        agent.tell(slot, f"case{slot.number}", [latency] if objectives == 1 else [top1, latency], False)
        seen.append(search.config_key(slot.values))
        assert slot.values["kind.layer3"] in ("filters", "channels") and 0 <= slot.values["epochs"] <= 2
        assert round(slot.values["sparsity.layer3"] * 10, 9) % 1 == 0
    assert len(seen) == len(set(seen)) == 6
    assert len(search.study_points(handle.study)) == 6
