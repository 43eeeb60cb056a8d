"""--prunebench-compare-fail: regression rules on record figures against the run --benchmark-compare selects.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/plugin/test_regressions.py.
"""

from __future__ import annotations

import argparse

import pytest
from option_parsing import OptionParsing, assert_one_line

from pytest_prunebench.regressions import RegressionRule, compare_runs, parse_regression_rules, report_lines


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("top1:0.5", (RegressionRule("top1", 0.5, False),)),
        ("top1:1%", (RegressionRule("top1", 1.0, True),)),
        ("top1:0.5, throughput_fps:5% ,latency_speedup:5%",
         (RegressionRule("top1", 0.5, False), RegressionRule("throughput_fps", 5.0, True),
          RegressionRule("latency_speedup", 5.0, True))),
        ("latency_ms:0", (RegressionRule("latency_ms", 0.0, False),)),
    ],
)
def test_rule_expressions_parse(text: str, rules: tuple[RegressionRule, ...]) -> None:
    assert parse_regression_rules(text) == rules
    assert ",".join(map(str, rules)) == text.replace(" ", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accuracy:1", "'accuracy:1' is not METRIC:BOUND"),
        ("top1", "'top1' is not METRIC:BOUND"),
        ("top1:x", "'top1:x': 'x' is not a number"),
        ("top1:-1", "the bound must be a finite number, 0 or more"),
        ("top1:nan%", "the bound must be a finite number"),
        (",", "give at least one METRIC:BOUND"),
    ],
)
def test_bad_rule_expressions_are_refused(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_regression_rules(text)


@pytest.mark.parametrize(
    ("rule", "before", "after", "fails"),
    [
        ("top1:0.5", 90.0, 89.6, False),  # a drop of 0.4 points
        ("top1:0.5", 90.0, 89.4, True),  # 0.6 points
        ("top1:0.5", 90.0, 95.0, False),  # better is never a regression
        ("top1:1%", 90.0, 89.2, False),  # 0.89% of 90
        ("top1:1%", 90.0, 89.0, True),  # 1.11%
        ("throughput_fps:5%", 1000.0, 960.0, False),
        ("throughput_fps:5%", 1000.0, 940.0, True),
        ("latency_ms:5%", 1.0, 1.04, False),  # lower is better: 4% slower passes
        ("latency_ms:5%", 1.0, 1.06, True),
        ("latency_ms:5%", 1.0, 0.5, False),
        ("macs:0", 100.0, 101.0, True),
    ],
)
def test_a_rule_fails_only_in_the_worse_direction_beyond_its_bound(rule: str, before: float, after: float,
                                                                   fails: bool) -> None:
    (parsed,) = parse_regression_rules(rule)
    assert parsed.fails(before, after) is fails


def test_compare_runs_lists_regressions_and_cases_on_one_side_only() -> None:
    rules = parse_regression_rules("top1:0.5,latency_speedup:5%")
    before = {"a": {"top1": 90.0, "latency_speedup": 2.0}, "b": {"top1": 80.0, "latency_speedup": 1.5},
              "gone": {"top1": 50.0, "latency_speedup": 1.0}}
    now = {"a": {"top1": 89.0, "latency_speedup": 2.0}, "b": {"top1": 80.0, "latency_speedup": 1.2},
           "new": {"top1": 70.0, "latency_speedup": 1.0}}
    report = compare_runs(rules, now, before, "0001_main.json")

    assert report.failed and report.compared == 2
    assert [(r.case, r.rule.metric, r.before, r.after) for r in report.regressions] == [
        ("a", "top1", 90.0, 89.0), ("b", "latency_speedup", 1.5, 1.2)]
    assert (report.only_now, report.only_before) == (("new",), ("gone",))
    lines = report_lines(report)
    assert lines[0] == "compared with 0001_main.json: 2 case(s) in both runs, 2 regression(s)"
    assert lines[1].split() == ["case", "metric", "before", "after", "bound", "worst", "allowed"]
    assert lines[2].split() == ["a", "top1", "90", "89", "top1:0.5", "89.5"]
    assert lines[3].split() == ["b", "latency_speedup", "1.5", "1.2", "latency_speedup:5%", "1.425"]
    assert lines[4:] == ["not in the saved run (new): new", "not in this run (missing): gone"]


@pytest.mark.parametrize(
    ("before_ci", "now_ci", "says"),
    [
        ([1.45, 1.55], [1.35, 1.47], "overlaps the saved run's [1.45, 1.55], so no change is plausible"),
        ([1.49, 1.51], [1.30, 1.44], "this run's 95% interval [1.3, 1.44] includes the worst allowed 1.425"),
        ([1.49, 1.51], [1.39, 1.41], ""),  # a real regression: both intervals clear of it
        (None, None, ""),  # records of older versions have no interval
    ],
)
def test_a_regression_inside_the_noise_says_so(before_ci: list[float] | None, now_ci: list[float] | None,
                                               says: str) -> None:
    before = {"a": {"latency_speedup": 1.5, "latency_speedup_ci": before_ci}}
    now = {"a": {"latency_speedup": 1.4, "latency_speedup_ci": now_ci}}
    report = compare_runs(parse_regression_rules("latency_speedup:5%"), now, before, "saved")
    (regression,) = report.regressions  # 1.4 < 1.425: it fires whatever the intervals say
    assert (says in regression.noise) if says else regression.noise == ""
    noisy = [line for line in report_lines(report) if "noise" in line]
    if says:
        assert noisy[0].startswith("inside the noise: a latency_speedup: ") and says in noisy[0]
        assert "1 of 1 regression(s) are inside the measurement noise: they still fail the gate" in noisy[1]
    else:
        assert noisy == []


def test_a_figure_missing_on_one_side_is_listed_not_fatal() -> None:
    report = compare_runs(parse_regression_rules("top1:0.5"), {"a": {"top1": None}}, {"a": {"top1": 90.0}}, "saved")
    assert not report.failed and report.unmeasured == ("a top1",)


def test_a_bad_rule_is_a_usage_error(parsing: OptionParsing) -> None:
    assert_one_line(parsing.usage_error("--prunebench-compare-fail", "accuracy:1"), "--prunebench-compare-fail",
                    "*--prunebench-compare-fail: 'accuracy:1' is not METRIC:BOUND*")
