"""Searched sweeps (search.py): W&B distributions as Optuna's, the admission rule that makes run_cap exact, stale
trials, storages (journal file, a real redis-server, sqlite), the Pareto front, and the plugin running them.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/plugin/test_study.py, tests/e2e/test_study.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from option_parsing import OptionParsing, assert_one_line
from study_sweeps import TINY_BAYES, TWO_OBJECTIVES, trial

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


HYPERBAND = {
    "method": "bayes", "metric": {"name": "top1", "goal": "maximize"}, "run_cap": 1,
    "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 3},
    "parameters": {"model": {"value": "resnet20"}, "epochs": {"value": 2},
                   "sparsity.layer3.1": {"values": [0.25]}},
}


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


def test_a_study_option_of_a_wrong_scheme_is_a_usage_error_without_its_password(parsing: OptionParsing) -> None:
    (parsing.directory / "bayes.yaml").write_text(yaml.safe_dump(TINY_BAYES), encoding="utf-8")
    message = parsing.usage_error("--prunebench-sweep=bayes.yaml", "--prunebench-study=ftp://u:hunter2@host/x")
    assert "hunter2" not in message
    assert_one_line(message, "--prunebench-study", "*ftp:// is not a study storage*")
