"""Confidence intervals: exact order statistics for a median, a paired block bootstrap for the speed-up.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_intervals.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_prunebench.intervals import (
    speedup_interval,
)


def interleaved(rng: np.random.Generator, rounds: int, speedup: float, drift: float = 0.1,
                noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Pruned and dense samples in blocks of 10: each block pair shares a random slow-down of the host (drift), and
    each sample has its own noise. The true speed-up (ratio of the population medians) is `speedup`."""
    host = np.repeat(rng.lognormal(0, drift, -(-rounds // 10)), 10)[:rounds]
    return host * rng.lognormal(0, noise, rounds), speedup * host * rng.lognormal(0, noise, rounds)


@pytest.mark.parametrize(("rounds", "drift"), [(200, 0.1), (200, 0.0), (60, 0.1)])
def test_the_speedup_interval_covers_the_true_speedup(rounds: int, drift: float) -> None:
    rng = np.random.default_rng(42)
    hits = sum(speedup_interval(*interleaved(rng, rounds, 1.3, drift), resamples=500).contains(1.3)
               for _ in range(150))
    assert 0.9 <= hits / 150 <= 1.0
