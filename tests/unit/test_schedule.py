"""Distiller-format schedule parsing: the real corpus, parsed details, hashing, windows and one-line refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_prunebench.errors import ScheduleError
from pytest_prunebench.schedule import Schedule, Window, agp_target, load_schedule, schedule_yaml

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "distiller-schedules"

ACCEPTED = ("resnet56_cifar_filter_rank.yaml", "resnet56_cifar_filter_rank_v2.yaml", "resnet56_cifar_channel_rank.yaml",
            "resnet20_filters.schedule_agp.yaml", "resnet20_filters.schedule_agp_2.yaml",
            "resnet20_filters.schedule_agp_3.yaml", "resnet20_filters.schedule_agp_4.yaml",
            "resnet56_cifar_activation_apoz.yaml", "resnet56_cifar_activation_apoz_v2.yaml",
            "resnet20_filters.bn_fold.schedule_agp.yaml", "resnet20_slimming.yaml", "resnet20.network_surgery.yaml")
# Accepted with warnings, and no pruner: Distiller's network-slimming file defines an L1Regularizer on the BN
# weights, but no policy applies it (Distiller never used it either); what remains is dense training.
ACCEPTED_WITHOUT_PRUNERS = {"resnet20_slimming.yaml": "regularizers.Channels_groups_regularizer: no policy uses it"}
# The two *_baseline_training.yaml files in the corpus are Git symlinks copied as plain files: their whole content
# is the relative path of the file they point to (e.g. "../../ssl/resnet20_cifar_baseline_training.yaml"), a YAML
# string, not a schedule. They are refused with a message that says so; the real lr_scheduler-only content they
# point to is covered by test_lr_scheduler_only_schedule_parses below.
NOT_A_MAPPING = ["the file holds only the text '../../", "symlink copied as a plain file"]
# file -> None when load_schedule accepts it, else substrings its one-line ScheduleError must contain.
CORPUS_OUTCOME: dict[str, list[str] | None] = {
    "resnet56_cifar_filter_rank.yaml": None,
    "resnet56_cifar_filter_rank_v2.yaml": None,
    "resnet56_cifar_channel_rank.yaml": None,
    "resnet20_cifar_baseline_training.yaml": NOT_A_MAPPING,
    "resnet56_cifar_baseline_training.yaml": NOT_A_MAPPING,
    "resnet20.network_surgery.yaml": None,
    "resnet20_cifar_randomlevel_training.yaml": [
        "policies[1].pruner.args.discard_masks_at_minibatch_end", "per-minibatch masking", "nothing to thin"],
    "resnet20_filters.bn_fold.schedule_agp.yaml": None,
    "resnet20_filters.schedule_agp.yaml": None,
    "resnet20_filters.schedule_agp_2.yaml": None,
    "resnet20_filters.schedule_agp_3.yaml": None,
    "resnet20_filters.schedule_agp_4.yaml": None,
    "resnet20_slimming.yaml": None,
    "resnet56_cifar_activation_apoz.yaml": None,
    "resnet56_cifar_activation_apoz_v2.yaml": None,
}


def corpus_file(name: str) -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"Distiller schedule corpus not found at {CORPUS}")
    return CORPUS / name


def write(tmp_path: Path, text: str, name: str = "schedule.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ScheduleError) as info:
        load_schedule(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    return message


# --- the real Distiller corpus ----------------------------------------------------------------------------------


def test_corpus_table_lists_every_file() -> None:
    corpus_file("README.md")
    assert sorted(p.name for p in CORPUS.glob("*.yaml")) == sorted(CORPUS_OUTCOME)


@pytest.mark.parametrize("name", sorted(CORPUS_OUTCOME))
def test_corpus_file_is_parsed_or_refused_by_name(name: str) -> None:
    path = corpus_file(name)
    expected = CORPUS_OUTCOME[name]
    if expected is None:
        schedule = load_schedule(path)
        assert isinstance(schedule, Schedule)
        assert schedule.path == str(path)
        assert schedule.name == path.stem
        if name in ACCEPTED_WITHOUT_PRUNERS:
            assert not schedule.pruners and not schedule.regularizers
            assert any(ACCEPTED_WITHOUT_PRUNERS[name] in warning for warning in schedule.warnings)
            return
        assert schedule.pruners and not schedule.warnings
        return
    message = refusal(path)
    for part in expected:
        assert part in message, message


def test_exactly_the_supported_corpus_files_are_accepted() -> None:
    corpus_file("README.md")
    accepted = []
    for path in sorted(CORPUS.glob("*.yaml")):
        try:
            load_schedule(path)
        except ScheduleError:
            continue
        accepted.append(path.name)
    assert sorted(accepted) == sorted(ACCEPTED)


def test_filter_rank_details() -> None:
    schedule = load_schedule(corpus_file("resnet56_cifar_filter_rank.yaml"))
    assert [p.name for p in schedule.pruners] == ["filter_pruner_60", "filter_pruner_50", "filter_pruner_10",
                                                  "filter_pruner_30"]
    assert {p.name: p.desired_sparsity for p in schedule.pruners} == {
        "filter_pruner_60": 0.6, "filter_pruner_50": 0.5, "filter_pruner_10": 0.1, "filter_pruner_30": 0.3}
    for pruner in schedule.pruners:
        assert pruner.kind == "filters"
        assert pruner.ranker == "l1"
        assert pruner.class_name == "L1RankedStructureParameterPruner"
        assert not pruner.leader
        for layer in pruner.layers:
            assert not layer.startswith("module.") and not layer.endswith(".weight"), layer
    assert schedule.pruner("filter_pruner_60").layers == tuple(f"layer1.{i}.conv1" for i in range(9))
    assert schedule.pruner("filter_pruner_50").layers == tuple(f"layer2.{i}.conv1" for i in (1, 2, 3, 4, 6, 7))
    assert schedule.pruner("filter_pruner_10").layers == ("layer3.1.conv1",)
    assert schedule.pruner("filter_pruner_30").layers == tuple(f"layer3.{i}.conv1" for i in (2, 3, 5, 6, 7, 8))

    assert sorted(p.pruner for p in schedule.pruner_policies) == sorted(p.name for p in schedule.pruners)
    for policy in schedule.pruner_policies:
        assert policy.window.epochs == (0,)
        assert policy.window.fires(0) and not policy.window.fires(1)

    (thinner,) = schedule.thinning
    assert (thinner.name, thinner.class_name, thinner.func) == ("net_thinner", "FilterRemover", "remove_filters")
    assert (thinner.arch, thinner.dataset) == ("resnet56_cifar", "cifar10")
    assert thinner.window.fires(0) and not thinner.window.fires(1)

    (lr,) = schedule.lr_schedulers
    assert (lr.name, lr.class_name, lr.kwargs) == ("exp_finetuning_lr", "ExponentialLR", (("gamma", 0.95),))
    assert lr.window == Window(starting_epoch=10, ending_epoch=300, frequency=1)
    assert lr.window.fires(10) and lr.window.fires(299)
    assert not lr.window.fires(9) and not lr.window.fires(300)
    assert lr.window.last_epoch() == 299

    assert schedule.model is None
    assert schedule.model_hint() == "resnet56_cifar"
    assert schedule.pruning_horizon() == 1
    assert schedule.warnings == ()


def test_channel_rank_leader_and_kind() -> None:
    schedule = load_schedule(corpus_file("resnet56_cifar_channel_rank.yaml"))
    assert all(p.kind == "channels" for p in schedule.pruners)
    leader = schedule.pruner("filter_pruner_70")
    assert leader.leader
    assert leader.desired_sparsity == 0.7
    assert leader.layers[0] == "layer1.1.conv1"  # the first listed tensor leads
    assert leader.layers[-2:] == ("layer2.0.conv1", "layer2.0.downsample.0")
    assert len(leader.layers) == 11
    assert [p.name for p in schedule.pruners if p.leader] == ["filter_pruner_70"]
    (thinner,) = schedule.thinning
    assert (thinner.class_name, thinner.func, thinner.arch) == ("StructureRemover", "remove_channels",
                                                                "resnet56_cifar")


def test_agp_corpus_file_details() -> None:
    schedule = load_schedule(corpus_file("resnet20_filters.schedule_agp_4.yaml"))
    low = schedule.pruner("low_pruner_2")
    assert (low.class_name, low.kind, low.ranker, low.leader) == ("L1RankedStructureParameterPruner_AGP", "filters",
                                                                  "l1", True)
    assert (low.initial_sparsity, low.desired_sparsity) == (0.1, 0.5)
    fine = schedule.pruner("fine_pruner")
    assert (fine.kind, fine.ranker, fine.initial_sparsity, fine.desired_sparsity) == ("elements", "magnitude", 0.05,
                                                                                      0.7)
    fc = schedule.pruner("fc_pruner")  # Distiller's Rows of a 2D weight: the fc's input features
    assert (fc.kind, fc.layers) == ("rows", ("fc",))
    assert schedule.pruning_horizon() == 49  # fine_pruner's last firing is epoch 48
    assert [p.window.agp_span() for p in schedule.pruner_policies] == [28, 28, 18, 18]


def test_agp_target_follows_distillers_cubic_formula() -> None:
    window = Window(starting_epoch=0, ending_epoch=30, frequency=2)  # fires 0, 2, ..., 28; span 28
    assert agp_target(0.1, 0.5, window, 0) == pytest.approx(0.1)
    assert agp_target(0.1, 0.5, window, 14) == pytest.approx(0.5 - 0.4 * 0.5 ** 3)  # halfway: 0.45
    assert agp_target(0.1, 0.5, window, 28) == pytest.approx(0.5)
    assert agp_target(0.1, 0.5, window, 40) == pytest.approx(0.5)  # held after the window
    targets = [agp_target(0.1, 0.5, window, e) for e in range(0, 30, 2)]
    assert targets == sorted(targets) and len(set(targets)) == len(targets)
    apoz = Window(starting_epoch=1, ending_epoch=20, frequency=2)  # the activation files: fires 1..19, span 18
    assert apoz.last_epoch() == 19 and agp_target(0.0, 0.1, apoz, 19) == pytest.approx(0.1)
    assert agp_target(0.0, 0.1, apoz, 10) == pytest.approx(0.1 - 0.1 * 0.5 ** 3)
    with pytest.raises(ValueError, match="AGP needs"):
        agp_target(0.1, 0.5, Window(epochs=(0, 2)), 0)


def test_agp_and_element_pruners_write_back_to_an_equal_schedule(tmp_path: Path) -> None:
    schedule = load_schedule(corpus_file("resnet20_filters.schedule_agp_4.yaml"))
    text = schedule_yaml(schedule)
    again = load_schedule(write(tmp_path, text))
    assert again.semantic_hash() == schedule.semantic_hash()
    level = write(tmp_path, "pruners:\n  p:\n    class: SparsityLevelParameterPruner\n    levels: "
                            "{module.layer1.0.conv1.weight: 0.3, fc.weight: 0.6}\npolicies:\n"
                            "  - pruner: {instance_name: p}\n    epochs: [0]\n", "level.yaml")
    parsed = load_schedule(level).pruner("p")
    assert (parsed.kind, parsed.layers, parsed.levels, parsed.desired_sparsity) == (
        "elements", ("layer1.0.conv1", "fc"), (0.3, 0.6), 0.6)
    assert load_schedule(write(tmp_path, schedule_yaml(load_schedule(level)), "again.yaml")).pruner("p") == parsed


def test_bn_fold_and_regularizer_policies_parse_and_write_back(tmp_path: Path) -> None:
    schedule = load_schedule(corpus_file("resnet20_filters.bn_fold.schedule_agp.yaml"))
    assert [(p.pruner, p.fold_batchnorm) for p in schedule.pruner_policies] == [
        ("low_pruner", True), ("fine_pruner", True), ("fc_pruner", False)]
    assert schedule.folds_batchnorm("fine_pruner") and not schedule.folds_batchnorm("fc_pruner")
    text = """\
regularizers:
  slim: {class: L1Regularizer, reg_regims: {module.layer1.0.bn2.weight: 0.007}}
  lasso: {class: GroupLassoRegularizer, reg_regims: {layer2.0.conv1.weight: [0.002, 3D], conv1.weight: [0.1, Channels]}}
policies:
  - regularizer: {instance_name: slim}
    starting_epoch: 0
    ending_epoch: 3
  - regularizer: {instance_name: lasso}
    epochs: [1]
prunebench: {model: resnet20}
"""
    parsed = load_schedule(write(tmp_path, text))
    slim, lasso = parsed.regularizers
    assert (slim.class_name, slim.window.ending_epoch) == ("L1Regularizer", 3)
    assert slim.terms == (("layer1.0.bn2.weight", 0.007, "elements"),)
    assert lasso.terms == (("layer2.0.conv1.weight", 0.002, "filters"), ("conv1.weight", 0.1, "channels"))
    for original in (schedule, parsed):
        again = load_schedule(write(tmp_path, schedule_yaml(original), "again.yaml"))
        assert again.semantic_hash() == original.semantic_hash()
        assert again.pruner_policies == original.pruner_policies and again.regularizers == original.regularizers


def test_fields_added_for_agp_leave_older_schedules_hashes_alone() -> None:
    # Generated cases are named by the hash and cache entries keyed by the content: a schedule without AGP or
    # levels must hash as it did before those fields existed.
    content = load_schedule(corpus_file("resnet56_cifar_filter_rank.yaml")).content()
    assert all(set(p) == {"name", "class_name", "kind", "ranker", "desired_sparsity", "layers", "leader"}
               for p in content["pruners"])
    agp = load_schedule(corpus_file("resnet20_filters.schedule_agp.yaml")).content()
    assert agp["pruners"][0]["initial_sparsity"] == 0.1


def test_lr_scheduler_only_schedule_parses(tmp_path: Path) -> None:
    # The content Distiller's baseline_training symlinks point to (examples/ssl/resnet20_cifar_baseline_training.yaml).
    path = write(tmp_path, """\
# We used this schedule to train CIFAR10-ResNet20 from scratch
lr_schedulers:
  training_lr:
    class: StepLR
    step_size: 45
    gamma: 0.10

policies:
    - lr_scheduler:
        instance_name: training_lr
      starting_epoch: 45
      ending_epoch: 200
      frequency: 1
""")
    schedule = load_schedule(path)
    assert schedule.pruners == () and schedule.pruner_policies == () and schedule.thinning == ()
    (lr,) = schedule.lr_schedulers
    assert (lr.class_name, lr.kwargs) == ("StepLR", (("gamma", 0.1), ("step_size", 45)))
    assert lr.window.last_epoch() == 199
    assert schedule.pruning_horizon() == 0


# --- semantic hash ----------------------------------------------------------------------------------------------


def test_module_prefix_and_weight_suffix_do_not_change_the_schedule(tmp_path: Path) -> None:
    original = corpus_file("resnet56_cifar_filter_rank.yaml")
    text = original.read_text(encoding="utf-8")
    bare = write(tmp_path, text.replace("module.", ""), "bare.yaml")
    no_suffix = write(tmp_path, text.replace("module.", "").replace(".weight", ""), "no_suffix.yaml")
    assert "module." not in bare.read_text(encoding="utf-8")
    reference = load_schedule(original)
    for path in (bare, no_suffix):
        schedule = load_schedule(path)
        assert schedule.pruners == reference.pruners
        assert schedule.semantic_hash() == reference.semantic_hash()


def test_semantic_hash_ignores_comments_and_file_name(tmp_path: Path) -> None:
    original = corpus_file("resnet56_cifar_filter_rank.yaml")
    lines = original.read_text(encoding="utf-8").splitlines()
    stripped = "# a different comment\n" + "\n".join(line for line in lines if not line.startswith("#")) + "\n"
    copy = write(tmp_path, stripped, "something_else.yaml")
    schedule = load_schedule(copy)
    assert schedule.name == "something_else"
    assert schedule.semantic_hash() == load_schedule(original).semantic_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", schedule.semantic_hash())


def test_semantic_hash_changes_with_sparsity(tmp_path: Path) -> None:
    original = corpus_file("resnet56_cifar_filter_rank.yaml")
    text = original.read_text(encoding="utf-8")
    assert text.count("desired_sparsity: 0.6") == 1
    changed = write(tmp_path, text.replace("desired_sparsity: 0.6", "desired_sparsity: 0.55"), original.name)
    assert load_schedule(changed).pruner("filter_pruner_60").desired_sparsity == 0.55
    assert load_schedule(changed).semantic_hash() != load_schedule(original).semantic_hash()


# --- windows ----------------------------------------------------------------------------------------------------


def test_window_epoch_list() -> None:
    window = Window(epochs=(0, 5, 7))
    assert [e for e in range(10) if window.fires(e)] == [0, 5, 7]
    assert window.first_epoch() == 0
    assert window.last_epoch() == 7


def test_window_start_end_frequency() -> None:
    window = Window(starting_epoch=2, ending_epoch=12, frequency=3)
    assert [e for e in range(20) if window.fires(e)] == [2, 5, 8, 11]
    assert window.first_epoch() == 2
    assert window.last_epoch() == 11
    shorter = Window(starting_epoch=2, ending_epoch=11, frequency=3)  # 11 is exclusive
    assert [e for e in range(20) if shorter.fires(e)] == [2, 5, 8]
    assert shorter.last_epoch() == 8


def test_window_open_ended() -> None:
    window = Window(starting_epoch=4, frequency=2)
    assert window.last_epoch() is None
    assert not window.fires(3) and window.fires(4) and not window.fires(5) and window.fires(1000)


def test_window_from_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, """\
pruners:
  p1: {class: L2RankedStructureParameterPruner, group_type: Channels, desired_sparsity: 0.25,
       weights: [layer1.0.conv2.weight]}
policies:
  - pruner: {instance_name: p1}
    starting_epoch: 2
    ending_epoch: 12
    frequency: 3
""")
    schedule = load_schedule(path)
    (policy,) = schedule.pruner_policies
    assert policy.window == Window(starting_epoch=2, ending_epoch=12, frequency=3)
    assert schedule.pruning_horizon() == 12
    pruner = schedule.pruner("p1")
    assert (pruner.kind, pruner.ranker, pruner.layers) == ("channels", "l2", ("layer1.0.conv2",))


# --- bad inputs: one line naming the file and the key ----------------------------------------------------------


def pruner_doc(
    cls: str = "L1RankedStructureParameterPruner",
    group: str = "Filters",
    sparsity: str = "0.5",
    instance: str = "p1",
    window: str = "epochs: [0]",
    tail: str = "",
) -> str:
    return f"""\
pruners:
  p1:
    class: {cls}
    group_type: {group}
    desired_sparsity: {sparsity}
    weights: [module.layer1.0.conv1.weight]
policies:
  - pruner:
      instance_name: {instance}
    {window}
{tail}"""


def agp_doc(cls: str = "L1RankedStructureParameterPruner_AGP", initial: str = "0.1", final: str = "0.5",
            window: str = "starting_epoch: 0\n    ending_epoch: 10\n    frequency: 2") -> str:
    return f"""\
pruners:
  p1:
    class: {cls}
    initial_sparsity: {initial}
    final_sparsity: {final}
    group_type: Filters
    weights: [module.layer1.0.conv1.weight]
policies:
  - pruner:
      instance_name: p1
    {window}
"""


def splicing_doc(sensitivities: str = "{module.layer1.0.conv1.weight: 0.05}", low: str = "0.9",
                 multiplier: str = "0.015", args: str = "{}",
                 window: str = "starting_epoch: 0\n    ending_epoch: 10\n    frequency: 1") -> str:
    return f"""\
pruners:
  p1:
    class: SplicingPruner
    low_thresh_mult: {low}
    hi_thresh_mult: 1.1
    sensitivity_multiplier: {multiplier}
    sensitivities: {sensitivities}
policies:
  - pruner:
      instance_name: p1
      args: {args}
    {window}
"""


# A regularizer and its policy, after pruner_doc's policy (format: criteria, args).
REGULARIZED = """\
  - regularizer:
      instance_name: r
      args: {args}
    starting_epoch: 0
    ending_epoch: 4
regularizers:
  r: {{class: L1Regularizer, {criteria}reg_regims: {{conv1.weight: 0.1}}}}
"""

LR_TAIL = """\
  - lr_scheduler:
      instance_name: lr
    starting_epoch: 0
lr_schedulers:
  lr:
"""

BAD_SCHEDULES: list[tuple[str, str, list[str]]] = [
    ("yaml-syntax", "pruners:\n  p1:\n    weights: [module.conv1.weight\npolicies: []\n",
     ["line 4, column 9", "YAML syntax error", "expected ',' or ']'"]),
    ("yaml-indentation", "pruners:\n  p1:\n    class: X\n   bad: 1\n", ["line 4", "YAML syntax error"]),
    ("unknown-pruner-class", pruner_doc(cls="FancyPruner"),
     ["pruners.p1.class", "unknown pruner class 'FancyPruner'", "L1RankedStructureParameterPruner"]),
    ("missing-pruner-class", pruner_doc(cls="null"), ["pruners.p1.class", "unknown pruner class None"]),
    ("unsupported-bernoulli", pruner_doc(cls="BernoulliFilterPruner_AGP"),
     ["pruners.p1.class", "BernoulliFilterPruner_AGP is not supported yet"]),
    ("splicing-group-type", pruner_doc(cls="SplicingPruner"),
     ["pruners.p1.desired_sparsity", "unknown key for SplicingPruner", "sensitivities"]),
    ("splicing-star", splicing_doc(sensitivities="{'*': 0.1}"), ["pruners.p1.sensitivities.*", "name the weights"]),
    ("splicing-band-reversed", splicing_doc(low="1.2"),
     ["pruners.p1.low_thresh_mult", "1.2 is above hi_thresh_mult 1.1"]),
    ("splicing-negative-multiplier", splicing_doc(multiplier="-0.1"),
     ["pruners.p1.sensitivity_multiplier", "must be >= 0", "ignore it"]),
    ("splicing-missing-mult", splicing_doc().replace("    hi_thresh_mult: 1.1\n", ""),
     ["pruners.p1.hi_thresh_mult", "must be a finite number, got None"]),
    ("splicing-fold", splicing_doc(args="{fold_batchnorm: true}"),
     ["policies[0].pruner.args.fold_batchnorm", "SplicingPruner with fold_batchnorm is not supported"]),
    ("keep-mask-epoch-list", splicing_doc(args="{keep_mask: true}", window="epochs: [0, 1]"),
     ["policies[0].pruner.args.keep_mask", "acts at epoch ending_epoch - 1", "use starting_epoch / ending_epoch"]),
    ("keep-mask-open-ended", splicing_doc(args="{keep_mask: true}", window="starting_epoch: 0"),
     ["policies[0].pruner.args.keep_mask", "give the policy an ending_epoch"]),
    ("keep-mask-never-last", splicing_doc(args="{keep_mask: true}",
                                          window="starting_epoch: 0\n    ending_epoch: 10\n    frequency: 2"),
     ["policies[0].pruner.args.keep_mask", "9 here, an epoch this policy does not run in (frequency 2)"]),
    ("mask-gradients-alone", splicing_doc(args="{mask_gradients: true}"),
     ["policies[0].pruner.args.mask_gradients", "needs mask_on_forward_only: true", "mutually exclusive"]),
    ("minibatch-frequency-text", splicing_doc(args="{mini_batch_pruning_frequency: often}"),
     ["policies[0].pruner.args.mini_batch_pruning_frequency", "whole number >= 0", "got 'often'"]),
    ("forward-only-text", splicing_doc(args="{mask_on_forward_only: 1}"),
     ["policies[0].pruner.args.mask_on_forward_only", "must be true or false, got 1"]),
    ("masker-flags-two-policies", splicing_doc(args="{mask_on_forward_only: true}") + (
        "  - pruner: {instance_name: p1}\n    epochs: [5]\n"),
     ["pruners.p1", "sets mask_on_forward_only", "masker of every parameter", "one pruner policy"]),
    ("splicing-with-thinning", splicing_doc().replace("policies:\n", (
        "  f1: {class: L1RankedStructureParameterPruner, group_type: Filters, desired_sparsity: 0.5, weights: "
        "[layer2.0.conv1]}\npolicies:\n  - pruner: {instance_name: f1}\n    epochs: [0]\n")),
     ["pruners.p1.class", "thinning of f1's filters would reshape"]),
    ("sparsity-one", pruner_doc(sparsity="1.0"), ["pruners.p1.desired_sparsity", "1.0 is outside [0, 1)"]),
    ("sparsity-negative", pruner_doc(sparsity="-0.1"), ["pruners.p1.desired_sparsity", "-0.1 is outside [0, 1)"]),
    ("sparsity-nan", pruner_doc(sparsity=".nan"), ["pruners.p1.desired_sparsity", "nan is outside [0, 1)"]),
    ("sparsity-text", pruner_doc(sparsity="half"), ["pruners.p1.desired_sparsity", "got 'half'"]),
    ("sparsity-bool", pruner_doc(sparsity="true"), ["pruners.p1.desired_sparsity", "got True"]),
    ("sparsity-missing", pruner_doc(sparsity="null"), ["pruners.p1.desired_sparsity", "got None"]),
    ("undefined-instance", pruner_doc(instance="p2"),
     ["policies[0].pruner.instance_name", "'p2' is not defined under `pruners:`"]),
    ("ending-equals-starting", pruner_doc(window="starting_epoch: 5\n    ending_epoch: 5"),
     ["policies[0].ending_epoch", "5 must be greater than starting_epoch 5"]),
    ("ending-before-starting", pruner_doc(window="starting_epoch: 5\n    ending_epoch: 3"),
     ["policies[0].ending_epoch", "3 must be greater than starting_epoch 5"]),
    ("negative-epoch-list", pruner_doc(window="epochs: [0, -1]"), ["policies[0].epochs", "got -1"]),
    ("negative-starting-epoch", pruner_doc(window="starting_epoch: -2"), ["policies[0].starting_epoch", "got -2"]),
    ("zero-frequency", pruner_doc(window="starting_epoch: 0\n    frequency: 0"),
     ["policies[0].frequency", "got 0"]),
    ("lr-lambda", pruner_doc(tail=LR_TAIL + "    class: LambdaLR\n    lr_lambda: 0.5\n"),
     ["lr_schedulers.lr.class", "'LambdaLR' is not allowed", "ExponentialLR"]),
    ("lr-made-up", pruner_doc(tail=LR_TAIL + "    class: WarpSpeedLR\n"),
     ["lr_schedulers.lr.class", "'WarpSpeedLR' is not allowed"]),
    ("lr-foreign-argument", pruner_doc(tail=LR_TAIL + "    class: ExponentialLR\n    step_size: 3\n"),
     ["lr_schedulers.lr.step_size", "ExponentialLR takes no argument 'step_size'", "gamma"]),
    ("lr-non-numeric-argument", pruner_doc(tail=LR_TAIL + "    class: ExponentialLR\n    gamma: fast\n"),
     ["lr_schedulers.lr.gamma", "got 'fast'"]),
    ("lr-undefined-instance", pruner_doc(tail="  - lr_scheduler: {instance_name: nope}\n    epochs: [1]\n"),
     ["policies[1].lr_scheduler.instance_name", "'nope' is not defined under `lr_schedulers:`"]),
    ("empty-file", "", ["the file is empty"]),
    ("comments-only", "# nothing here\n", ["the file is empty"]),
    ("yaml-list", "- pruners\n- policies\n", ["a schedule is a YAML mapping, got list"]),
    ("unknown-top-level-key", pruner_doc(tail="pruner_settings: {}\n"),
     ["pruner_settings", "unknown top-level key"]),
    ("group-type-blocks", pruner_doc(group="Blocks"), ["pruners.p1.group_type", "'Blocks' is not supported yet"]),
    ("group-type-made-up", pruner_doc(group="Bananas"),
     ["pruners.p1.group_type", "must be Filters, Channels or Rows, got 'Bananas'"]),
    ("agp-initial-above-final", agp_doc(initial="0.6"),
     ["pruners.p1.initial_sparsity", "0.6 is above final_sparsity 0.5"]),
    ("agp-final-missing", agp_doc(final="null"), ["pruners.p1.final_sparsity", "got None"]),
    ("agp-final-one", agp_doc(final="1"), ["pruners.p1.final_sparsity", "outside [0, 1)"]),
    ("agp-desired-sparsity", agp_doc().replace("final_sparsity", "desired_sparsity"),
     ["pruners.p1.desired_sparsity", "unknown key for L1RankedStructureParameterPruner_AGP"]),
    ("agp-epoch-list", agp_doc(window="epochs: [0, 2]"),
     ["policies[0]", "needs starting_epoch, ending_epoch (exclusive)", "not epochs: [0, 2]"]),
    ("agp-open-ended", agp_doc(window="starting_epoch: 0"), ["policies[0]", "not starting_epoch: 0"]),
    ("agp-one-firing", agp_doc(window="starting_epoch: 4\n    ending_epoch: 6\n    frequency: 2"),
     ["policies[0]", "fire it at least twice"]),
    ("agp-elements-group-type", agp_doc(cls="AutomatedGradualPruner"),
     ["pruners.p1.group_type", "unknown key for AutomatedGradualPruner"]),
    ("level-star", pruner_doc().replace("    group_type: Filters\n    desired_sparsity: 0.5\n    weights: "
                                        "[module.layer1.0.conv1.weight]", "    levels: {'*': 0.5}").replace(
                                        "L1RankedStructureParameterPruner", "SparsityLevelParameterPruner"),
     ["pruners.p1.levels.*", "name the weights"]),
    ("level-out-of-range", pruner_doc().replace("    group_type: Filters\n    desired_sparsity: 0.5\n    weights: "
                                                "[module.layer1.0.conv1.weight]", "    levels: {conv1.weight: 1.5}"
                                                ).replace("L1RankedStructureParameterPruner",
                                                          "SparsityLevelParameterPruner"),
     ["pruners.p1.levels.conv1.weight", "1.5 is outside [0, 1)"]),
    ("activation-channels", pruner_doc(cls="ActivationMeanRankedFilterPruner", group="Channels"),
     ["pruners.p1.group_type", "ActivationMeanRankedFilterPruner ranks filters only", "use group_type: Filters"]),
    ("random-level-range-reversed", pruner_doc(cls="RandomLevelStructureParameterPruner").replace(
        "desired_sparsity: 0.5", "sparsity_range: [0.3, 0.1]"),
     ["pruners.p1.sparsity_range", "low 0.3 is above high 0.1"]),
    ("random-level-range-scalar", pruner_doc(cls="RandomLevelStructureParameterPruner").replace(
        "desired_sparsity: 0.5", "sparsity_range: 0.2"), ["pruners.p1.sparsity_range", "must be [low, high]"]),
    ("minibatch-masking-filters", pruner_doc(instance="p1\n      args: {mini_batch_pruning_frequency: 16}"),
     ["policies[0].pruner.args.mini_batch_pruning_frequency", "per-minibatch masking (mini_batch_pruning_frequency) "
      "applies to fine-grained pruners", "masks filters, which thinning removes"]),
    ("policy-args", pruner_doc(instance="p1\n      args: {skip_first_minibatch: true}"),
     ["policies[0].pruner.args.skip_first_minibatch", "policy arguments (skip_first_minibatch) are not supported yet",
      "pruner policies take fold_batchnorm"]),
    ("fold-batchnorm-text", pruner_doc(instance="p1\n      args: {fold_batchnorm: yes please}"),
     ["policies[0].pruner.args.fold_batchnorm", "must be true or false, got 'yes please'"]),
    ("regularizer-unknown-class", pruner_doc(tail="regularizers:\n  r: {class: DropFilterRegularizer}\n"),
     ["regularizers.r.class", "'DropFilterRegularizer' is not supported", "GroupLassoRegularizer, L1Regularizer"]),
    ("regularizer-threshold-criteria", pruner_doc(tail="regularizers:\n  r: {class: L1Regularizer, threshold_criteria: "
                                                       "L2, reg_regims: {conv1.weight: 0.1}}\n"),
     ["regularizers.r.threshold_criteria", "must be Mean_Abs or Max", "got 'L2'", "where both agree"]),
    ("regularizer-keep-without-threshold", pruner_doc(tail=REGULARIZED.format(criteria="", args="{keep_mask: true}")),
     ["policies[1].regularizer.args.keep_mask", "this regularizer has none"]),
    ("regularizer-other-args", pruner_doc(tail=REGULARIZED.format(criteria="", args="{fold_batchnorm: true}")),
     ["policies[1].regularizer.args.fold_batchnorm", "regularizer policies take keep_mask only"]),
    ("regularizer-threshold-on-pruned", pruner_doc(tail=REGULARIZED.format(
        criteria="threshold_criteria: Max, ", args="{}").replace("conv1.weight", "layer1.0.conv1.weight")),
     ["regularizers.r.threshold_criteria", "'layer1.0.conv1.weight' is also pruned by p1",
      "replaces the pruner's mask"]),
    ("regularizer-keep-bias", pruner_doc(tail=REGULARIZED.format(
        criteria="threshold_criteria: Max, ", args="{keep_mask: true}").replace("conv1.weight", "fc.bias")),
     ["policies[1].regularizer.args.keep_mask", "not on 'fc.bias'"]),
    ("regularizer-negative", pruner_doc(tail="regularizers:\n  r: {class: L1Regularizer, reg_regims: "
                                             "{module.conv1.weight: -0.1}}\n"),
     ["regularizers.r.reg_regims.module.conv1.weight", "greater than 0"]),
    ("lasso-group", pruner_doc(tail="regularizers:\n  r: {class: GroupLassoRegularizer, reg_regims: "
                                    "{conv1.weight: [0.1, Rows]}}\n"),
     ["regularizers.r.reg_regims.conv1.weight", "[strength, group] with group one of 3D, Channels, Filters"]),
    ("regularizer-undefined", pruner_doc(tail="  - regularizer: {instance_name: nope}\n    epochs: [1]\n"),
     ["policies[1].regularizer.instance_name", "'nope' is not defined under `regularizers:`"]),
    ("quantizer-section", pruner_doc(tail="quantizers:\n  q: {class: QuantAwareTrainRangeLinearQuantizer}\n"),
     ["quantizers", "QuantAwareTrainRangeLinearQuantizer: quantization is not supported"]),
    ("unknown-pruner-key", pruner_doc(tail="").replace("    weights:", "    speed: 3\n    weights:"),
     ["pruners.p1.speed", "unknown key for L1RankedStructureParameterPruner"]),
    ("bias-weights", pruner_doc().replace("conv1.weight]", "conv1.bias]"),
     ["pruners.p1.weights", "not biases"]),
    ("prunebench-user-factory", pruner_doc(tail="prunebench:\n  model: pkg.mod:factory\n"),
     ["prunebench.model", "--prunebench-model package.module:factory"]),
    ("prunebench-unknown-key", pruner_doc(tail="prunebench:\n  epoch: 3\n"),
     ["prunebench.epoch", "unknown key"]),
    ("prunebench-negative-epochs", pruner_doc(tail="prunebench:\n  epochs: -1\n"),
     ["prunebench.epochs", "got -1"]),
    ("prunebench-zero-lr", pruner_doc(tail="prunebench:\n  lr: 0\n"), ["prunebench.lr", "greater than 0"]),
    ("regularizer-without-regims", pruner_doc(tail="regularizers:\n  r: {class: L1Regularizer}\n"),
     ["regularizers.r.reg_regims", "must be a mapping of parameter names to strengths"]),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in BAD_SCHEDULES],
                         ids=[case[0] for case in BAD_SCHEDULES])
def test_bad_schedule_is_refused_in_one_line(tmp_path: Path, text: str, expected: list[str]) -> None:
    message = refusal(write(tmp_path, text))
    for part in expected:
        assert part in message, message


def test_bad_schedule_cases_start_from_a_valid_document(tmp_path: Path) -> None:
    # The table's defaults parse, so each case fails for the reason it names.
    assert load_schedule(write(tmp_path, pruner_doc())).pruner("p1").layers == ("layer1.0.conv1",)
    assert load_schedule(write(tmp_path, agp_doc(), "agp.yaml")).pruner("p1").initial_sparsity == 0.1
    lr = pruner_doc(tail=LR_TAIL + "    class: ExponentialLR\n    gamma: 0.9\n")
    assert load_schedule(write(tmp_path, lr, "lr.yaml")).lr_schedulers[0].kwargs == (("gamma", 0.9),)


def test_unsafe_yaml_tag_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write(tmp_path, f'pruners: !!python/object/apply:os.system ["touch {marker}"]\npolicies: []\n')
    message = refusal(path)
    assert "line 1" in message
    assert "unsafe or unknown YAML tag" in message
    assert "python/object/apply:os.system" in message
    assert not marker.exists()


def test_missing_file_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path / "nope.yaml")
    assert "no such file" in message


def test_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert "no such file" in refusal(folder)


def test_unused_pruner_is_a_warning_not_a_pruner(tmp_path: Path) -> None:
    text = pruner_doc().replace("pruners:\n", """\
pruners:
  idle:
    class: L2RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.3
    weights: [module.layer2.0.conv1.weight]
""", 1)
    path = write(tmp_path, text)
    schedule = load_schedule(path)
    assert [p.name for p in schedule.pruners] == ["p1"]
    assert [p.pruner for p in schedule.pruner_policies] == ["p1"]
    (warning,) = schedule.warnings
    assert str(path) in warning and "pruners.idle" in warning and "never takes effect" in warning


def test_unused_lr_scheduler_and_extension_are_warnings(tmp_path: Path) -> None:
    text = pruner_doc() + """\
lr_schedulers:
  idle_lr:
    class: StepLR
    step_size: 2
extensions:
  idle_thinner:
    class: FilterRemover
    thinning_func_str: remove_filters
"""
    schedule = load_schedule(write(tmp_path, text))
    assert schedule.lr_schedulers == () and schedule.thinning == ()
    assert [w.split(": ")[1] for w in schedule.warnings] == ["extensions.idle_thinner", "lr_schedulers.idle_lr"]
