"""pytester runs of the plugin: options, ini keys, usage errors, parametrisation, clear case failures.

None of these trains a model: each stops at a usage error, at collection, or before training starts. Usage errors
found without a device or a pytest run (bad values, conflicts) are checked in-process in tests/unit/test_plugin.py.

This file holds the plugin layer's tests (pytester runs); the topic's other tests are in tests/unit/test_plugin.py,
tests/e2e/test_plugin.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny import FILTERS_SCHEDULE, SCHEDULE_SUITE, write_schedules


def assert_usage_error(result: pytest.RunResult, *lines: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stderr.str()
    result.stderr.fnmatch_lines(list(lines))
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_ncs_without_a_stick_says_why_and_what_to_use(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest("--ncs")
    assert_usage_error(result, "*--ncs: no MYRIAD device (Neural Compute Stick 2)*OpenVINO 2022.3 LTS*archive*"
                               "Python <= 3.10*--prunebench-device NPU*--prunebench-device CPU*"
                               "prunebench worker --device MYRIAD*--prunebench-broker URL*")


def test_unknown_device_is_named_with_the_available_ones(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest("--prunebench-device", "FPGA")
    assert_usage_error(result, "*--prunebench-device FPGA: OpenVINO * has no such device (available: CPU*")


def test_bad_ini_value_names_the_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nprunebench_epochs = many\n")
    pytester.makepyfile(test_x="def test_x(): pass")
    assert_usage_error(pytester.runpytest(), "*ini key prunebench_epochs = 'many': 'many' is not a whole number*")


def test_ini_keys_set_defaults_and_the_command_line_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nprunebench_epochs = 3\nprunebench_rounds = 7\nprunebench_data = synthetic\n")
    pytester.makepyfile(test_resolved_settings="""
        def test_settings(prunebench):
            settings = prunebench.settings
            assert (settings.epochs, settings.rounds, settings.data.kind) == (0, 7, "synthetic")
            assert settings.device == "CPU" and settings.cache.is_absolute()
    """)
    pytester.runpytest("--prunebench-epochs", "0").assert_outcomes(passed=1)


def test_one_case_per_schedule_file_with_stable_ids(pytester: pytest.Pytester) -> None:
    write_schedules(pytester.path, resnet20_b=FILTERS_SCHEDULE, resnet20_a=FILTERS_SCHEDULE)
    other = pytester.path / "more"
    other.mkdir()
    (other / "resnet20_a.yaml").write_text(FILTERS_SCHEDULE)
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    result = pytester.runpytest("--collect-only", "-q", "--prunebench-schedules", "schedules",
                                "--prunebench-schedules", "more/*.yaml")
    result.stdout.fnmatch_lines([  # in the order the patterns were given, each pattern's files sorted
        "test_suite.py::test_schedule[schedules/resnet20_a]",
        "test_suite.py::test_schedule[resnet20_b]",
        "test_suite.py::test_schedule[more/resnet20_a]",
    ])


def test_cases_carry_the_prunebench_marker(pytester: pytest.Pytester) -> None:
    write_schedules(pytester.path, one=FILTERS_SCHEDULE)
    pytester.makepyfile(test_suite=SCHEDULE_SUITE + "\n\ndef test_plain():\n    pass\n")
    result = pytester.runpytest("--collect-only", "-q", "-m", "not prunebench")
    result.stdout.fnmatch_lines(["test_suite.py::test_plain", "*1/2 tests collected (1 deselected)*"])


def test_default_schedules_folder_comes_from_the_rootdir(pytester: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\n")
    write_schedules(pytester.path, mine=FILTERS_SCHEDULE)
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    monkeypatch.chdir(pytester.mkdir("elsewhere"))  # started from a subfolder, schedules/ is still the root's
    result = pytester.runpytest("--collect-only", "-q", str(pytester.path / "test_suite.py"))
    result.stdout.fnmatch_lines(["*test_schedule[[]mine[]]*"])


@pytest.mark.parametrize(
    ("schedule", "args", "expected"),
    [
        ("pruners: [\n  - oops\n  bad: {\n", [], "*bad.yaml: line * YAML syntax error*"),
        ("pruners:\n  p:\n    class: os.system\n", [], "*bad.yaml: pruners.p.class: unknown pruner class 'os.system'*"),
        ("!!python/object/apply:os.system ['touch pwned']\n", [], "*bad.yaml: line 1: unsafe or unknown YAML tag*"),
        ("", [], "*bad.yaml: the file is empty*"),
        (FILTERS_SCHEDULE.replace("layer2.1.conv1", "layer7.1.conv1"), ["--prunebench-data", "synthetic"],
         "*bad.yaml: pruners.head_filters.weights: resnet20 has no layer 'layer7.1.conv1'*prunebench layers*"),
        (FILTERS_SCHEDULE.replace("resnet20_cifar", "resnet99_cifar"), ["--prunebench-data", "synthetic"],
         "*unknown model 'resnet99'*"),
        (FILTERS_SCHEDULE, ["--prunebench-data", "cifar10:missing_dir"],
         "*cifar10 data directory * does not exist*extract cifar-10-python.tar.gz*"),
        (FILTERS_SCHEDULE.replace("    arch: resnet20_cifar\n", ""), [],
         "*names no model*--prunebench-model resnet56*"),
    ],
    ids=["yaml-syntax", "unknown-class", "unsafe-tag", "empty", "unknown-layer", "unknown-model", "missing-data",
         "no-model"],
)
def test_bad_case_input_fails_the_case_with_one_line(pytester: pytest.Pytester, shared_cache: Path,
                                                     schedule: str, args: list[str], expected: str) -> None:
    write_schedules(pytester.path, bad=schedule)
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    result = pytester.runpytest_subprocess(f"--prunebench-cache={shared_cache}", *args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([expected])
    output = result.stdout.str()
    assert "Traceback" not in output and "pytest_prunebench/" not in output, output
    assert not (pytester.path / "pwned").exists()


def test_help_lists_the_option_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*pytest-prunebench*", "*--ncs*", "*--wandb-project*", "*--prunebench-device*",
                                 "*prunebench_epochs*"])

