"""Searched sweeps (search.py): W&B distributions as Optuna's, the admission rule that makes run_cap exact, stale
trials, storages (journal file, a real redis-server, sqlite), the Pareto front, and the plugin running them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_prunebench import search
from pytest_prunebench.search import (
    ADMITTED,
    DUPLICATE,
    OVER_CAP,
    Point,
    StaleWatch,
    StudyError,
    TrialView,
    decide,
    open_study,
    study_url,
)
from pytest_prunebench.sweep import parse_sweep

ROOT = Path(__file__).resolve().parents[1]
TWO_OBJECTIVES = {
    "method": "bayes",
    "metric": [{"name": "top1", "goal": "maximize"}, {"name": "latency_ms", "goal": "minimize"}],
    "run_cap": 6,
    "parameters": {
        "model": {"value": "resnet20"},
        "epochs": {"value": 0},
        "sparsity.layer3": {"min": 0.1, "max": 0.5, "distribution": "q_uniform", "q": 0.05},
        "kind.layer3": {"values": ["filters", "channels"]},
        "lr": {"min": 0.001, "max": 0.1, "distribution": "log_uniform_values"},
    },
}


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


def test_a_q_uniform_value_reaches_the_case_as_the_sweep_writes_it() -> None:
    import optuna

    sweep = parse_sweep(TINY_BAYES, "s.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    suggested = {study.ask(search.search_space(sweep)).params["sparsity.layer3"] for _ in range(60)}
    assert 0.30000000000000004 in suggested  # Optuna's low + k * step
    assert {search.plain_values({"s": v})["s"] for v in suggested} == {0.1, 0.2, 0.3, 0.4, 0.5, 0.6}


def test_each_w_and_b_distribution_maps_onto_optunas() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    sweep = parse_sweep({"method": "bayes", "metric": {"name": "top1", "goal": "maximize"}, "parameters": {
        "model": {"value": "resnet20"}, "epochs": {"min": 0, "max": 3},
        "sparsity.layer1": {"min": 0.1, "max": 0.5}, "kind.layer1": {"values": ["filters", "channels"]},
        "sparsity.layer2": {"min": 0.13, "max": 0.5, "distribution": "q_uniform", "q": 0.05},
        "lr": {"min": 0.001, "max": 0.1, "distribution": "log_uniform_values"}}}, "s.yaml")
    space = search.search_space(sweep)
    assert space["model"] == CategoricalDistribution(["resnet20"])
    assert space["epochs"] == IntDistribution(0, 3)
    assert space["sparsity.layer1"] == FloatDistribution(0.1, 0.5)
    assert space["kind.layer1"] == CategoricalDistribution(["filters", "channels"])
    assert space["lr"] == FloatDistribution(0.001, 0.1, log=True)
    # q_uniform: W&B's values are the multiples of q between the bounds, exactly the float distribution's steps
    q = space["sparsity.layer2"]
    assert (q.low, q.high, q.step) == (0.15, 0.5, 0.05)
    parameter = next(p for p in sweep.parameters if p.name == "sparsity.layer2")
    assert [round(q.low + k * q.step, 9) for k in range(8)] == list(parameter.grid_values() or ())


def test_a_study_name_derives_from_the_content_unless_given() -> None:
    sweep = parse_sweep(TWO_OBJECTIVES, "sweeps/two.yaml")
    context = {"model": "resnet20", "device": "CPU"}
    name = search.study_name(sweep, context)
    assert name.startswith("two-") and name == search.study_name(parse_sweep(TWO_OBJECTIVES, "other/two.yaml"),
                                                                context)
    assert search.study_name(parse_sweep({**TWO_OBJECTIVES, "run_cap": 60}, "two.yaml"), context) == name
    changed = {**TWO_OBJECTIVES, "parameters": {**TWO_OBJECTIVES["parameters"], "epochs": {"value": 1}}}
    assert search.study_name(parse_sweep(changed, "two.yaml"), context) != name
    assert search.study_name(sweep, {**context, "device": "GPU"}) != name
    assert search.study_name(parse_sweep({**TWO_OBJECTIVES, "name": "mine"}, "two.yaml"), context) == "mine"


# -- admission: run_cap exact, no configuration twice ---------------------------------------------------------


def trial(number: int, slot: str | None, params: dict[str, Any] | None = None, running: bool = False,
          beat: Any = None) -> TrialView:
    return TrialView(number, running, not running, slot, params or {"s": number}, beat)


def test_a_trial_waits_for_every_lower_undecided_running_trial() -> None:
    assert decide(trial(3, None, running=True), [trial(0, ADMITTED), trial(1, None, running=True)], cap=5) is None
    assert decide(trial(3, None, running=True), [trial(0, ADMITTED), trial(4, None, running=True)], cap=5) == ADMITTED


def test_the_cap_counts_admitted_trials_only_and_waits_while_one_still_runs() -> None:
    lower = [trial(0, ADMITTED), trial(1, DUPLICATE), trial(2, "abandoned"), trial(3, ADMITTED, running=True)]
    assert decide(trial(5, None, running=True), lower, cap=3) == ADMITTED  # 2 counted
    assert decide(trial(5, None, running=True), lower, cap=2) is None  # trial 3 may yet be abandoned
    finished = [*lower[:3], trial(3, ADMITTED)]
    assert decide(trial(5, None, running=True), finished, cap=2) == OVER_CAP


def test_a_configuration_already_admitted_is_a_duplicate() -> None:
    lower = [trial(0, ADMITTED, {"s": 0.1}), trial(1, "error", {"s": 0.2})]
    assert decide(trial(2, None, {"s": 0.1}, running=True), lower, cap=9) == DUPLICATE
    assert decide(trial(2, None, {"s": 0.2}, running=True), lower, cap=9) == ADMITTED  # an errored one is redone
    assert decide(trial(2, None, {"s": 0.1 + 1e-12}, running=True), lower, cap=9) == DUPLICATE


def test_admission_in_number_order_never_passes_the_cap() -> None:
    """Trials decided one after another in any order of arrival: exactly cap are admitted, in number order."""
    for cap in (1, 3, 5):
        views = [trial(n, None, {"s": n}, running=True) for n in range(8)]
        for _ in range(20):
            for i, mine in enumerate(views):
                if mine.slot is None:
                    decision = decide(mine, views, cap)
                    if decision is not None:  # decided, and its case (if admitted) done at once
                        views[i] = TrialView(mine.number, False, True, decision, mine.params)
        assert [v.number for v in views if v.slot == ADMITTED] == list(range(cap))


def test_a_trial_whose_beat_stands_still_past_the_grace_is_stale() -> None:
    now = [0.0]
    watch = StaleWatch(grace=10, clock=lambda: now[0])
    alive, dead = trial(1, ADMITTED, running=True, beat=1), trial(2, ADMITTED, running=True, beat=7)
    assert watch.stale([alive, dead], own=set()) == []
    now[0] = 8
    alive = trial(1, ADMITTED, running=True, beat=2)
    assert watch.stale([alive, dead], own=set()) == []
    now[0] = 11
    assert watch.stale([alive, dead, trial(3, ADMITTED, running=True)], own=set()) == [2]
    assert watch.stale([alive, dead], own={2}) == []  # a process's own trials are never stale to it


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


def test_a_study_whose_stored_space_differs_is_one_line_before_anything_runs(tmp_path: Path) -> None:
    named = {**TWO_OBJECTIVES, "name": "shared"}
    open_study(parse_sweep(named, "a.yaml"), None, tmp_path, {}, 6)
    other = {**named, "parameters": {**named["parameters"], "kind.layer3": {"value": "filters"}}}
    with pytest.raises(StudyError) as raised:
        open_study(parse_sweep(other, "b.yaml"), None, tmp_path, {}, 6)
    text = str(raised.value)
    assert text.startswith("b.yaml: study shared in ") and "parameter kind.layer3" in text and "\n" not in text
    flipped = {**named, "metric": [{"name": "top1", "goal": "minimize"}, {"name": "latency_ms", "goal": "minimize"}]}
    with pytest.raises(StudyError, match="give the sweep another `name:`"):
        open_study(parse_sweep(flipped, "c.yaml"), None, tmp_path, {}, 6)


@pytest.mark.parametrize(("url", "message"), [
    ("http://user:hunter2@example.com/x", "http:// is not a study storage"),
    ("mongodb://localhost/x", "mongodb:// is not a study storage"),
    ("", "an empty study URL"),
])
def test_a_study_url_of_a_wrong_scheme_is_refused_without_its_password(url: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        study_url(url)
    assert message in str(raised.value) and "hunter2" not in str(raised.value)


def test_an_unreachable_study_storage_is_one_line_without_its_password(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a free port: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StudyError) as raised:
        search.open_storage(f"redis://:hunter2@127.0.0.1:{port}/0", tmp_path)
    assert "hunter2" not in str(raised.value) and "\n" not in str(raised.value)
    assert str(raised.value).startswith("--prunebench-study:")
    with pytest.raises(StudyError, match="cannot open the database"):
        search.open_storage(f"sqlite:///{tmp_path}/missing/dir/study.db", tmp_path)


# -- Pareto front and importance ------------------------------------------------------------------------------


def test_the_pareto_front_is_every_undominated_point() -> None:
    import random

    rng = random.Random(3)
    objectives = [("top1", "maximize"), ("latency_ms", "minimize")]
    points = [Point(f"p{i}", {"s": rng.random()}, {"top1": rng.choice([90.0, 91.0, 92.0, 93.0]),
                                                    "latency_ms": rng.choice([1.0, 1.5, 2.0])}) for i in range(40)]
    front = {p.name for p in search.pareto_front(points, objectives)}
    for p in points:
        beaten = any(q.values["top1"] >= p.values["top1"] and q.values["latency_ms"] <= p.values["latency_ms"]
                     and q.values != p.values for q in points)
        assert (p.name in front) == (not beaten)


def test_importance_ranks_the_parameter_that_drives_the_objective_first() -> None:
    import random

    rng = random.Random(0)
    points = [Point(f"p{i}", {"a": (a := rng.random()), "b": rng.random(), "kind": rng.choice(["x", "y"])},
                    {"latency_ms": 10 * a + 0.01 * rng.random()}) for i in range(30)]
    ranked = search.importance(points, "latency_ms")
    assert next(iter(ranked)) == "a" and ranked["a"] > 0.8
    lines = search.study_lines("study s", points, [("latency_ms", "minimize")])
    assert any(line.split()[:1] == ["a"] and float(line.split()[-1]) > 0.99 for line in lines)  # Pearson r


def test_the_latency_objective_is_looked_up_through_one_mapping() -> None:
    info = {"top1": 90.0, "latency_ms": 2.0}
    assert search.objective_values(info, [("latency_ms", "minimize")]) == {"latency_ms": 2.0}
    drift = search.OBJECTIVE_FIELDS["latency_ms"][0]
    assert search.objective_values({**info, drift: 1.5}, [("latency_ms", "minimize")]) == {"latency_ms": 1.5}
    assert search.objective_values({"top1": float("nan")}, [("top1", "maximize")]) is None


# -- through pytest ---------------------------------------------------------------------------------------------

SWEEP_SUITE = (ROOT / "bench_suites" / "test_sweep.py").read_text()
TINY_BAYES = {
    "method": "bayes",
    "metric": [{"name": "top1", "goal": "maximize"}, {"name": "latency_ms", "goal": "minimize"}],
    "run_cap": 3,
    "sampler": {"type": "tpe", "seed": 1},
    "parameters": {"model": {"value": "resnet20"}, "epochs": {"value": 0},
                   "sparsity.layer3": {"min": 0.1, "max": 0.6, "distribution": "q_uniform", "q": 0.1}},
}


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


HYPERBAND = {
    "method": "bayes", "metric": {"name": "top1", "goal": "maximize"}, "run_cap": 1,
    "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 3},
    "parameters": {"model": {"value": "resnet20"}, "epochs": {"value": 2},
                   "sparsity.layer3.1": {"values": [0.25]}},
}
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


def test_hyperband_maps_w_and_b_keys_onto_optunas_pruner() -> None:
    sweep = parse_sweep({**HYPERBAND, "early_terminate": {"type": "hyperband", "max_iter": 27, "s": 2, "eta": 3}},
                        "h.yaml")
    pruner = search.make_pruner(sweep)
    assert type(pruner).__name__ == "HyperbandPruner"
    assert (pruner._min_resource, pruner._max_resource, pruner._reduction_factor) == (3, 27, 3)
    # without max_iter the resource runs to the longest case's epochs, known before any trial completes
    assert search.make_pruner(parse_sweep(HYPERBAND, "h.yaml"))._max_resource == 2
    assert search.make_pruner(parse_sweep(HYPERBAND, "h.yaml"), 5)._max_resource == 5  # --prunebench-epochs
    varying = {**HYPERBAND, "parameters": {**HYPERBAND["parameters"], "epochs": {"values": [2, 6, 4]}}}
    assert search.make_pruner(parse_sweep(varying, "h.yaml"))._max_resource == 6
    no_epochs = {**HYPERBAND, "parameters": {"sparsity.layer3.1": {"values": [0.25]}}}
    assert search.make_pruner(parse_sweep(no_epochs, "h.yaml"))._max_resource == 3  # epoch 0, then 2 fine-tuning


@pytest.mark.parametrize(("min_iter", "max_resource", "eta"), [(1, 2, 2), (1, 3, 3), (1, 10, 3), (2, 27, 3),
                                                               (1, 4, 2), (3, 100, 4)])
def test_the_brackets_the_progress_line_shows_are_optunas(min_iter: int, max_resource: int, eta: int) -> None:
    import optuna

    pruner = optuna.pruners.HyperbandPruner(min_resource=min_iter, max_resource=max_resource, reduction_factor=eta)
    pruner._try_initialization(None)  # type: ignore[arg-type]  # an int max_resource needs no study
    brackets = search.hyperband_brackets(min_iter, max_resource, eta)
    assert len(brackets) == pruner._n_brackets
    budgets = pruner._trial_allocation_budgets
    assert [share for _, share in brackets] == pytest.approx([b / sum(budgets) for b in budgets])
    assert [first for first, _ in brackets] == [p._min_resource * eta ** p._min_early_stopping_rate
                                                for p in pruner._pruners]


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
    wrong = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--prunebench-sweep=bayes.yaml",
                                          "--prunebench-study=ftp://u:hunter2@host/x")
    assert wrong.ret == pytest.ExitCode.USAGE_ERROR and "hunter2" not in wrong.stderr.str()
    wrong.stderr.fnmatch_lines(["*ftp:// is not a study storage*"])
