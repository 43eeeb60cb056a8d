"""W&B sweep files: parsing and validation, grid points, hypothesis draws, points as schedules.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/plugin/test_sweep.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from option_parsing import OptionParsing, assert_one_line

from pytest_prunebench.errors import SweepError
from pytest_prunebench.sweep import (
    Parameter,
    Sweep,
    SweepPoint,
    check_groups,
    load_sweep,
    model_of,
    parse_sweep,
    point_schedule,
)

GRID = {
    "method": "grid",
    "metric": {"name": "latency_ms", "goal": "minimize"},
    "parameters": {
        "model": {"value": "resnet20"},
        "epochs": {"values": [0, 1]},
        "sparsity.layer1.0": {"values": [0.2, 0.5]},
        "kind.layer1.0": {"values": ["filters", "channels"]},
        "sparsity.layer3": {"min": 0.1, "max": 0.3, "distribution": "q_uniform", "q": 0.1},
    },
}
RANDOM = {
    "method": "random",
    "metric": {"name": "top1", "goal": "maximize"},
    "run_cap": 5,
    "parameters": {
        "sparsity": {"parameters": {"layer2.1": {"min": 0.1, "max": 0.6}, "layer3": {"values": [0.2, 0.4]}}},
        "ranker.layer3": {"values": ["l1", "l2"], "probabilities": [0.0, 1.0]},
        "epochs": {"min": 0, "max": 2},
        "lr": {"min": 0.001, "max": 0.1, "distribution": "log_uniform_values"},
    },
}

BAYES = {**GRID, "method": "bayes", "metric": [{"name": "top1", "goal": "maximize"},
                                               {"name": "latency_ms", "goal": "minimize"}]}
BAYES_TOP1 = {**GRID, "method": "bayes", "metric": {"name": "top1", "goal": "maximize"}}


def with_parameters(base: dict[str, Any], **parameters: Any) -> dict[str, Any]:
    return {**base, "parameters": {**base["parameters"], **parameters}}


# -- reading ----------------------------------------------------------------------------------------------------


def test_a_grid_sweep_visits_every_combination_in_file_order() -> None:
    sweep = parse_sweep(GRID, "grid.yaml")
    points = sweep.grid()
    assert len(points) == 2 * 2 * 2 * 3
    assert points[0] == {"model": "resnet20", "epochs": 0, "sparsity.layer1.0": 0.2, "kind.layer1.0": "filters",
                         "sparsity.layer3": 0.1}
    assert {p["sparsity.layer3"] for p in points} == {0.1, 0.2, 0.3}  # q_uniform, both ends included
    assert len({tuple(p.items()) for p in points}) == len(points)
    assert (sweep.metric, sweep.goal, sweep.groups()) == ("latency_ms", "minimize", ("layer1.0", "layer3"))


def test_grid_case_ids_are_readable_and_stable() -> None:
    sweep = parse_sweep(GRID, "sweeps/grid.yaml")
    ids = [SweepPoint(sweep, point).case_id() for point in sweep.grid()]
    # the values that vary, constants (model) left out
    assert ids[0] == "grid:epochs=0,sparsity.layer1.0=0.2,kind.layer1.0=filters,sparsity.layer3=0.1"
    assert len(set(ids)) == len(ids)
    assert ids == [SweepPoint(parse_sweep(GRID, "sweeps/grid.yaml"), p).case_id() for p in sweep.grid()]
    many = {f"sparsity.layer{s}.{b}": {"values": [0.1, 0.2]} for s in (1, 2, 3) for b in range(3)}
    long = parse_sweep({"method": "grid", "parameters": many}, "long.yaml")
    long_ids = [SweepPoint(long, point).case_id() for point in long.grid()]
    assert all(i.startswith("long:cfg-") for i in long_ids)  # too long to read: a stable hash
    assert len(set(long_ids)) == len(long_ids) == 2**9
    single = parse_sweep({"method": "grid", "parameters": {"sparsity.layer1": {"value": 0.1}}}, "one.yaml")
    assert SweepPoint(single, single.grid()[0]).case_id() == "one"


def test_w_and_b_nested_parameters_flatten_to_dotted_names() -> None:
    sweep = parse_sweep(RANDOM, "random.yaml")
    assert [p.name for p in sweep.parameters] == ["sparsity.layer2.1", "sparsity.layer3", "ranker.layer3", "epochs",
                                                  "lr"]
    assert sweep.run_cap == 5


@pytest.mark.parametrize(
    ("spec", "distribution"),
    [
        ({"value": 0.5}, "constant"),
        ({"values": [0.1, 0.2]}, "categorical"),
        ({"min": 0, "max": 3}, "int_uniform"),  # W&B: whole-number bounds mean int_uniform
        ({"min": 0.0, "max": 0.5}, "uniform"),
        ({"min": 0, "max": 0.5}, "uniform"),
        ({"min": 0.1, "max": 0.5, "distribution": "q_uniform", "q": 0.1}, "q_uniform"),
    ],
)
def test_the_distribution_follows_w_and_b_defaults(spec: dict[str, Any], distribution: str) -> None:
    name = "epochs" if distribution == "int_uniform" else "sparsity.layer1"
    sweep = parse_sweep({"method": "random", "parameters": {"sparsity.layer1": {"value": 0.1}, name: spec}}, "s")
    assert sweep.parameters[-1].distribution == distribution


def test_a_sweep_file_is_read_with_safe_load(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(GRID, sort_keys=False))
    assert load_sweep(path) == parse_sweep(GRID, str(path))
    path.write_text("method: !!python/object/apply:os.system ['echo owned']\nparameters: {}\n")
    with pytest.raises(SweepError, match="unsafe or unknown YAML tag"):
        load_sweep(path)


BAD_SWEEPS = [
    ({**GRID, "method": "hyperband"}, "method: 'hyperband': use grid"),
    ({**GRID, "early_terminate": {"type": "hyperband"}}, "early_terminate: early termination stops bayes cases"),
    # issue 19's bad inputs: each one line naming the key and the value
    ({**GRID, "method": "bayes", "metric": None}, "metric: bayes needs a metric to optimise"),
    ({**GRID, "metric": [{"name": "top1", "goal": "maximize"}]}, "metric: a list of metrics (several objectives) "
                                                                  "needs method: bayes"),
    ({**BAYES, "metric": [{"name": "top1", "goal": "maximize"}, {"name": "latency_ms"}]},
     "metric[1].goal: missing: each objective of a list says minimize or maximize"),
    ({**BAYES, "metric": [{"name": "top1", "goal": "maximize"}, {"name": "top1", "goal": "minimize"}]},
     "metric: top1 is listed twice"),
    ({**BAYES, "metric": []}, "metric: an empty list"),
    ({**BAYES, "sampler": {"type": "cmaes"}}, "sampler.type: 'cmaes': use one of tpe, gp, nsgaii, random"),
    ({**BAYES, "sampler": {"type": "tpe", "n_ei_candidates": 5}}, "sampler.n_ei_candidates: 5: not an option of the "
                                                                  "tpe sampler"),
    ({**BAYES, "sampler": {"type": "tpe", "seed": -1}}, "sampler.seed: -1 is not a valid seed"),
    ({**BAYES, "sampler": "tpe"}, "sampler: 'tpe': use {type: tpe}"),
    ({**GRID, "sampler": {"type": "tpe"}}, "sampler: the sampler chooses bayes cases; method grid has none"),
    ({**BAYES_TOP1, "early_terminate": {"type": "median"}}, "early_terminate.type: 'median': the one type is "
                                                             "hyperband"),
    ({**BAYES_TOP1, "early_terminate": {"type": "hyperband", "eta": 1}}, "early_terminate.eta: 1: a whole number, "
                                                                         "at least 2"),
    ({**BAYES_TOP1, "early_terminate": {"type": "hyperband", "eta": "three"}}, "early_terminate.eta: 'three'"),
    ({**BAYES_TOP1, "early_terminate": {"type": "hyperband", "min_iter": 0}}, "early_terminate.min_iter: 0"),
    ({**BAYES_TOP1, "early_terminate": {"type": "hyperband", "strict": True}}, "early_terminate.strict: unknown key"),
    ({**BAYES_TOP1, "early_terminate": {"type": "hyperband", "s": 2}}, "early_terminate.s: s needs max_iter"),
    ({**BAYES_TOP1, "early_terminate": {"type": "hyperband", "min_iter": 3, "max_iter": 2}},
     "early_terminate.max_iter: 2: must be above min_iter 3"),
    ({**BAYES, "early_terminate": {"type": "hyperband"}}, "early_terminate: hyperband judges a case on one "
                                                          "objective; the metric lists 2 (Optuna's pruners take one)"),
    ({**BAYES_TOP1, "metric": {"name": "latency_ms", "goal": "minimize"}, "early_terminate": {"type": "hyperband"}},
     "the metric is latency_ms, known only after the whole case"),
    (with_parameters({**BAYES_TOP1, "early_terminate": {"type": "hyperband"}}, epochs={"value": 0}),
     "early_terminate: every case has 0 retraining epochs"),
    ({**GRID, "paramaters": {}}, "paramaters: unknown key"),
    ({"method": "grid"}, "parameters: missing or empty"),
    ({"method": "grid", "parameters": {"epochs": {"value": 1}}}, "no sparsity.<group> parameter"),
    (with_parameters(GRID, depth={"value": 3}), "parameters.depth: unknown parameter"),
    (with_parameters(GRID, **{"sparsity.": {"value": 0.1}}), "parameters.sparsity.: unknown parameter"),
    (with_parameters(GRID, **{"kind.layer2": {"value": "filters"}}), "kind.layer2: no sparsity.layer2"),
    (with_parameters(GRID, **{"sparsity.layer2": {"values": [0.5, 1.0]}}), "1.0 is out of range: sparsity"),
    (with_parameters(GRID, **{"sparsity.layer2": {"value": -0.1}}), "-0.1 is out of range"),
    (with_parameters(GRID, **{"sparsity.layer2": {"value": "half"}}), "'half' is out of range"),
    (with_parameters(GRID, **{"sparsity.layer2": {"value": True}}), "True is out of range"),
    (with_parameters(GRID, **{"sparsity.layer2": {"min": 0.5, "max": 0.99, "distribution": "q_uniform", "q": 0.02}}),
     "1.0 is out of range"),  # 0.99 rounds to the step 1.0
    (with_parameters(GRID, **{"kind.layer1.0": {"value": "rows"}}), "'rows' is out of range: use filters or chan"),
    (with_parameters(GRID, **{"sparsity.layer2": {"value": 0.1}, "ranker.layer2": {"value": "l3"}}),
     "'l3' is out of range: use l1 or l2"),
    (with_parameters(GRID, epochs={"value": -1}), "parameters.epochs: -1 is out of range"),
    (with_parameters(GRID, epochs={"value": 1.5}), "parameters.epochs: 1.5 is out of range"),
    (with_parameters(GRID, lr={"value": 0}), "parameters.lr: 0 is out of range"),
    (with_parameters(GRID, model={"values": ["resnet20", "resnet56"]}), "belong to one model"),
    (with_parameters(GRID, model={"value": "vgg16"}), "unknown model 'vgg16'"),
    (with_parameters(GRID, **{"sparsity.layer2": {"min": 0.1, "max": 0.5}}), "grid needs discrete values; uniform"),
    (with_parameters(GRID, **{"sparsity.layer2": {"min": 0.0, "max": 0.5, "distribution": "normal"}}),
     "'normal' is not supported here"),
    (with_parameters(GRID, **{"sparsity.layer2": {"min": 0.5, "max": 0.1}}), "min 0.5 is above max 0.1"),
    (with_parameters(GRID, **{"sparsity.layer2": {"min": 0.1}}), "uniform needs `min:` and `max:`"),
    (with_parameters(GRID, **{"sparsity.layer2": {"min": 0.1, "max": "x"}}), "sparsity.layer2.max: 'x' is not a"),
    (with_parameters(GRID, **{"sparsity.layer2": {"min": 0.0, "max": 0.5, "distribution": "q_uniform", "q": 0}}),
     "the step must be above 0"),
    (with_parameters(GRID, lr={"min": 0, "max": 0.1, "distribution": "log_uniform_values"}),
     "log_uniform_values needs min above 0"),
    (with_parameters(GRID, epochs={"min": 0, "max": 2.5, "distribution": "int_uniform"}),
     "int_uniform needs whole-number min and max"),
    (with_parameters(GRID, **{"sparsity.layer2": {"values": []}}), "give a non-empty list"),
    (with_parameters(GRID, **{"sparsity.layer2": {"values": [0.1, 0.2], "probabilities": [0.5, 0.6]}}),
     "summing to 1"),
    (with_parameters(GRID, **{"sparsity.layer2": 0.5}), "a parameter is a mapping"),
    (with_parameters(GRID, **{"sparsity.layer2": {"value": 0.5, "step": 1}}), "sparsity.layer2.step: unknown key"),
    (with_parameters(GRID, sparsity={"parameters": [1]}), "nested parameters"),
    (with_parameters(GRID, **{f"sparsity.layer{i}": {"values": [0.1 * k for k in range(1, 10)]} for i in range(5)}),
     "points (more than 10,000)"),
    ({**GRID, "metric": {"name": "accuracy"}}, "metric.name: 'accuracy' is not a record figure"),
    ({**GRID, "metric": {"name": "top1", "goal": "up"}}, "metric.goal: 'up'"),
    ({**GRID, "metric": {"name": "top1", "target": 99}}, "metric.target: 99: not supported; a metric has name and goal "
                                                          "only"),  # W&B's target: stop the sweep once reached
    ({**GRID, "run_cap": 0}, "run_cap: 0: use a whole number"),
    ({**GRID, "run_cap": "ten"}, "run_cap: 'ten'"),
    (None, "the file is empty"),
    ([GRID], "the file is a list"),
]


@pytest.mark.parametrize(("document", "message"), BAD_SWEEPS)
def test_a_bad_sweep_is_one_error_naming_the_file_and_key(document: Any, message: str) -> None:
    with pytest.raises(SweepError) as raised:
        parse_sweep(document, "sweeps/bad.yaml")
    text = str(raised.value)
    assert text.startswith("sweeps/bad.yaml: ")
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("method: grid\nparameters: {sparsity.layer1: {value: 0.1}\n", "YAML syntax error"),
        ("", "the file is empty"),
    ],
)
def test_a_bad_sweep_file_is_one_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    with pytest.raises(SweepError, match=message):
        load_sweep(path)


def test_a_missing_sweep_file_says_which_option_to_fix(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="no such file; pass an existing W&B sweep file with --prunebench-sweep"):
        load_sweep(tmp_path / "nope.yaml")


# -- drawing --------------------------------------------------------------------------------------------------

DRAWN = parse_sweep(RANDOM, "random.yaml")


@settings(max_examples=200, deadline=None)
@given(values=DRAWN.points())
def test_random_draws_stay_in_their_declared_distributions(values: dict[str, Any]) -> None:
    assert set(values) == {p.name for p in DRAWN.parameters}
    assert 0.1 <= values["sparsity.layer2.1"] <= 0.6
    assert values["sparsity.layer3"] in (0.2, 0.4)
    assert values["ranker.layer3"] == "l2"  # probability 0 for l1: never drawn
    assert values["epochs"] in (0, 1, 2)
    assert 0.001 <= values["lr"] <= 0.1


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_q_uniform_draws_are_multiples_of_q_within_bounds(data: st.DataObject) -> None:
    q = data.draw(st.sampled_from([0.02, 0.05, 0.1]))
    low = data.draw(st.integers(0, 10)) * 0.01
    high = low + data.draw(st.integers(1, 40)) * 0.01
    parameter = Parameter("sparsity.x", "q_uniform", low=low, high=high, q=q)
    value = data.draw(parameter.strategy())
    # W&B's q_uniform: round(uniform(min, max) / q) * q, so within half a step of the bounds
    assert low - q / 2 - 1e-9 <= value <= high + q / 2 + 1e-9
    assert math.isclose(value / q, round(value / q), abs_tol=1e-6)
    assert value in parameter.grid_values()


@settings(max_examples=300, deadline=None)
@given(values=parse_sweep({"method": "random", "parameters": {
    "sparsity.layer1": {"values": [0.1, 0.2, 0.3], "probabilities": [0.2, 0.0, 0.8]}}}, "w").points())
def test_weighted_choices_never_draw_a_zero_probability_value(values: dict[str, Any]) -> None:
    assert values["sparsity.layer1"] in (0.1, 0.3)


def test_the_digest_tells_sweeps_apart_and_is_stable() -> None:
    assert DRAWN.digest() == parse_sweep(RANDOM, "elsewhere.yaml").digest()  # content, not the file name
    other = parse_sweep(with_parameters(RANDOM, epochs={"value": 0}), "random.yaml")
    assert other.digest() != DRAWN.digest()


# -- points as schedules --------------------------------------------------------------------------------------


def test_a_point_becomes_a_one_shot_schedule_of_its_groups() -> None:
    sweep = parse_sweep(GRID, "grid.yaml")
    point = {"model": "resnet20", "epochs": 1, "sparsity.layer1.0": 0.5, "kind.layer1.0": "channels",
             "sparsity.layer3": 0.2}
    schedule = point_schedule(sweep, point, model_of(sweep, "resnet56"))
    pruners = {p.name: p for p in schedule.pruners}
    assert set(pruners) == {"layer1.0", "layer3"}
    assert (pruners["layer1.0"].kind, pruners["layer1.0"].ranker) == ("channels", "l1")
    assert pruners["layer1.0"].layers == ("layer1.0.conv2",)  # a block's channels: its conv2's inputs
    assert pruners["layer3"].kind == "filters"
    assert pruners["layer3"].layers == ("layer3.0.conv1", "layer3.1.conv1", "layer3.2.conv1")
    assert (pruners["layer1.0"].desired_sparsity, pruners["layer3"].desired_sparsity) == (0.5, 0.2)
    assert schedule.epochs == 1
    assert schedule.model_hint() == "resnet20"
    assert schedule.generated
    assert schedule.name == point_schedule(sweep, dict(point), "resnet20").name  # stable
    assert schedule.name != point_schedule(sweep, {**point, "sparsity.layer3": 0.3}, "resnet20").name


def test_the_model_comes_from_the_sweep_else_the_default() -> None:
    assert model_of(parse_sweep(GRID, "g"), "resnet56") == "resnet20"
    assert model_of(parse_sweep(RANDOM, "r"), "resnet56") == "resnet56"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"sparsity.layer9": {"value": 0.1}}, "resnet20 has no conv, residual block or stage named 'layer9'"),
        ({"sparsity.layer1": {"value": 0.1}, "sparsity.layer1.0": {"value": 0.1}},
         "layer1.0.conv1 is also in sparsity.layer1"),
        ({"sparsity.conv1": {"value": 0.1}, "kind.conv1": {"values": ["filters", "channels"]}},
         "conv1 reads the input image"),
    ],
)
def test_groups_are_checked_against_the_model(parameters: dict[str, Any], message: str) -> None:
    sweep = parse_sweep({"method": "grid", "parameters": parameters}, "sweeps/g.yaml")
    with pytest.raises(SweepError, match=message) as raised:
        check_groups(sweep, "resnet20")
    assert str(raised.value).startswith("sweeps/g.yaml: parameters.sparsity.")


def test_a_conv_a_block_and_a_stage_are_groups() -> None:
    sweep = parse_sweep({"method": "grid", "parameters": {
        "sparsity.layer1.0.conv1": {"value": 0.1}, "sparsity.layer2.1": {"value": 0.1},
        "sparsity.layer3": {"value": 0.1}}}, "g")
    check_groups(sweep, "resnet20")  # no error: three disjoint groups
    schedule = point_schedule(sweep, sweep.grid()[0], "resnet20")
    assert [p.layers for p in schedule.pruners] == [("layer1.0.conv1",), ("layer2.1.conv1",),
                                                    ("layer3.0.conv1", "layer3.1.conv1", "layer3.2.conv1")]


def test_shipped_sweeps_parse_and_fit_their_model() -> None:
    files = sorted((Path(__file__).resolve().parents[2] / "sweeps").glob("*.yaml"))
    assert {f.stem for f in files} >= {"rapid_grid", "rapid_random"}
    for path in files:
        sweep = load_sweep(path)
        check_groups(sweep, model_of(sweep, "resnet20"))
        assert isinstance(sweep, Sweep)


def test_a_sweep_option_that_matches_nothing_is_a_usage_error(parsing: OptionParsing) -> None:
    assert_one_line(parsing.usage_error("--prunebench-sweep=nowhere/*.yaml"), "--prunebench-sweep",
                    "*--prunebench-sweep */nowhere/*.yaml: no .yaml/.yml W&B sweep file there*")
