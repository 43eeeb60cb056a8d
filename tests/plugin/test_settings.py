"""The `type=` parsers shared by command-line options and ini keys, and the frozen Settings object.

This file holds the plugin layer's tests (pytester runs): how pytest reports the two kinds of usage error, a bad
option value (argparse) and a conflict found when the options resolve (pytest.UsageError), end to end, and what
xdist workers are told. Option values, ini keys and their errors are checked in-process in
tests/unit/test_settings.py.
"""

from __future__ import annotations

import fnmatch

import pytest

# --- usage errors and xdist workers in pytest runs --------------------------------------------------------------


def assert_one_line_usage_error(result: pytest.RunResult, option: str, expected: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stderr.str()
    output = result.stderr.str() + result.stdout.str()
    assert "Traceback" not in output
    lines = [line for line in result.stderr.lines if option in line]
    assert len(lines) == 1, result.stderr.str()
    assert fnmatch.fnmatch(lines[0], expected), lines[0]


def test_a_bad_option_value_is_one_line_and_exit_code_4(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    assert_one_line_usage_error(pytester.runpytest("--prunebench-examples", "0"), "--prunebench-examples",
                                "*--prunebench-examples: '0' must be at least 1")


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


def test_no_cache_with_a_cache_dir_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("--prunebench-no-cache", "--prunebench-cache=elsewhere")
    assert_one_line_usage_error(result, "--prunebench-no-cache",
                                "*--prunebench-no-cache and --prunebench-cache DIR: use one of them")
