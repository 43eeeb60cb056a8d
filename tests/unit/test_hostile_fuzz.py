"""A hypothesis fuzz of the schedule and sweep readers: any YAML document or text is a Schedule (a Sweep) or our
own one-line error naming the file, never anything else raised.

This file holds the unit layer's tests (in-process, no pytester, no subprocess); the other hostile-input tests are
in tests/unit/test_hostile_*.py and tests/plugin/test_hostile_*.py.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_prunebench.errors import ScheduleError, SweepError
from pytest_prunebench.schedule import LR_SCHEDULERS, SUPPORTED_PRUNERS, Schedule, load_schedule
from pytest_prunebench.sweep import Sweep, load_sweep

# --- fuzz: any YAML document or text is a Schedule or a ScheduleError -----------------------------------------

KEYS = ("version", "pruners", "policies", "extensions", "lr_schedulers", "regularizers", "quantizers", "prunebench",
        "class", "desired_sparsity", "weights", "group_type", "group_dependency", "epochs", "starting_epoch",
        "ending_epoch", "frequency", "instance_name", "pruner", "extension", "lr_scheduler", "thinning_func_str",
        "arch", "dataset", "model", "lr", "round_to", "min_top1", "max_top1_drop", "max_latency_ms",
        "min_latency_speedup", "step_size", "gamma", "milestones", "T_max", "factor", "total_iters", "power",
        "lr_lambda", "head", "tail", "decay", "thin", "args", "sensitivities", "low_thresh_mult", "hi_thresh_mult",
        "sensitivity_multiplier", "mini_batch_pruning_frequency", "mask_on_forward_only", "use_double_copies",
        "mask_gradients", "keep_mask", "threshold_criteria", "reg_regims")
WORDS = (*SUPPORTED_PRUNERS, *LR_SCHEDULERS, "AutomatedGradualPruner", "SplicingPruner", "LambdaLR", "Filters",
         "Channels", "Rows", "Leader", "FilterRemover", "ChannelRemover", "remove_filters", "remove_channels",
         "module.layer1.0.conv1.weight", "layer3.1.conv2.weight", "module.conv1.bias", "resnet20", "resnet56_cifar",
         "os:system", "os.system", "digits", "synthetic", "cifar10:/nonexistent", "head", "tail", "x.yaml",
         "Mean_Abs", "Max", "L1Regularizer", "GroupLassoRegularizer")
NAMES = st.sampled_from(("head", "tail", "decay", "thin"))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**400), 10**400), st.floats(), st.text(max_size=12),
    st.binary(max_size=6), st.dates(), st.datetimes(), st.sampled_from(WORDS), st.sampled_from(KEYS),
)
MAP_KEYS = st.one_of(st.sampled_from(KEYS), st.sampled_from(WORDS), st.text(max_size=8), st.integers(),
                     st.booleans(), st.none(), st.floats(allow_nan=False), st.dates())
NODES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(MAP_KEYS, inner, max_size=4),
                     max_leaves=20)
NUMBERS = st.one_of(st.integers(-2, 12), st.floats(-2, 2), st.floats(), st.integers(), SCALARS)
EPOCHS = st.one_of(st.integers(-1, 6), NUMBERS)


def _either(shaped: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the shape the schedule vocabulary expects, sometimes any YAML value."""
    return st.one_of(shaped, shaped, shaped, NODES)


def _lr_arguments(class_name: str) -> tuple[str, ...]:
    import torch.optim.lr_scheduler

    parameters = inspect.signature(getattr(torch.optim.lr_scheduler, class_name)).parameters
    return tuple(sorted(set(parameters) - {"self", "optimizer", "last_epoch", "verbose"}))


PRUNER_FIELDS = {
    "class": _either(st.sampled_from((*SUPPORTED_PRUNERS, "AutomatedGradualPruner", "os.system"))),
    "group_type": _either(st.sampled_from(("Filters", "Channels", "Rows"))),
    "desired_sparsity": _either(st.floats(-0.5, 1.5) | NUMBERS),
    "weights": _either(st.lists(st.sampled_from(("module.layer1.0.conv1.weight", "layer3.1.conv2", "conv1.bias",
                                                 "fc.weight", "")) | SCALARS, min_size=1, max_size=3)),
}
SPLICING_FIELDS = {
    "sensitivities": _either(st.dictionaries(st.sampled_from(("module.layer1.0.conv1.weight", "fc.weight", "*")),
                                             NUMBERS, max_size=2)),
    "low_thresh_mult": NUMBERS, "hi_thresh_mult": NUMBERS, "sensitivity_multiplier": NUMBERS,
}
PRUNER = st.one_of(
    st.fixed_dictionaries(PRUNER_FIELDS, optional={"group_dependency": _either(st.just("Leader")), "extra": SCALARS}),
    st.fixed_dictionaries({}, optional=PRUNER_FIELDS),
    st.fixed_dictionaries({"class": _either(st.just("SplicingPruner"))}, optional=SPLICING_FIELDS),
)
LR_SCHEDULER = st.one_of(  # each allowed class with its own arguments (so torch gets to judge the values)
    *(st.fixed_dictionaries({"class": st.just(name)},
                            optional={arg: NUMBERS | st.lists(NUMBERS, max_size=3) for arg in _lr_arguments(name)})
      for name in sorted(LR_SCHEDULERS)),
    st.fixed_dictionaries({"class": _either(st.sampled_from(("LambdaLR", "os.system", "StepLR")))},
                          optional={"lr_lambda": NODES, "step_size": NUMBERS, "gamma": NUMBERS}),
)
EXTENSION = st.fixed_dictionaries({
    "class": _either(st.sampled_from(("FilterRemover", "ChannelRemover", "Thinner"))),
    "thinning_func_str": _either(st.sampled_from(("remove_filters", "remove_channels", "remove_rows"))),
}, optional={"arch": _either(st.sampled_from(("resnet20_cifar", "vgg16_cifar"))), "dataset": NODES})
WINDOW = st.one_of(
    st.fixed_dictionaries({"epochs": _either(st.lists(EPOCHS, max_size=3))}),
    st.fixed_dictionaries({"starting_epoch": EPOCHS}, optional={"ending_epoch": EPOCHS, "frequency": EPOCHS}),
    st.dictionaries(st.sampled_from(("epochs", "starting_epoch", "ending_epoch", "frequency", "every")), NODES,
                    max_size=3),
)
POLICY_ARGS = st.dictionaries(st.sampled_from(("mini_batch_pruning_frequency", "mask_on_forward_only", "keep_mask",
                                               "use_double_copies", "mask_gradients", "fold_batchnorm",
                                               "discard_masks_at_minibatch_end")), SCALARS, max_size=3)
INSTANCE = _either(st.fixed_dictionaries({"instance_name": _either(NAMES)},
                                         optional={"extra": SCALARS, "args": _either(POLICY_ARGS)}))
SECTION = st.fixed_dictionaries({}, optional={
    "model": _either(st.sampled_from(("resnet20", "resnet99", "os:system"))),
    "dataset": _either(st.sampled_from(("digits", "imagenet", "cifar10:", "cifar10:/x"))),
    "epochs": EPOCHS, "lr": NUMBERS, "round_to": NUMBERS, "min_top1": NUMBERS, "max_latency_ms": NUMBERS,
    "min_latency_speedup": NUMBERS, "max_top1_drop": NUMBERS, "thresholds": NODES,
})
TARGETS = {"pruners": "pruner", "extensions": "extension", "lr_schedulers": "lr_scheduler"}


@st.composite
def schedule_documents(draw: st.DrawFn) -> dict[Any, Any]:
    """Sections of the vocabulary, and policies that mostly name what the sections define."""
    document = draw(st.fixed_dictionaries({}, optional={
        "version": SCALARS,
        "pruners": _either(st.dictionaries(NAMES | MAP_KEYS, PRUNER, max_size=3)),
        "extensions": _either(st.dictionaries(NAMES, EXTENSION, max_size=2)),
        "lr_schedulers": _either(st.dictionaries(NAMES, LR_SCHEDULER, max_size=2)),
        "prunebench": _either(SECTION),
    }))
    policies: list[Any] = []
    for section, target in TARGETS.items():
        defined = document.get(section)
        for name in defined if isinstance(defined, dict) else ():
            if draw(st.sampled_from((True, True, True, True, False))):  # most defined entries get a policy
                policies.append({target: {"instance_name": name}, **draw(WINDOW)})
    if draw(st.sampled_from((False, False, False, True))):  # a policy of any targets, defined or not
        policies.append(draw(st.fixed_dictionaries({}, optional={
            "pruner": INSTANCE, "extension": INSTANCE, "lr_scheduler": INSTANCE, "regularizer": INSTANCE,
        }).flatmap(lambda target: WINDOW.map(lambda window: {**target, **window}))))
    document["policies"] = draw(st.one_of(st.permutations(policies), NODES)) if policies else draw(NODES)
    if draw(st.sampled_from((False,) * 9 + (True,))):  # now and then a section refused, or another format's key
        document[draw(st.sampled_from(("regularizers", "quantizers", "method", "pruner_settings")))] = draw(NODES)
    return document


SCHEDULE_DOCUMENTS = schedule_documents()
DOCUMENTS = st.one_of(SCHEDULE_DOCUMENTS, SCHEDULE_DOCUMENTS, SCHEDULE_DOCUMENTS, NODES,
                      st.dictionaries(MAP_KEYS, NODES, max_size=5))
TOKENS = ("[", "]", "{", "}", ":", ": ", "- ", ",", "\n", "  ", "\t", "#", "'", '"', "?", "|", ">", "&a ", "*a",
          "!!python/object/apply:os.system ", "!!int ", "!!binary ", "!!timestamp ", "%YAML 1.1\n", "---\n", "...",
          "pruners", "policies", "class", "0.5", "1e400", "2021-13-45", ".nan", "\x07", "\ufeff", "é", "\\x")
TEXTS = st.one_of(st.lists(st.sampled_from(TOKENS) | st.text(max_size=4), max_size=40).map("".join),
                  st.text(st.characters(blacklist_categories=("Cs",)), max_size=200))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                database=None)


def _read(folder: Path, text: str, load: Callable[[Path], Any], error: type[Exception]) -> Any:
    """`load` the text as a file: its result, or its one-line error naming the file (and nothing else raised)."""
    path = folder / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        return load(path)
    except error as exc:
        message = str(exc)
        assert message.startswith(f"{path}: "), message
        assert "\n" not in message and len(message) < 1500, message
        return exc


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(document=DOCUMENTS)
def test_any_yaml_document_is_a_schedule_or_a_schedule_error(fuzz_folder: Path, document: Any) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    result = _read(fuzz_folder, text, load_schedule, ScheduleError)
    assert isinstance(result, Schedule | ScheduleError)


@FUZZ
@given(text=TEXTS)
def test_any_text_is_a_schedule_or_a_schedule_error(fuzz_folder: Path, text: str) -> None:
    assert isinstance(_read(fuzz_folder, text, load_schedule, ScheduleError), Schedule | ScheduleError)


@settings(FUZZ, max_examples=100)
@given(document=DOCUMENTS | st.fixed_dictionaries({"method": st.sampled_from(("grid", "random")),
                                                   "parameters": st.dictionaries(MAP_KEYS | st.sampled_from(
                                                       ("model", "epochs", "lr", "sparsity.layer3", "kind.layer3",
                                                        "ranker.layer3")), NODES, max_size=4)}))
def test_any_yaml_document_is_a_sweep_or_a_sweep_error(fuzz_folder: Path, document: Any) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    assert isinstance(_read(fuzz_folder, text, load_sweep, SweepError), Sweep | SweepError)
