"""Confidence intervals: exact order statistics for a median, a paired block bootstrap for the speed-up.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/e2e/test_intervals.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_prunebench.intervals import (
    Interval,
    LatencyIntervals,
    median_interval,
    median_rank,
    speedup_interval,
)


def binomial_coverage(n: int, rank: int) -> float:
    """P(rank <= B <= n - rank) for B ~ Binomial(n, 1/2), by exact integer arithmetic."""
    below = sum(math.comb(n, k) for k in range(rank))
    return 1 - 2 * below / 2**n


@pytest.mark.parametrize(("n", "rank"), [(6, 1), (10, 2), (20, 6), (100, 40), (200, 86)])
def test_median_ranks_match_the_binomial_tables(n: int, rank: int) -> None:
    assert median_rank(n) == rank  # n = 100: ranks 40 and 61, as textbook tables give
    assert binomial_coverage(n, rank) >= 0.95 > binomial_coverage(n, rank + 1)  # the narrowest that reaches 95%


def test_median_rank_holds_for_large_n_without_overflow() -> None:
    n = 100_000
    rank = median_rank(n)
    half_width = 1.96 * math.sqrt(n) / 2  # the normal approximation of the same interval
    assert abs((n / 2 - rank) - half_width) < 3


def test_few_or_identical_samples_give_a_degenerate_interval_not_an_error() -> None:
    assert median_interval([3.0]) == Interval(3.0, 3.0)
    assert median_interval([5.0, 1.0, 3.0]) == Interval(1.0, 5.0)  # n < 6: the whole range
    assert median_interval([2.0] * 50) == Interval(2.0, 2.0)
    assert speedup_interval([1.0] * 40, [2.0] * 40) == Interval(2.0, 2.0)
    assert speedup_interval([1.0], [1.5]) == Interval(1.5, 1.5)
    with pytest.raises(ValueError):
        median_interval([])


def test_the_median_interval_covers_a_known_median_at_its_level() -> None:
    rng = np.random.default_rng(3)
    hits = sum(median_interval(rng.exponential(1.0, 50)).contains(math.log(2)) for _ in range(1000))
    assert 0.93 <= hits / 1000 <= 0.99  # exact coverage for n = 50 is 0.967


def interleaved(rng: np.random.Generator, rounds: int, speedup: float, drift: float = 0.1,
                noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Pruned and dense samples in blocks of 10: each block pair shares a random slow-down of the host (drift), and
    each sample has its own noise. The true speed-up (ratio of the population medians) is `speedup`."""
    host = np.repeat(rng.lognormal(0, drift, -(-rounds // 10)), 10)[:rounds]
    return host * rng.lognormal(0, noise, rounds), speedup * host * rng.lognormal(0, noise, rounds)


def test_the_speedup_interval_narrows_with_rounds_and_excludes_a_false_speedup() -> None:
    rng = np.random.default_rng(5)
    short = speedup_interval(*interleaved(rng, 100, 1.3))
    long = speedup_interval(*interleaved(rng, 2000, 1.3))
    assert long.high - long.low < (short.high - short.low) / 2
    assert not long.contains(1.0) and long.contains(1.3)


def test_pairing_blocks_keeps_the_drift_they_share_out_of_the_interval() -> None:
    rng = np.random.default_rng(9)
    pruned, dense = interleaved(rng, 400, 1.2, drift=0.3, noise=0.02)
    paired = speedup_interval(pruned, dense)
    unpaired = speedup_interval(pruned, rng.permutation(dense))  # the same samples, the pairing destroyed
    assert paired.high - paired.low < (unpaired.high - unpaired.low) / 1.5


def test_the_bootstrap_is_seeded_so_a_record_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    pruned, dense = interleaved(rng, 205, 1.1)  # a partial last block takes the slow path: seeded as well
    assert speedup_interval(pruned, dense) == speedup_interval(pruned, dense)
    assert speedup_interval(pruned, dense, seed=1) != speedup_interval(pruned, dense, seed=2)


def test_latency_intervals_are_in_milliseconds_and_contain_their_point_figures() -> None:
    rng = np.random.default_rng(2)
    pruned, dense = interleaved(rng, 200, 1.5)
    pruned_s, dense_s = pruned / 1000, dense / 1000
    intervals = LatencyIntervals.of(tuple(pruned_s), tuple(dense_s))
    assert intervals.latency_ms.contains(float(np.median(pruned_s)) * 1000)
    assert intervals.speedup.contains(float(np.median(dense_s) / np.median(pruned_s)))
    assert Interval(1.0, 1.05).half_width(1.02) == pytest.approx(0.03 / 1.02)
    assert Interval(2.0, 4.0).inverted(8.0) == Interval(2.0, 4.0)
