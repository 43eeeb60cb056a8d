"""The hostile-input corpus (tests/hostile/index.yaml): its entries, the inputs built rather than shipped, and how
each entry is fed to the plugin (a pytest run, in-process) or to the prunebench CLI.

The tests that run the corpus are split by what is hostile: tests/plugin/test_hostile_schedules.py,
test_hostile_sweeps.py, test_hostile_data.py, test_hostile_models.py, test_hostile_options.py (options and ini
keys) and tests/unit/test_hostile_cli.py (the prunebench command line); GROUPS says which entries each runs.
"""

from __future__ import annotations

import gzip
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
from tiny import CHANNELS_SCHEDULE, FILTERS_SCHEDULE, SCHEDULE_SUITE, write_schedules

from pytest_prunebench.cli import main
from pytest_prunebench.data import CIFAR_TEST_FILE, CIFAR_TRAIN_FILES

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = Path(__file__).resolve().parent / "hostile"
INDEX: list[dict[str, Any]] = yaml.safe_load((HOSTILE / "index.yaml").read_text(encoding="utf-8"))
SWEEP_SUITE = (ROOT / "bench_suites" / "test_sweep.py").read_text(encoding="utf-8")
ONE_TEST = "def test_nothing():\n    pass\n"
USER_MODULES = ("prunebench_hostile_models", "prunebench_hostile_exit")
# -rN: no short summary, so a failure's message is printed once, in its own section.
BASE_ARGS = ("-p", "no:cacheprovider", "-rN")
CASE_ARGS = ("--prunebench-host-gate=off", "--prunebench-baseline-epochs=1")  # for runs that reach a case
MAX_OUTPUT = 20_000  # characters: a header, one failure and a summary line; an alias bomb printed would be MBs
# Which entries (by `via`) each test file runs; together they are every `via` of the corpus, each once.
GROUPS = {
    "schedules": ("schedule",),
    "sweeps": ("sweep",),
    "data": ("data",),
    "models": ("model",),
    "options": ("option", "case", "ini"),
    "cli": ("check", "layers", "report", "cache"),
}


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


# --- feeding an input to pytest (in this process) ---------------------------------------------------------


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


def copy_user_modules(folder: Path) -> None:
    """The corpus' model modules, copied into `folder` (which the caller puts on sys.path)."""
    for name in USER_MODULES:
        shutil.copyfile(HOSTILE / f"{name}.py", folder / f"{name}.py")


def feed_schedule(entry: dict[str, Any], pytester: pytest.Pytester) -> tuple[int, str]:
    path = materialize(entry, pytester.path / "schedules")
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    return run_pytest(pytester, f"--prunebench-schedules={path}", *arguments(entry, path))


def feed_sweep(entry: dict[str, Any], pytester: pytest.Pytester) -> tuple[int, str]:
    path = materialize(entry, pytester.path / "sweeps")
    pytester.makepyfile(test_hostile_sweep_suite=SWEEP_SUITE)  # not test_sweep: tests/*/test_sweep.py may be imported
    return run_pytest(pytester, f"--prunebench-sweep={path}", *arguments(entry, path))


def feed_data(entry: dict[str, Any], pytester: pytest.Pytester) -> tuple[int, str]:
    schedules = write_schedules(pytester.path, channels=CHANNELS_SCHEDULE)
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    path = materialize(entry, pytester.path / "data")
    return run_pytest(pytester, f"--prunebench-schedules={schedules}",
                      *arguments(entry, path, ("--prunebench-data=cifar10:{input}",)))


def feed_case(entry: dict[str, Any], pytester: pytest.Pytester) -> tuple[int, str]:
    """A valid tiny case (the user model modules importable) run with the entry's arguments."""
    copy_user_modules(pytester.path)
    pytester.syspathinsert()
    schedules = write_schedules(pytester.path, channels=CHANNELS_SCHEDULE)
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    path = materialize(entry, pytester.path / "inputs")
    return run_pytest(pytester, f"--prunebench-schedules={schedules}", "--prunebench-data=synthetic",
                      *arguments(entry, path))


def feed_option(entry: dict[str, Any], pytester: pytest.Pytester) -> tuple[int, str]:
    path = materialize(entry, pytester.path)
    pytester.makepyfile(test_one=ONE_TEST)
    return run_pytest(pytester, *arguments(entry, path), case=False)


def feed_ini(entry: dict[str, Any], pytester: pytest.Pytester) -> tuple[int, str]:
    pytester.makeini((HOSTILE / entry["input"]).read_text(encoding="utf-8"))
    pytester.makepyfile(test_one=ONE_TEST)
    return run_pytest(pytester, *arguments(entry, None), case=False)


PYTEST_FEEDS: dict[str, Callable[[dict[str, Any], pytest.Pytester], tuple[int, str]]] = {
    "schedule": feed_schedule, "sweep": feed_sweep, "data": feed_data, "model": feed_case, "case": feed_case,
    "option": feed_option, "ini": feed_ini,
}


# --- feeding an input to the prunebench CLI (main() in this process) ------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    finally:
        for name in USER_MODULES:  # imported by this test alone: forget them again
            sys.modules.pop(name, None)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def feed_check(entry: dict[str, Any], folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = materialize(entry, folder)
    return run_cli(capsys, "check", str(path), *arguments(entry, path))


def feed_layers(entry: dict[str, Any], folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    copy_user_modules(folder)  # the test puts `folder` on sys.path
    return run_cli(capsys, "layers", *arguments(entry, None))


def feed_report(entry: dict[str, Any], folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = materialize(entry, folder / "results")
    return run_cli(capsys, "report", str(path), "--out", str(folder / "report"))


def feed_cache(entry: dict[str, Any], folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = materialize(entry, folder / "inputs")
    return run_cli(capsys, "cache", *arguments(entry, path))


CLI_FEEDS: dict[str, Callable[[dict[str, Any], Path, pytest.CaptureFixture[str]], tuple[int, str]]] = {
    "check": feed_check, "layers": feed_layers, "report": feed_report, "cache": feed_cache,
}


# --- running the corpus ---------------------------------------------------------------------------------------


def forbid_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training a dense baseline fails the run: every error of the corpus must come before it."""
    from pytest_prunebench import baseline, training

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a hostile input reached dense baseline training: its error must come before")

    monkeypatch.setattr(training, "train_dense", refuse)
    monkeypatch.setattr(baseline, "train_dense", refuse, raising=False)


def corpus(group: str) -> list[Any]:
    """The entries of one of GROUPS, as parameters named by their ids."""
    params = []
    for entry in INDEX:
        if entry["via"] not in GROUPS[group]:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=entry["xfail"])] if "xfail" in entry else []
        params.append(pytest.param(entry, id=entry["id"], marks=marks))
    return params


def assert_one_clear_line(entry: dict[str, Any], code: int, output: str, folder: Path) -> None:
    """A non-zero exit, `expect` once, no traceback or frame of ours, a short output, nothing `forbid` names."""
    assert code != 0, output
    found = re.findall(entry["expect"], output, flags=re.MULTILINE)
    assert len(found) == 1, f"expected once: {entry['expect']!r}, found {len(found)} times in:\n{output}"
    assert "Traceback" not in output, output
    assert f"pytest_prunebench{os.sep}" not in output, output  # no frame (or warning location) of ours
    assert len(output) < MAX_OUTPUT, output[:2000]
    for name in entry.get("forbid", ()):
        assert not (folder / name).exists(), f"{name} was created: the input ran code"


def run_in_pytest(entry: dict[str, Any], pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test of every entry fed to pytest: its input fails with one clear line before any training."""
    forbid_training(monkeypatch)
    code, output = PYTEST_FEEDS[entry["via"]](entry, pytester)
    assert_one_clear_line(entry, code, output, pytester.path)


def corpus_test(group: str) -> Callable[..., None]:
    """The test of one of GROUPS fed to pytest, for a test file to bind to its name (a new function each call, so
    that each file's parametrisation is its own)."""

    @pytest.mark.parametrize("entry", corpus(group))
    def test_hostile_input_fails_with_one_clear_line(entry: dict[str, Any], pytester: pytest.Pytester,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
        run_in_pytest(entry, pytester, monkeypatch)

    return test_hostile_input_fails_with_one_clear_line
