"""Hostile input at parser level, without a pytest run: the corpus index itself, duplicate keys (read as YAML,
Distiller and W&B read them, and said), python tags and foreign class names that must run and import nothing.

This file holds the unit layer's tests (in-process, no pytester, no subprocess); the corpus runs end to end in
tests/plugin/test_hostile_*.py and tests/unit/test_hostile_cli.py, the reader fuzz is in
tests/unit/test_hostile_fuzz.py.
"""

from __future__ import annotations

import builtins
import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hostile_corpus import BUILDERS, CLI_FEEDS, GROUPS, HOSTILE, INDEX, PYTEST_FEEDS

from pytest_prunebench.cli import main
from pytest_prunebench.errors import PrunebenchWarning, ScheduleError, SweepError
from pytest_prunebench.schedule import load_schedule
from pytest_prunebench.sweep import load_sweep

FEEDS = {**PYTEST_FEEDS, **CLI_FEEDS}


def test_the_index_is_well_formed_and_names_every_shipped_input() -> None:
    ids = [entry["id"] for entry in INDEX]
    vias = [via for group in GROUPS.values() for via in group]
    assert sorted(vias) == sorted(set(vias)) == sorted(FEEDS)  # each entry runs in exactly one test file
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
