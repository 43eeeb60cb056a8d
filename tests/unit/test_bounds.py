"""Case bounds (a schedule's declarative thresholds): each bound holds exactly at its value and fails just beyond
it with one named line."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from pytest_prunebench.bounds import bound_failures
from pytest_prunebench.schedule import CaseBounds

SOURCE = "schedules/resnet20_gated.yaml"


@dataclass(frozen=True)
class Figures:
    name: str = "resnet20_gated"
    top1: float = 80.5
    top1_dense: float = 82.75
    latency_ms: float = 2.0
    latency_dense_ms: float = 3.0

    @property
    def latency_speedup(self) -> float:
        return self.latency_dense_ms / self.latency_ms


# The default figures sit exactly on every bound below (values exact in binary floating point):
# top1 80.5, drop 82.75 - 80.5 = 2.25, latency 2.0 ms, speed-up 3.0 / 2.0 = 1.5.
AT_BOUND = {"min_top1": 80.5, "max_top1_drop": 2.25, "max_latency_ms": 2.0, "min_latency_speedup": 1.5}

# bound key -> (figures just beyond the bound, the detail of the one failure line)
BEYOND: dict[str, tuple[Figures, str]] = {
    "min_top1": (Figures(top1=80.49, top1_dense=80.49), "top1 80.49% is below min_top1 80.5%"),
    "max_top1_drop": (Figures(top1=80.5, top1_dense=82.76),
                      "top1 dropped 2.26 points from the dense 82.76%, more than max_top1_drop 2.25"),
    "max_latency_ms": (Figures(latency_ms=2.001, latency_dense_ms=4.0),
                       "latency median 2.001 ms is above max_latency_ms 2"),
    "min_latency_speedup": (Figures(latency_dense_ms=2.98),
                            "latency speed-up 1.49x is below min_latency_speedup 1.5x"),
}


def line(figures: Figures, detail: str) -> str:
    return f"{figures.name}: {detail} ({SOURCE})"


def test_no_bounds_no_failures() -> None:
    worst = Figures(top1=0.0, top1_dense=100.0, latency_ms=1e6, latency_dense_ms=1.0)
    assert bound_failures(worst, CaseBounds(), SOURCE) == []


def test_figures_on_every_bound_pass() -> None:
    assert bound_failures(Figures(), CaseBounds(**AT_BOUND), SOURCE) == []


@pytest.mark.parametrize("key", list(AT_BOUND))
def test_each_bound_holds_exactly_at_its_value(key: str) -> None:
    assert bound_failures(Figures(), CaseBounds(**{key: AT_BOUND[key]}), SOURCE) == []


@pytest.mark.parametrize("key", list(BEYOND))
def test_each_bound_fails_just_beyond_its_value(key: str) -> None:
    figures, detail = BEYOND[key]
    failures = bound_failures(figures, CaseBounds(**{key: AT_BOUND[key]}), SOURCE)
    assert failures == [line(figures, detail)]
    assert "\n" not in failures[0]
    assert figures.name in failures[0]
    assert SOURCE in failures[0]
    assert key in failures[0]


@pytest.mark.parametrize("key", list(BEYOND))
def test_only_the_missed_bound_is_reported(key: str) -> None:
    # Every bound set, figures that miss only `key` (the others are set loose enough to hold).
    figures, detail = BEYOND[key]
    loose = {"min_top1": 0.0, "max_top1_drop": 100.0, "max_latency_ms": 1e6, "min_latency_speedup": 0.0}
    bounds = CaseBounds(**{**loose, key: AT_BOUND[key]})
    assert bound_failures(figures, bounds, SOURCE) == [line(figures, detail)]


def test_several_failures_give_one_line_each_in_order() -> None:
    figures = Figures(name="resnet56_mixed", top1=70.0, top1_dense=90.0, latency_ms=8.0, latency_dense_ms=4.0)
    bounds = CaseBounds(min_top1=75, max_top1_drop=5, max_latency_ms=6.5, min_latency_speedup=1.2)
    assert bound_failures(figures, bounds, "a/b.yaml") == [
        "resnet56_mixed: top1 70% is below min_top1 75% (a/b.yaml)",
        "resnet56_mixed: top1 dropped 20 points from the dense 90%, more than max_top1_drop 5 (a/b.yaml)",
        "resnet56_mixed: latency median 8 ms is above max_latency_ms 6.5 (a/b.yaml)",
        "resnet56_mixed: latency speed-up 0.5x is below min_latency_speedup 1.2x (a/b.yaml)",
    ]


def test_two_misses_among_four_bounds() -> None:
    figures = replace(Figures(), top1=79.0, latency_ms=2.5)  # top1 and drop miss; latency 2.5 and speed-up 1.2 hold
    bounds = CaseBounds(min_top1=80, max_top1_drop=3, max_latency_ms=3, min_latency_speedup=1.1)
    failures = bound_failures(figures, bounds, SOURCE)
    assert len(failures) == 2
    assert "min_top1 80%" in failures[0]
    assert "top1 dropped 3.75 points" in failures[1]


def test_float_noise_does_not_fail_a_bound_it_meets() -> None:
    figures = Figures(top1=91.1, top1_dense=93.3)  # 93.3 - 91.1 == 2.200000000000003 in floating point
    assert bound_failures(figures, CaseBounds(max_top1_drop=2.2), SOURCE) == []


def test_a_near_miss_is_printed_with_enough_digits_to_see_it() -> None:
    figures = Figures(top1=79.996)
    (failure,) = bound_failures(figures, CaseBounds(min_top1=80), SOURCE)
    assert "top1 79.996% is below min_top1 80%" in failure


def test_an_improvement_over_the_dense_model_is_no_drop() -> None:
    figures = Figures(top1=85.0, top1_dense=82.0)  # pruning raised accuracy: a negative drop
    assert bound_failures(figures, CaseBounds(max_top1_drop=0), SOURCE) == []
