"""95% confidence intervals for latency figures. numpy only: the device worker imports it (adaptive rounds).

- **A single median** (`median_interval`): the distribution-free order-statistic interval. For n samples, the
  number below the true median is Binomial(n, 1/2), so [x_(l), x_(n+1-l)] (1-based order statistics) covers the
  median with probability P(l <= B <= n - l), at least the confidence asked for with l as large as allows it. It
  assumes independent samples; drift inside the window makes it optimistic, which is why comparisons use the
  speed-up's interval.
- **The speed-up** (`speedup_interval`, dense median / pruned median): a percentile bootstrap over the interleaved
  design. The two models are timed in alternating blocks (pruned, dense, dense, pruned, ...), so the k-th block of
  each was measured next to the other, in the same moment of the host: a resample draws whole **pairs of blocks**
  (the k-th pruned block with the k-th dense block), keeping what they share (slow drift) inside each pair and
  keeping the correlation within a block. With fewer than `MIN_BLOCKS` blocks it resamples single rounds as pairs
  (dense_i, pruned_i). The bootstrap is seeded, so a record's interval is reproducible from its samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .settings import DEFAULT_MAX_ROUNDS, DEFAULT_PRECISION_TARGET

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0  # every bootstrap starts here: the same samples give the same interval, in any process
BLOCK = 10  # rounds per interleaved block (device._interleaved_latency)
MIN_BLOCKS = 8  # fewer blocks than this: resample single rounds as pairs
_CHUNK_VALUES = 4_000_000  # resampled values held at once (32 MB of float64)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def scaled(self, factor: float) -> Interval:
        return Interval(self.low * factor, self.high * factor)

    def inverted(self, numerator: float = 1.0) -> Interval:
        """The interval of numerator / x (for x > 0)."""
        return Interval(numerator / self.high, numerator / self.low)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def half_width(self, centre: float) -> float:
        """The larger distance from `centre` to an end, relative to `centre` (0.01: +-1%)."""
        return max(centre - self.low, self.high - centre) / abs(centre) if centre else math.inf

    def to_json(self) -> list[float]:
        return [float(self.low), float(self.high)]


def _binomial_half_cdf(n: int) -> np.ndarray:
    """P(B <= k) for B ~ Binomial(n, 1/2), k = 0..n, computed in log space (n may be 100,000)."""
    k = np.arange(n, dtype=np.float64)
    log_pmf = np.concatenate([[0.0], np.cumsum(np.log(n - k) - np.log(k + 1))]) - n * math.log(2.0)
    pmf = np.exp(log_pmf - log_pmf.max())
    return np.cumsum(pmf) / pmf.sum()


def median_rank(n: int, confidence: float = CONFIDENCE) -> int:
    """The 1-based rank l of the interval's lower end [x_(l), x_(n+1-l)]; 1 when no narrower interval reaches the
    confidence (n < 6 at 95%: the full range then covers the median with probability 1 - 2^(1-n) only)."""
    if n < 1:
        raise ValueError("no samples")
    cdf = _binomial_half_cdf(n)
    alpha = 1.0 - confidence
    # Coverage of [x_(l), x_(n+1-l)] is 1 - 2 P(B <= l - 1): the largest l keeping that >= confidence.
    ok = np.nonzero(2.0 * cdf[: (n + 1) // 2] <= alpha + 1e-12)[0]
    return int(ok[-1]) + 1 if ok.size else 1


def median_interval(samples: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """The order-statistic interval of the median of `samples` (distribution-free, independent samples)."""
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    low = median_rank(len(ordered), confidence)
    return Interval(float(ordered[low - 1]), float(ordered[len(ordered) - low]))


def _units(n: int, block: int) -> list[np.ndarray]:
    """Indices of the resampling units: the interleaved blocks, or single rounds when there are too few blocks."""
    blocks = -(-n // block)
    if blocks < MIN_BLOCKS:
        return [np.array([i]) for i in range(n)]
    return [np.arange(start, min(start + block, n)) for start in range(0, n, block)]


def speedup_interval(pruned: Sequence[float] | np.ndarray, dense: Sequence[float] | np.ndarray,
                     confidence: float = CONFIDENCE, block: int = BLOCK, resamples: int = RESAMPLES,
                     seed: int = SEED) -> Interval:
    """Percentile bootstrap interval of median(dense) / median(pruned) over pairs of interleaved blocks."""
    p, d = np.asarray(pruned, dtype=np.float64), np.asarray(dense, dtype=np.float64)
    n = min(len(p), len(d))
    if n < 1:
        raise ValueError("no samples")
    p, d = p[:n], d[:n]
    units = _units(n, block)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(units), size=(resamples, len(units)))
    sizes = {len(unit) for unit in units}
    ratios = np.empty(resamples)
    if len(sizes) == 1:  # equal units (rounds a multiple of the block): one gather per chunk of resamples
        table = np.stack(units)  # units x size
        per_chunk = max(1, _CHUNK_VALUES // n)
        for start in range(0, resamples, per_chunk):
            rows = table[picks[start:start + per_chunk]].reshape(-1, n)  # resamples x rounds (indices)
            ratios[start:start + per_chunk] = np.median(d[rows], axis=1) / np.median(p[rows], axis=1)
    else:
        for index, row in enumerate(picks):
            chosen = np.concatenate([units[u] for u in row])
            ratios[index] = np.median(d[chosen]) / np.median(p[chosen])
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return Interval(float(low), float(high))


@dataclass(frozen=True)
class LatencyIntervals:
    """What a record carries: the pruned median's interval (ms) and the speed-up's."""

    latency_ms: Interval
    speedup: Interval

    @classmethod
    def of(cls, pruned_s: Sequence[float], dense_s: Sequence[float]) -> LatencyIntervals:
        return cls(median_interval(pruned_s).scaled(1000.0), speedup_interval(pruned_s, dense_s))


# -- adaptive rounds (--prunebench-rounds auto) -------------------------------------------------------------------

DEFAULT_BUDGET_S = 120.0  # seconds of timed inferences per measurement window: the time budget
MIN_ROUNDS = 100  # per model, before the first look at the interval: 10 blocks of each


@dataclass(frozen=True)
class AdaptiveRounds:
    """Time interleaved blocks until the speed-up's 95% interval is within +-`target` of it (the median's, for a
    model timed alone), or until `max_rounds` per model or `budget_s` seconds of timed inferences are spent."""

    target: float = DEFAULT_PRECISION_TARGET
    min_rounds: int = MIN_ROUNDS
    max_rounds: int = DEFAULT_MAX_ROUNDS
    budget_s: float = DEFAULT_BUDGET_S

    def __str__(self) -> str:
        return f"auto: to +-{self.target * 100:g}%, at most {self.max_rounds}"


def relative_half_width(samples: Sequence[float], reference: Sequence[float] = ()) -> float:
    """How precise a window is: the speed-up interval's relative half-width when there is a reference model (timed
    interleaved), else the median interval's."""
    if len(reference):
        ratio = float(np.median(reference) / np.median(samples))
        return speedup_interval(samples, reference).half_width(ratio)
    return median_interval(samples).half_width(float(np.median(samples)))


def next_look(rounds: int, half_width: float, policy: AdaptiveRounds, block: int = BLOCK) -> int:
    """Rounds per model at the next look at the interval. A half-width falls as 1/sqrt(rounds), so the target needs
    about rounds x (half_width / target)^2: aim 10% past that (each look costs a bootstrap), at least one block more
    and at most 4 times as many (an early half-width is itself noisy), in whole blocks, within the budget."""
    needed = rounds * (half_width / policy.target) ** 2 * 1.1 if math.isfinite(half_width) else 4 * rounds
    aim = min(max(needed, rounds + block), 4 * rounds)
    return min(int(-(-aim // block) * block), policy.max_rounds)
