"""Hypothesis strategies drawing pruning configurations, and the writer that turns a schedule back into YAML.

A drawn configuration must be a schedule like any file's: every group a pruner, sparsities on the step grid,
named by what it does, printable as a YAML file that parses back into the same schedule, and prunable.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/e2e/test_strategies.py.
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NonInteractiveExampleWarning

from pytest_prunebench.errors import ScheduleError
from pytest_prunebench.schedule import (
    GENERATED_PREFIX,
    CaseBounds,
    Schedule,
    Window,
    load_schedule,
    parse_schedule,
    schedule_document,
    schedule_yaml,
)
from pytest_prunebench.strategies import (
    DEFAULT_LAYERS,
    KINDS,
    RANKERS,
    SEARCH_SETTINGS,
    LayerGroup,
    layer_groups,
    pruning_documents,
    pruning_schedules,
    sparsities,
    to_schedule,
)

PROPERTY = settings(max_examples=30, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
RESNET20_BLOCKS = [f"layer{stage}.{block}" for stage in (1, 2, 3) for block in (0, 1, 2)]
REPO_SCHEDULES = sorted((Path(__file__).resolve().parents[2] / "schedules").glob("*.yaml"))
DISTILLER_SCHEDULES = sorted(Path("/work/shared/distiller-schedules").glob("*.yaml"))


def draw_once(strategy: st.SearchStrategy[Any]) -> Any:
    """One example outside @given (where the deferred validation of `pruning_documents` happens)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        return strategy.example()


def round_trip(schedule: Schedule) -> Schedule:
    return parse_schedule(yaml.safe_load(schedule_yaml(schedule)), schedule.path, schedule.name)


def pruner_document(ranker: str, kind: str, sparsity: float, *layers: str) -> dict[str, Any]:
    return {"class": f"{ranker.upper()}RankedStructureParameterPruner", "group_type": kind.capitalize(),
            "desired_sparsity": sparsity, "weights": [f"module.{layer}.weight" for layer in layers]}


def document(pruners: dict[str, dict[str, Any]], **section: Any) -> dict[str, Any]:
    return {"version": 1, "pruners": pruners,
            "policies": [{"pruner": {"instance_name": name}, "epochs": [0]} for name in pruners],
            "prunebench": {"model": "resnet20", **section}}


# --- layer groups -------------------------------------------------------------------------------------------------


def test_resnet20_block_groups_are_its_nine_residual_blocks() -> None:
    groups = layer_groups("resnet20")
    assert [group.name for group in groups] == RESNET20_BLOCKS
    for group, block in zip(groups, RESNET20_BLOCKS, strict=True):
        assert group.kinds() == ("filters", "channels")
        assert group.layers_for("filters") == (f"{block}.conv1",)
        assert group.layers_for("channels") == (f"{block}.conv2",)


def test_stage_groups_hold_every_block_of_a_stage() -> None:
    groups = layer_groups("resnet20", group_by="stage")
    assert [group.name for group in groups] == ["layer1", "layer2", "layer3"]
    for group in groups:
        blocks = [f"{group.name}.{block}" for block in (0, 1, 2)]
        assert group.layers_for("filters") == tuple(f"{block}.conv1" for block in blocks)
        assert group.layers_for("channels") == tuple(f"{block}.conv2" for block in blocks)


def test_layer_groups_hold_one_conv_each() -> None:
    groups = layer_groups("resnet20", layers=DEFAULT_LAYERS, group_by="layer")  # explicit: the user's choice
    expected = [f"{block}.{conv}" for block in RESNET20_BLOCKS for conv in ("conv1", "conv2")]
    assert [group.name for group in groups] == expected
    for group in groups:
        kind = "filters" if group.name.endswith("conv1") else "channels"
        assert group.layers == ((kind, (group.name,)),)


def test_layer_grouping_refuses_the_coupled_default_pairs() -> None:
    # A block's conv1 filters and conv2 input channels are the same channels: as two groups they would add up.
    with pytest.raises(ValueError, match=r"group_by='layer' with the default layers .* same channels"):
        layer_groups("resnet20", group_by="layer")
    assert len(layer_groups("resnet20", kinds=("filters",), group_by="layer")) == 9


def test_distiller_model_alias_gives_the_same_groups() -> None:
    assert layer_groups("resnet20_cifar") == layer_groups("resnet20")


def test_only_the_kinds_asked_for_are_offered() -> None:
    groups = layer_groups("resnet20", kinds=["channels"])
    assert [group.name for group in groups] == RESNET20_BLOCKS
    assert all(group.kinds() == ("channels",) for group in groups)


def test_per_kind_layer_patterns() -> None:
    groups = layer_groups("resnet56", layers={"filters": ["layer3.*.conv1"]}, group_by="stage")
    assert groups == (LayerGroup("layer3", (("filters", tuple(f"layer3.{b}.conv1" for b in range(9))),)),)


def test_the_stem_conv_is_offered_for_filters_only() -> None:
    assert layer_groups("resnet20", layers=["conv1"], kinds=["filters"]) == (
        LayerGroup("conv1", (("filters", ("conv1",)),)),)
    with pytest.raises(ValueError, match="no conv of resnet20 matches"):
        layer_groups("resnet20", layers=["conv1"], kinds=["channels"])
    everything = layer_groups("resnet20", layers=["*"], group_by="layer")
    stem = [group for group in everything if group.name == "conv1"]
    assert stem == [LayerGroup("conv1", (("filters", ("conv1",)),))]
    channel_layers = {layer for group in everything if "channels" in group.kinds()
                      for layer in group.layers_for("channels")}
    assert "conv1" not in channel_layers
    assert {"layer1.0.conv1", "layer2.0.downsample.0"} <= channel_layers  # every other conv is offered


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layers": ["layer9.*"]}, r"no conv of resnet20 matches layers=.*layer9"),
        ({"layers": ["fc"]}, r"no conv of resnet20 matches"),  # a Linear is not a conv
        ({"layers": "layer1.*"}, r"layers must be a list of name patterns, got the string 'layer1\.\*'"),
        ({"layers": {"rows": ["layer1.*"]}}, r"layers: unknown kind 'rows'"),
        ({"kinds": ["rows"]}, r"kinds must be a non-empty subset of .*'rows'"),
        ({"kinds": []}, r"kinds must be a non-empty subset"),
        ({"group_by": "blocks"}, r"group_by must be 'layer', 'block' or 'stage', got 'blocks'"),
    ],
)
def test_bad_layer_group_arguments_are_value_errors_naming_the_problem(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        layer_groups("resnet20", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rankers": ["l3"]}, r"rankers must be a non-empty subset of .*'l3'"),
        ({"rankers": []}, r"rankers must be a non-empty subset"),
        ({"step": 0}, r"need 0 < step <= max_sparsity < 1, got step=0,"),
        ({"step": 0.5, "max_sparsity": 0.4}, r"need 0 < step <= max_sparsity < 1, got step=0.5, max_sparsity=0.4"),
        ({"max_sparsity": 1.0}, r"max_sparsity=1.0"),
        ({"step": -0.1}, r"got step=-0.1"),
        ({"prunebench": {"model": "resnet56"}}, r"give the model as the strategy's first argument"),
    ],
)
def test_bad_strategy_arguments_are_refused_when_the_strategy_is_made(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pruning_schedules("resnet20", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_groups": 0}, r"need 1 <= min_groups <= max_groups <= 9 .*got min_groups=0"),
        ({"max_groups": 10}, r"need 1 <= min_groups <= max_groups <= 9 .*max_groups=10"),
        ({"min_groups": 5, "max_groups": 3}, r"min_groups=5, max_groups=3"),
        ({"group_by": "stage", "min_groups": 4}, r"max_groups <= 3 \(the groups of resnet20\)"),
        ({"max_groups": 0}, r"max_groups=0"),
        ({"kinds": ["rows"]}, r"kinds must be a non-empty subset"),
        ({"group_by": "net"}, r"group_by must be .*'net'"),
        ({"layers": ["nothing.*"]}, r"no conv of resnet20 matches"),
    ],
)
def test_bad_group_arguments_are_refused_at_the_first_draw(kwargs: dict[str, Any], message: str) -> None:
    strategy = pruning_schedules("resnet20", **kwargs)  # deferred: making it builds no model
    with pytest.raises(ValueError, match=message):
        draw_once(strategy)


# --- sparsities ---------------------------------------------------------------------------------------------------


@PROPERTY
@given(st.data())
def test_sparsities_are_multiples_of_step_up_to_the_maximum(data: st.DataObject) -> None:
    step = data.draw(st.sampled_from([0.01, 0.02, 0.05, 0.1, 0.125, 0.3]), label="step")
    max_sparsity = data.draw(st.sampled_from([0.3, 0.5, 0.7, 0.9, 0.95, 0.99]).filter(lambda m: m >= step),
                             label="max_sparsity")
    value = data.draw(sparsities(max_sparsity, step), label="sparsity")
    assert 0 < value <= max_sparsity + 1e-12
    assert math.isclose(value / step, round(value / step), abs_tol=1e-9)


@pytest.mark.parametrize(("max_sparsity", "step"), [(0.3, 0.1), (0.7, 0.1), (0.9, 0.02), (0.9, 0.3)])
def test_sparsities_reach_the_maximum_and_shrink_to_step(max_sparsity: float, step: float) -> None:
    # 0.3 / 0.1 and 0.7 / 0.1 are just below a whole number in floating point: the top level must not be lost.
    assert find(sparsities(max_sparsity, step), lambda s: s >= max_sparsity - 1e-9,
                settings=settings(database=None)) == max_sparsity
    assert find(sparsities(max_sparsity, step), lambda s: True, settings=settings(database=None)) == step


# --- drawn schedules ----------------------------------------------------------------------------------------------


@PROPERTY
@given(st.data())
def test_drawn_schedules_follow_the_options(data: st.DataObject) -> None:
    kinds = data.draw(st.sampled_from([("filters",), ("channels",), KINDS]), label="kinds")
    rankers = data.draw(st.sampled_from([("l1",), ("l2",), RANKERS]), label="rankers")
    group_by = data.draw(st.sampled_from(["layer", "block", "stage"] if len(kinds) == 1 else ["block", "stage"]),
                         label="group_by")
    step, max_sparsity = data.draw(st.sampled_from([(0.02, 0.9), (0.1, 0.5), (0.05, 0.95), (0.25, 0.25)]),
                                   label="step, max_sparsity")
    groups = layer_groups("resnet20", kinds=kinds, group_by=group_by)
    min_groups = data.draw(st.integers(1, len(groups)), label="min_groups")
    max_groups = data.draw(st.integers(min_groups, len(groups)), label="max_groups")
    schedule = data.draw(pruning_schedules("resnet20", kinds=kinds, rankers=rankers, group_by=group_by,
                                           step=step, max_sparsity=max_sparsity, min_groups=min_groups,
                                           max_groups=max_groups), label="schedule")

    assert [p.name for p in schedule.pruners] == [g.name for g in groups]  # every group, in model order
    assert [p.pruner for p in schedule.pruner_policies] == [g.name for g in groups]
    assert all(p.window == Window(epochs=(0,)) for p in schedule.pruner_policies)
    active = [p for p in schedule.pruners if p.desired_sparsity > 0]
    assert min_groups <= len(active) <= max_groups
    for pruner, group in zip(schedule.pruners, groups, strict=True):
        assert pruner.kind in kinds and pruner.kind in group.kinds()
        assert pruner.layers == group.layers_for(pruner.kind)
        assert pruner.ranker in rankers
        assert pruner.class_name == f"{pruner.ranker.upper()}RankedStructureParameterPruner"
        if pruner in active:
            assert 0 < pruner.desired_sparsity <= max_sparsity
            levels = pruner.desired_sparsity / step
            assert math.isclose(levels, round(levels), abs_tol=1e-9), pruner.desired_sparsity
        else:
            assert pruner.desired_sparsity == 0.0
    assert schedule.model == "resnet20"
    assert schedule.warnings == ()


@PROPERTY
@given(pruning_schedules("resnet20"))
def test_a_drawn_schedule_is_generated_and_named_by_its_configuration(schedule: Schedule) -> None:
    assert schedule.generated
    assert schedule.path.startswith(GENERATED_PREFIX)
    assert re.fullmatch(r"cfg-[0-9a-f]{12}", schedule.name)
    assert schedule.name == f"cfg-{schedule.semantic_hash()[:12]}"
    assert schedule.name in schedule.path


@PROPERTY
@given(pruning_documents("resnet20", max_sparsity=0.5), st.sampled_from([0.52, 0.6, 0.9]))
def test_equal_configurations_get_equal_names_and_different_ones_do_not(doc: dict[str, Any],
                                                                        other_sparsity: float) -> None:
    schedule = to_schedule(doc)
    again = to_schedule(copy.deepcopy(doc))
    assert again == schedule
    assert again.name == schedule.name
    from_file = parse_schedule(copy.deepcopy(doc), "somewhere/mine.yaml", "mine")
    assert schedule.name == f"cfg-{from_file.semantic_hash()[:12]}"  # file name and path play no part

    changed = copy.deepcopy(doc)
    first = next(iter(changed["pruners"].values()))
    first["desired_sparsity"] = other_sparsity  # above max_sparsity: never the drawn value
    assert to_schedule(changed).name != schedule.name
    changed = copy.deepcopy(doc)
    changed["prunebench"]["epochs"] = 3
    assert to_schedule(changed).name != schedule.name


def test_a_schedule_read_from_a_file_is_not_generated() -> None:
    assert REPO_SCHEDULES
    assert not load_schedule(REPO_SCHEDULES[0]).generated


@PROPERTY
@given(pruning_schedules("resnet20", prunebench={"epochs": 0, "max_latency_ms": 2.0, "min_top1": 50, "lr": 0.05}))
def test_the_prunebench_section_lands_in_the_schedule(schedule: Schedule) -> None:
    assert schedule.epochs == 0
    assert schedule.lr == 0.05
    assert schedule.thresholds == CaseBounds(min_top1=50.0, max_latency_ms=2.0)
    assert round_trip(schedule) == schedule


# --- writing schedules back ---------------------------------------------------------------------------------------


@PROPERTY
@given(st.data())
def test_a_drawn_schedule_round_trips_through_yaml(data: st.DataObject) -> None:
    group_by = data.draw(st.sampled_from(["layer", "block", "stage"]), label="group_by")
    kinds = ("filters",) if group_by == "layer" else KINDS
    schedule = data.draw(pruning_schedules("resnet20", kinds=kinds, group_by=group_by), label="schedule")
    assert round_trip(schedule) == schedule


@PROPERTY
@given(pruning_schedules("resnet20", kinds=("filters",), group_by="layer", max_groups=4))
def test_the_active_part_round_trips_without_zero_sparsity_pruners(schedule: Schedule) -> None:
    active = schedule.active()
    text = schedule_yaml(active)
    written = yaml.safe_load(text)
    assert written["pruners"]
    assert all(p["desired_sparsity"] > 0 for p in written["pruners"].values())
    assert [p["pruner"]["instance_name"] for p in written["policies"]] == list(written["pruners"])
    assert list(written["pruners"]) == [p.name for p in schedule.pruners if p.desired_sparsity > 0]
    assert round_trip(active) == active
    assert active.describe() == schedule.describe()  # the same pruning
    assert len(active.pruners) < len(schedule.pruners)  # max_groups=4 of 18: something was left out


def test_schedule_document_writes_every_section() -> None:
    schedule = load_schedule(Path(__file__).resolve().parents[2] / "schedules" / "resnet20_filters.yaml")
    written = schedule_document(schedule)
    assert list(written) == ["version", "pruners", "extensions", "lr_schedulers", "policies"]
    assert written["lr_schedulers"] == {"finetune_lr": {"class": "ExponentialLR", "gamma": 0.8}}
    assert {"lr_scheduler": {"instance_name": "finetune_lr"}, "starting_epoch": 0, "ending_epoch": 10} \
        in written["policies"]
    assert written["extensions"]["net_thinner"] == {"class": "FilterRemover", "thinning_func_str": "remove_filters",
                                                    "arch": "resnet20_cifar", "dataset": "cifar10"}


def test_a_hand_written_document_round_trips_with_every_field() -> None:
    doc = document({"lead": {**pruner_document("l2", "filters", 0.25, "layer2.0.conv2", "layer2.1.conv2"),
                             "group_dependency": "Leader"},
                    "tail": pruner_document("l1", "channels", 0.5, "layer3.2.conv2")},
                   dataset="cifar10", epochs=4, lr=0.1, min_top1=80, max_top1_drop=1.5, min_latency_speedup=1.2)
    doc["policies"][1] = {"pruner": {"instance_name": "tail"}, "starting_epoch": 1, "ending_epoch": 7, "frequency": 3}
    doc["lr_schedulers"] = {"steps": {"class": "MultiStepLR", "milestones": [2, 3], "gamma": 0.5}}
    doc["policies"].append({"lr_scheduler": {"instance_name": "steps"}, "starting_epoch": 0})
    schedule = parse_schedule(doc, "hand.yaml", "hand")
    assert schedule.pruner("lead").leader and schedule.lr_schedulers and schedule.thresholds.min_top1 == 80.0
    assert round_trip(schedule) == schedule


@pytest.mark.parametrize("path", REPO_SCHEDULES + DISTILLER_SCHEDULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_schedules_round_trip_through_yaml(path: Path) -> None:
    try:
        schedule = load_schedule(path)
    except ScheduleError as exc:
        if path in REPO_SCHEDULES:
            raise
        pytest.skip(f"refused by load_schedule: {exc}")
    # What no policy uses is left out of the document, so its warnings do not come back (resnet20_slimming's unused
    # regularizer); everything else does.
    assert round_trip(schedule) == replace(schedule, warnings=())


# --- repr and describe --------------------------------------------------------------------------------------------


def mixed_schedule() -> Schedule:
    return to_schedule(document({
        "layer1.0": pruner_document("l1", "filters", 0.5, "layer1.0.conv1"),
        "layer1.1": pruner_document("l1", "filters", 0.0, "layer1.1.conv1"),
        "layer3.2": pruner_document("l2", "channels", 0.25, "layer3.2.conv2"),
    }))


def test_describe_leaves_out_zero_sparsity_pruners() -> None:
    assert mixed_schedule().describe() == ["layer1.0: filters l1 0.5 (layer1.0.conv1)",
                                           "layer3.2: channels l2 0.25 (layer3.2.conv2)"]


def test_repr_is_short_and_names_the_active_pruners() -> None:
    schedule = mixed_schedule()
    text = repr(schedule)
    assert text.startswith(f"Schedule({schedule.name!r}, ")
    assert "layer1.0: filters l1 0.5" in text and "layer3.2: channels l2 0.25" in text
    assert "layer1.1" not in text
    assert "\n" not in text and len(text) < 150
    assert "PrunerSpec" not in text and GENERATED_PREFIX not in text


def test_repr_of_a_schedule_without_pruning() -> None:
    schedule = to_schedule(document({"idle": pruner_document("l1", "filters", 0.0, "layer1.0.conv1")}))
    assert repr(schedule) == f"Schedule({schedule.name!r}, no pruning)"
    assert schedule.describe() == []


@PROPERTY
@given(pruning_schedules("resnet20", kinds=("filters",), group_by="layer"))
def test_repr_names_exactly_the_active_pruners(schedule: Schedule) -> None:
    described = [line.split(": ", 1)[0] for line in schedule.describe()]
    assert described == [p.name for p in schedule.pruners if p.desired_sparsity > 0]
    assert repr(schedule) == f"Schedule({schedule.name!r}, {'; '.join(schedule.describe())})"


def test_search_settings_leave_out_the_explain_phase() -> None:
    # Explaining a failure reruns it dozens of times, and every run is a full case of seconds or minutes.
    assert Phase.explain not in SEARCH_SETTINGS.phases and Phase.shrink in SEARCH_SETTINGS.phases
    assert SEARCH_SETTINGS.deadline is None


def test_a_single_group_schedule_prunes_that_group_alone() -> None:
    from pytest_prunebench.strategies import single_group_schedule

    schedule = single_group_schedule("resnet20", "layer2", 0.4, "channels", "l2", prunebench={"epochs": 0})
    (pruner,) = schedule.pruners
    assert (pruner.name, pruner.kind, pruner.ranker, pruner.desired_sparsity) == ("layer2", "channels", "l2", 0.4)
    assert pruner.layers == ("layer2.0.conv2", "layer2.1.conv2", "layer2.2.conv2")
    assert schedule.epochs == 0 and schedule.generated
    assert schedule.name == single_group_schedule("resnet20", "layer2", 0.4, "channels", "l2",
                                                  prunebench={"epochs": 0}).name
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="sparsity must be in"):
            single_group_schedule("resnet20", "layer2", bad)
    with pytest.raises(ValueError, match="no conv, residual block or stage named 'layer4'"):
        single_group_schedule("resnet20", "layer4", 0.5)
