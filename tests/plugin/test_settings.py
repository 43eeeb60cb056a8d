"""The `type=` parsers shared by command-line options and ini keys, and the frozen Settings object.

This file holds the plugin layer's tests (pytester runs); the topic's other tests are in
tests/unit/test_settings.py.
"""

from __future__ import annotations

import fnmatch

import pytest

from pytest_prunebench.plugin import SESSION
from pytest_prunebench.settings import (
    Settings,
)

# --- option resolution in pytest runs -----------------------------------------------------------------------------


def resolved(pytester: pytest.Pytester, *args: str) -> Settings:
    """The Settings a pytest run with `args` resolves (pytest_configure has run, nothing is collected)."""
    config = pytester.parseconfigure(*args)
    return config.stash[SESSION].settings


def assert_one_line_usage_error(result: pytest.RunResult, option: str, expected: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stderr.str()
    output = result.stderr.str() + result.stdout.str()
    assert "Traceback" not in output
    lines = [line for line in result.stderr.lines if option in line]
    assert len(lines) == 1, result.stderr.str()
    assert fnmatch.fnmatch(lines[0], expected), lines[0]


def test_repeated_threshold_options_collect_in_order(pytester: pytest.Pytester) -> None:
    settings = resolved(pytester, "--prunebench-threshold", "max_latency_ms=2",
                        "--prunebench-threshold", "min_top1=50")
    assert settings.thresholds == (("max_latency_ms", 2.0), ("min_top1", 50.0))
    assert settings.examples is None
    assert settings.host_gate == "auto"


def test_examples_and_host_gate_options_resolve(pytester: pytest.Pytester) -> None:
    settings = resolved(pytester, "--prunebench-examples", "3", "--prunebench-host-gate", "OFF")
    assert (settings.examples, settings.host_gate) == (3, "off")
    assert settings.thresholds == ()


@pytest.mark.parametrize(
    ("args", "option", "expected"),
    [
        (["--prunebench-examples", "0"], "--prunebench-examples", "*--prunebench-examples: '0' must be at least 1"),
        (["--prunebench-examples", "many"], "--prunebench-examples",
         "*--prunebench-examples: 'many' is not a whole number"),
        (["--prunebench-host-gate", "maybe"], "--prunebench-host-gate",
         "*--prunebench-host-gate: 'maybe': use auto (on for devices that share the host CPU), on or off"),
        (["--prunebench-threshold", "min_top1"], "--prunebench-threshold",
         "*--prunebench-threshold: 'min_top1' is not KEY=VALUE with KEY one of min_top1, *"),
        (["--prunebench-threshold", "max_latency_ms=inf"], "--prunebench-threshold",
         "*--prunebench-threshold: 'max_latency_ms=inf': the bound must be a finite number"),
    ],
)
def test_bad_new_option_values_are_one_line_usage_errors(pytester: pytest.Pytester, args: list[str], option: str,
                                                        expected: str) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    assert_one_line_usage_error(pytester.runpytest(*args), option, expected)


def test_threshold_and_examples_ini_keys_resolve(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nprunebench_threshold = min_top1=90 max_latency_ms=3\nprunebench_examples = 7\n"
                     "prunebench_host_gate = on\nprunebench_bn_recalibration = off\n")
    settings = resolved(pytester)
    assert settings.bn_recalibration == 0 and Settings().bn_recalibration == 1024
    assert settings.thresholds == (("min_top1", 90.0), ("max_latency_ms", 3.0))
    assert settings.examples == 7
    assert settings.host_gate == "on"


def test_threshold_ini_key_in_pyproject_takes_comma_separated_values(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nprunebench_threshold = "min_top1=90, max_latency_ms=3"\n'
                               'prunebench_examples = "2"\n')
    settings = resolved(pytester)
    assert settings.thresholds == (("min_top1", 90.0), ("max_latency_ms", 3.0))
    assert settings.examples == 2


def test_command_line_thresholds_replace_the_ini_ones(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nprunebench_threshold = min_top1=90 max_latency_ms=3\nprunebench_examples = 7\n")
    settings = resolved(pytester, "--prunebench-threshold", "min_top1=10", "--prunebench-examples", "1")
    assert settings.thresholds == (("min_top1", 10.0),)
    assert settings.examples == 1


@pytest.mark.parametrize(
    ("ini", "expected"),
    [
        ("prunebench_threshold = min_top1=90 speed=3",
         "*ini key prunebench_threshold = 'speed=3': 'speed=3' is not KEY=VALUE*"),
        ("prunebench_examples = 0", "*ini key prunebench_examples = '0': '0' must be at least 1*"),
        ("prunebench_host_gate = maybe", "*ini key prunebench_host_gate = 'maybe': 'maybe': use auto*"),
    ],
)
def test_bad_new_ini_values_name_the_key(pytester: pytest.Pytester, ini: str, expected: str) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stderr.str()
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


@pytest.mark.parametrize(("args", "expected"), [(["-n", "2"], 2), (["-n", "0"], 0)])
def test_xdist_workers_know_how_many_share_the_host(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                    args: list[str], expected: int) -> None:
    pytester.makepyfile(test_workers="""
        import pytest

        @pytest.mark.parametrize("name", ["a", "b"])
        def test_workers(prunebench, name):
            with open(f"workers-{name}.txt", "w") as out:
                out.write(str(prunebench.settings.xdist_workers))
    """)
    # What an xdist worker hands down to the processes it starts: inherited, it makes no process a worker.
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "7")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)

    result.assert_outcomes(passed=2)
    assert [int((pytester.path / f"workers-{n}.txt").read_text()) for n in "ab"] == [expected, expected]


def test_no_cache_switch_and_its_ini_key_resolve(pytester: pytest.Pytester) -> None:
    assert resolved(pytester).no_cache is False
    assert resolved(pytester, "--prunebench-no-cache").no_cache is True
    pytester.makeini("[pytest]\nprunebench_no_cache = true\n")
    assert resolved(pytester).no_cache is True


def test_no_cache_with_a_cache_dir_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("--prunebench-no-cache", "--prunebench-cache=elsewhere")
    assert_one_line_usage_error(result, "--prunebench-no-cache",
                                "*--prunebench-no-cache and --prunebench-cache DIR: use one of them")
