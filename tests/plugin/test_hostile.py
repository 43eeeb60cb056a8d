"""Hostile and broken input, end to end: each bad schedule, sweep file, dataset, model, option or ini value in
tests/hostile/index.yaml fails with one clear line and no traceback, before any dense baseline trains.

Also here: a hypothesis fuzz of the schedule (and sweep) reader, which must return a Schedule or raise our own
error for any YAML document or text, and the parser-level security checks (python tags, class names).
"""

from __future__ import annotations

import builtins
import gzip
import importlib
import inspect
import os
import pickle
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny import CHANNELS_SCHEDULE, FILTERS_SCHEDULE, SCHEDULE_SUITE, write_schedules

from pytest_prunebench.cli import main
from pytest_prunebench.data import CIFAR_TEST_FILE, CIFAR_TRAIN_FILES
from pytest_prunebench.errors import PrunebenchWarning, ScheduleError, SweepError
from pytest_prunebench.schedule import LR_SCHEDULERS, SUPPORTED_PRUNERS, Schedule, load_schedule
from pytest_prunebench.sweep import Sweep, load_sweep

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = Path(__file__).resolve().parents[1] / "hostile"
INDEX: list[dict[str, Any]] = yaml.safe_load((HOSTILE / "index.yaml").read_text(encoding="utf-8"))
SWEEP_SUITE = (ROOT / "bench_suites" / "test_sweep.py").read_text(encoding="utf-8")
ONE_TEST = "def test_nothing():\n    pass\n"
USER_MODULES = ("prunebench_hostile_models", "prunebench_hostile_exit")
# -rN: no short summary, so a failure's message is printed once, in its own section.
BASE_ARGS = ("-p", "no:cacheprovider", "-rN")
CASE_ARGS = ("--prunebench-host-gate=off", "--prunebench-baseline-epochs=1")  # for runs that reach a case
MAX_OUTPUT = 20_000  # characters: a header, one failure and a summary line; an alias bomb printed would be MBs


# --- builders: inputs written by the test rather than shipped -------------------------------------------------


def deep_nesting(folder: Path) -> Path:
    path = folder / "deep.yaml"
    path.write_text("pruners: " + "[" * 700 + "]" * 700 + "\n", encoding="utf-8")
    return path


def gzipped_schedule(folder: Path) -> Path:
    path = folder / "gzipped.yaml"
    path.write_bytes(gzip.compress(FILTERS_SCHEDULE.encode()))
    return path


def control_character(folder: Path) -> Path:
    path = folder / "bell.yaml"
    path.write_text("version: 1\npruners: \x07\n", encoding="utf-8")
    return path


def a_file(folder: Path) -> Path:
    path = folder / "afile"
    path.write_text("a file where a directory belongs\n", encoding="utf-8")
    return path


def empty_folder(folder: Path) -> Path:
    path = folder / "empty"
    path.mkdir()
    return path


def cifar(folder: Path, **batches: object) -> Path:
    """A CIFAR-10 python-batch directory of 4 images per batch; a keyword replaces one batch: bytes are written
    as they are, anything else is pickled."""
    root = folder / "cifar"
    root.mkdir()
    for index, name in enumerate((*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE)):
        batch = batches.get(name, {b"data": np.full((4, 3072), index, dtype=np.uint8), b"labels": [0, 1, 2, 3]})
        (root / name).write_bytes(batch if isinstance(batch, bytes) else pickle.dumps(batch))
    return root


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, ("touch pwned",)


def _pixels(rows: int = 4) -> np.ndarray:
    return np.zeros((rows, 3072), dtype=np.uint8)


def cifar_as_a_file(folder: Path) -> Path:
    path = folder / "cifar-10-python.tar"
    path.write_bytes(b"not a directory")
    return path


def cifar_archive_only(folder: Path) -> Path:
    root = folder / "download"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(gzip.compress(b"an archive"))
    return root


def cifar_truncated(folder: Path) -> Path:
    whole = pickle.dumps({b"data": _pixels(), b"labels": [0, 1, 2, 3]})
    return cifar(folder, data_batch_3=whole[: len(whole) // 2])


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "deep_nesting": deep_nesting,
    "gzipped_schedule": gzipped_schedule,
    "control_character": control_character,
    "empty_folder": empty_folder,
    "a_file": a_file,
    "cifar_as_a_file": cifar_as_a_file,
    "cifar_archive_only": cifar_archive_only,
    "cifar_truncated": cifar_truncated,
    "cifar_gzipped": lambda folder: cifar(folder, data_batch_1=gzip.compress(pickle.dumps({b"data": _pixels()}))),
    "cifar_png": lambda folder: cifar(folder, data_batch_2=b"\x89PNG\r\n\x1a\n" + bytes(64)),
    "cifar_list": lambda folder: cifar(folder, test_batch=[_pixels(), [0, 1, 2, 3]]),
    "cifar_text_keys": lambda folder: cifar(folder, data_batch_4={"data": _pixels(), "labels": [0, 1, 2, 3]}),
    "cifar_wrong_shape": lambda folder: cifar(folder, data_batch_5={b"data": np.zeros((4, 1024), np.uint8),
                                                                    b"labels": [0, 1, 2, 3]}),
    "cifar_float_pixels": lambda folder: cifar(folder, data_batch_2={b"data": np.full((4, 3072), 0.5, np.float32),
                                                                     b"labels": [0, 1, 2, 3]}),
    "cifar_scalar_labels": lambda folder: cifar(folder, data_batch_1={b"data": _pixels(1), b"labels": 7}),
    "cifar_nested_labels": lambda folder: cifar(folder, data_batch_1={b"data": _pixels(2),
                                                                      b"labels": [[0, 1], [2, 3]]}),
    "cifar_empty_test": lambda folder: cifar(folder, test_batch={b"data": _pixels(0), b"labels": []}),
    "cifar_runs_code": lambda folder: cifar(folder, data_batch_1={b"data": _RunsCode(), b"labels": [0]}),
}


# --- feeding an input to pytest or the prunebench CLI ---------------------------------------------------------


def materialize(entry: dict[str, Any], folder: Path) -> Path | None:
    """The entry's input, copied (a shipped file) or built into `folder`; None without an input."""
    spec = entry.get("input")
    if spec is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(spec, dict):
        return BUILDERS[spec["build"]](folder)
    source = HOSTILE / spec
    return Path(shutil.copyfile(source, folder / source.name))


def arguments(entry: dict[str, Any], path: Path | None, default: tuple[str, ...] = ()) -> list[str]:
    return [arg.format(input=path) for arg in entry.get("args", default)]


def run_pytest(pytester: pytest.Pytester, *args: str, case: bool = True) -> tuple[int, str]:
    """pytest in this process; `case`: with the settings of a run that reaches a case (cache, artifacts, no host
    gate), which an ini-file entry must not get (the command line would override its key)."""
    where = (f"--prunebench-cache={pytester.path / 'cache'}", f"--prunebench-artifacts={pytester.path / 'artifacts'}")
    result = pytester.runpytest_inprocess(*BASE_ARGS, *(CASE_ARGS + where if case else ()), *args)
    return int(result.ret), "\n".join(result.outlines + result.errlines)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    finally:
        for name in USER_MODULES:  # imported outside pytester's in-process snapshot: forget them again
            sys.modules.pop(name, None)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def user_modules(pytester: pytest.Pytester) -> None:
    for name in USER_MODULES:
        shutil.copyfile(HOSTILE / f"{name}.py", pytester.path / f"{name}.py")
    pytester.syspathinsert()


def feed_schedule(entry: dict[str, Any], pytester: pytest.Pytester, request: pytest.FixtureRequest) -> tuple[int, str]:
    path = materialize(entry, pytester.path / "schedules")
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    return run_pytest(pytester, f"--prunebench-schedules={path}", *arguments(entry, path))


def feed_sweep(entry: dict[str, Any], pytester: pytest.Pytester, request: pytest.FixtureRequest) -> tuple[int, str]:
    path = materialize(entry, pytester.path / "sweeps")
    pytester.makepyfile(test_hostile_sweep_suite=SWEEP_SUITE)  # not test_sweep: tests/test_sweep.py may be imported
    return run_pytest(pytester, f"--prunebench-sweep={path}", *arguments(entry, path))


def feed_data(entry: dict[str, Any], pytester: pytest.Pytester, request: pytest.FixtureRequest) -> tuple[int, str]:
    schedules = write_schedules(pytester.path, channels=CHANNELS_SCHEDULE)
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    path = materialize(entry, pytester.path / "data")
    return run_pytest(pytester, f"--prunebench-schedules={schedules}",
                      *arguments(entry, path, ("--prunebench-data=cifar10:{input}",)))


def feed_case(entry: dict[str, Any], pytester: pytest.Pytester, request: pytest.FixtureRequest) -> tuple[int, str]:
    """A valid tiny case (the user model modules importable) run with the entry's arguments."""
    user_modules(pytester)
    schedules = write_schedules(pytester.path, channels=CHANNELS_SCHEDULE)
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    path = materialize(entry, pytester.path / "inputs")
    return run_pytest(pytester, f"--prunebench-schedules={schedules}", "--prunebench-data=synthetic",
                      *arguments(entry, path))


def feed_option(entry: dict[str, Any], pytester: pytest.Pytester, request: pytest.FixtureRequest) -> tuple[int, str]:
    path = materialize(entry, pytester.path)
    pytester.makepyfile(test_one=ONE_TEST)
    return run_pytest(pytester, *arguments(entry, path), case=False)


def feed_ini(entry: dict[str, Any], pytester: pytest.Pytester, request: pytest.FixtureRequest) -> tuple[int, str]:
    pytester.makeini((HOSTILE / entry["input"]).read_text(encoding="utf-8"))
    pytester.makepyfile(test_one=ONE_TEST)
    return run_pytest(pytester, *arguments(entry, None), case=False)


def feed_check(entry: dict[str, Any], pytester: pytest.Pytester, request: pytest.FixtureRequest) -> tuple[int, str]:
    path = materialize(entry, pytester.path)
    return run_cli(request.getfixturevalue("capsys"), "check", str(path), *arguments(entry, path))


def feed_layers(entry: dict[str, Any], pytester: pytest.Pytester, request: pytest.FixtureRequest) -> tuple[int, str]:
    user_modules(pytester)
    return run_cli(request.getfixturevalue("capsys"), "layers", *arguments(entry, None))


def feed_report(entry: dict[str, Any], pytester: pytest.Pytester, request: pytest.FixtureRequest) -> tuple[int, str]:
    path = materialize(entry, pytester.path / "results")
    return run_cli(request.getfixturevalue("capsys"), "report", str(path), "--out", str(pytester.path / "report"))


def feed_cache(entry: dict[str, Any], pytester: pytest.Pytester, request: pytest.FixtureRequest) -> tuple[int, str]:
    path = materialize(entry, pytester.path / "inputs")
    return run_cli(request.getfixturevalue("capsys"), "cache", *arguments(entry, path))


FEEDS = {"schedule": feed_schedule, "sweep": feed_sweep, "data": feed_data, "model": feed_case, "case": feed_case,
         "option": feed_option, "ini": feed_ini, "check": feed_check, "layers": feed_layers,
         "report": feed_report, "cache": feed_cache}


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training a dense baseline fails the run: every error of the corpus must come before it."""
    from pytest_prunebench import baseline, training

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a hostile input reached dense baseline training: its error must come before")

    monkeypatch.setattr(training, "train_dense", refuse)
    monkeypatch.setattr(baseline, "train_dense", refuse, raising=False)


def corpus() -> list[Any]:
    params = []
    for entry in INDEX:
        marks = [pytest.mark.xfail(strict=True, reason=entry["xfail"])] if "xfail" in entry else []
        params.append(pytest.param(entry, id=entry["id"], marks=marks))
    return params


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("entry", corpus())
def test_hostile_input_fails_with_one_clear_line(entry: dict[str, Any], pytester: pytest.Pytester,
                                                 request: pytest.FixtureRequest) -> None:
    code, output = FEEDS[entry["via"]](entry, pytester, request)

    assert code != 0, output
    found = re.findall(entry["expect"], output, flags=re.MULTILINE)
    assert len(found) == 1, f"expected once: {entry['expect']!r}, found {len(found)} times in:\n{output}"
    assert "Traceback" not in output, output
    assert f"pytest_prunebench{os.sep}" not in output, output  # no frame (or warning location) of ours
    assert len(output) < MAX_OUTPUT, output[:2000]
    for name in entry.get("forbid", ()):
        assert not (pytester.path / name).exists(), f"{name} was created: the input ran code"


def test_a_bad_sweep_file_is_reported_once(pytester: pytest.Pytester) -> None:
    (pytester.path / "bayes.yaml").write_text("method: bayes\nparameters:\n  sparsity.layer3: {value: 0.5}\n")
    pytester.makepyfile(test_hostile_sweep_suite=SWEEP_SUITE)  # not test_sweep: tests/test_sweep.py may be imported
    code, output = run_pytest(pytester, "--prunebench-sweep=bayes.yaml", case=False)
    assert code == pytest.ExitCode.INTERRUPTED
    assert output.count("bayes.yaml: metric: bayes needs a metric to optimise") == 1, output
    assert "During handling of the above exception" not in output


def test_the_index_is_well_formed_and_names_every_shipped_input() -> None:
    ids = [entry["id"] for entry in INDEX]
    assert len(ids) == len(set(ids)) >= 40
    for entry in INDEX:
        assert entry["via"] in FEEDS, entry
        assert set(entry) <= {"id", "via", "input", "args", "expect", "xfail", "forbid"}, entry
        re.compile(entry["expect"])
        spec = entry.get("input")
        if isinstance(spec, dict):
            assert spec["build"] in BUILDERS, entry
        elif spec is not None:
            assert (HOSTILE / spec).is_file(), entry
    used = {entry["input"] for entry in INDEX if isinstance(entry.get("input"), str)}
    shipped = {str(p.relative_to(HOSTILE)) for p in HOSTILE.rglob("*") if p.suffix in (".yaml", ".ini", ".json")}
    documented = {"index.yaml", "schedules/duplicate_pruner.yaml"}  # not errors: read by the tests below
    assert shipped - documented == used
    assert {spec["build"] for entry in INDEX if isinstance(spec := entry.get("input"), dict)} == set(BUILDERS)


# --- duplicate keys: read as YAML (and Distiller, W&B) read them, and said -----------------------------------


def test_a_duplicate_key_in_a_schedule_is_a_warning_naming_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    path = HOSTILE / "schedules" / "duplicate_pruner.yaml"
    schedule = load_schedule(path)
    assert schedule.warnings == (f"{path}: line 9: duplicate key 'head': the later entry replaces the earlier one; "
                                 f"keep one",)
    assert [p.kind for p in schedule.pruners] == ["channels"]  # the later entry, as every YAML reader has it
    assert main(["check", "--model", "resnet20", str(path)]) == 0
    assert "warning: " + schedule.warnings[0] in capsys.readouterr().err


def test_a_duplicate_key_in_a_sweep_is_a_warning_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("method: grid\nparameters:\n  sparsity.layer3: {values: [0.2]}\n  sparsity.layer3: {value: 0.4}\n",
                    encoding="utf-8")
    with pytest.warns(PrunebenchWarning, match="duplicate key 'sparsity.layer3': the later entry replaces") as caught:
        sweep = load_sweep(path)
    assert (caught[0].filename, caught[0].lineno) == (str(path), 4)
    assert sweep.grid() == [{"sparsity.layer3": 0.4}]


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


# --- security at parser level ---------------------------------------------------------------------------------

PYTHON_TAGS = (
    '!!python/object/apply:os.system ["touch {marker}"]',
    '!!python/object/new:os.system ["touch {marker}"]',
    '!!python/object/apply:subprocess.check_call [["touch", "{marker}"]]',
    "!!python/name:os.system",
    "!!python/module:os",
)


@pytest.mark.parametrize("tag", PYTHON_TAGS)
def test_a_python_tag_in_a_schedule_runs_nothing(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "tagged.yaml"
    path.write_text(f"version: 1\npruners:\n  head: {tag.format(marker=marker)}\npolicies: []\n", encoding="utf-8")
    with pytest.raises(ScheduleError) as raised:
        load_schedule(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: line 3: unsafe or unknown YAML tag (could not determine a constructor for "
                              f"the tag 'tag:yaml.org,2002:python/"), message
    assert "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize("tag", PYTHON_TAGS)
def test_a_python_tag_in_a_sweep_runs_nothing(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "tagged.yaml"
    path.write_text(f"method: grid\nparameters:\n  sparsity.layer3: {tag.format(marker=marker)}\n", encoding="utf-8")
    with pytest.raises(SweepError, match=r"tagged\.yaml: line 3: unsafe or unknown YAML tag"):
        load_sweep(path)
    assert not marker.exists()


@pytest.fixture
def forbid_imports(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """forbid("antigravity.fly"): importing that top-level module (by statement or importlib) fails the test."""
    forbidden: set[str] = set()
    real_import, real_import_module = builtins.__import__, importlib.import_module

    def check(name: str) -> None:
        if name.partition(".")[0] in forbidden:
            raise AssertionError(f"the parser imported {name}")

    def guarded_import(name: str, *args: Any, **kwargs: Any) -> Any:
        check(name)
        return real_import(name, *args, **kwargs)

    def guarded_import_module(name: str, package: str | None = None) -> Any:
        check(name)
        return real_import_module(name, package)

    monkeypatch.setattr(builtins, "__import__", guarded_import)
    monkeypatch.setattr(importlib, "import_module", guarded_import_module)
    return lambda dotted: forbidden.add(dotted.partition(".")[0].partition(":")[0])


def test_the_import_guard_catches_both_ways_of_importing(forbid_imports: Callable[[str], None]) -> None:
    forbid_imports("prunebench_never_imported.module:factory")
    with pytest.raises(AssertionError, match="the parser imported prunebench_never_imported"):
        importlib.import_module("prunebench_never_imported.module")
    with pytest.raises(AssertionError, match="the parser imported prunebench_never_imported"):
        __import__("prunebench_never_imported")


CLASS_SECTIONS = {
    "pruners": ("head:\n    class: {name}\n    group_type: Filters\n    desired_sparsity: 0.5\n"
                "    weights: [module.layer1.0.conv1.weight]\npolicies:\n  - pruner: {{instance_name: head}}\n"
                "    epochs: [0]\n", "pruners.head.class: unknown pruner class {shown}"),
    "lr_schedulers": ("decay:\n    class: {name}\n", "lr_schedulers.decay.class: lr_scheduler class {shown} is not "
                                                     "allowed"),
    "extensions": ("thin:\n    class: {name}\n    thinning_func_str: remove_filters\n",
                   "extensions.thin.class: extension class {shown} is not supported"),
}
FOREIGN_CLASSES = ("os.system", "subprocess.Popen", "antigravity.geohash", "builtins.eval", "this.s",
                   "torch.optim.lr_scheduler.StepLR", "LambdaLR", "ReduceLROnPlateau", "SequentialLR", "OneCycleLR")


@pytest.mark.parametrize("name", FOREIGN_CLASSES)
@pytest.mark.parametrize("section", CLASS_SECTIONS)
def test_a_class_outside_the_lists_is_refused_by_name_without_importing_it(
        tmp_path: Path, forbid_imports: Callable[[str], None], section: str, name: str) -> None:
    body, expected = CLASS_SECTIONS[section]
    path = tmp_path / "foreign.yaml"
    path.write_text(f"{section}:\n  " + body.format(name=name), encoding="utf-8")
    if not name.startswith(("torch.", "builtins.")):
        forbid_imports(name)
    with pytest.raises(ScheduleError) as raised:
        load_schedule(path)
    assert str(raised.value).startswith(f"{path}: " + expected.format(shown=repr(name))), str(raised.value)
    assert "antigravity" not in sys.modules and "this" not in sys.modules


def test_an_lr_scheduler_argument_cannot_smuggle_code(tmp_path: Path) -> None:
    path = tmp_path / "lambda.yaml"
    path.write_text("lr_schedulers:\n  decay:\n    class: MultiStepLR\n    milestones: [2]\n"
                    "    lr_lambda: !!python/name:os.system\n", encoding="utf-8")
    with pytest.raises(ScheduleError, match=r"line 5: unsafe or unknown YAML tag"):
        load_schedule(path)
    path.write_text("lr_schedulers:\n  decay:\n    class: MultiStepLR\n    milestones: [2]\n    lr_lambda: os.system\n",
                    encoding="utf-8")
    with pytest.raises(ScheduleError, match=r"lr_schedulers\.decay\.lr_lambda: MultiStepLR takes no argument "
                                            r"'lr_lambda'"):
        load_schedule(path)


@pytest.mark.parametrize("model", ["antigravity:geohash", "os:system", "nosuchpkg.mod:factory"])
def test_a_sweep_file_never_names_a_factory_and_nothing_is_imported(
        tmp_path: Path, forbid_imports: Callable[[str], None], model: str) -> None:
    forbid_imports(model)
    path = tmp_path / "factory.yaml"
    path.write_text(f'method: grid\nparameters:\n  model: {{value: "{model}"}}\n  sparsity.layer3: {{value: 0.5}}\n',
                    encoding="utf-8")
    with pytest.raises(SweepError, match=r"parameters\.model: sweep files name built-in models only .*"
                                         r"--prunebench-model package\.module:factory"):
        load_sweep(path)
    assert "antigravity" not in sys.modules

