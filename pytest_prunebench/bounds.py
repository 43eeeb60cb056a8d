"""A case's bounds (the thresholds of a schedule's `prunebench:` section or `--prunebench-threshold`), checked
against its figures."""

from __future__ import annotations

from typing import Protocol

from .schedule import CaseBounds

EPS = 1e-9


class Figures(Protocol):
    """What the bounds read of a case (read-only: a CaseResult is frozen)."""

    @property
    def name(self) -> str: ...

    @property
    def top1(self) -> float: ...

    @property
    def top1_dense(self) -> float: ...

    @property
    def latency_ms(self) -> float: ...

    @property
    def latency_speedup(self) -> float: ...


def bound_failures(figures: Figures, bounds: CaseBounds, source: str) -> list[str]:
    """One line per bound the case misses, showing the figure, the bound and the case."""
    failures = []
    # Figures print with 6 significant digits so a miss is visible (79.996 < 80); comparisons allow float noise
    # (93.3 - 91.1 = 2.200000000000003 meets max_top1_drop 2.2).
    checks = (
        ("min_top1", figures.top1, "top1 {value:.6g}% is below min_top1 {bound:g}%", lambda v, b: v >= b - EPS),
        ("max_top1_drop", figures.top1_dense - figures.top1,
         "top1 dropped {value:.6g} points from the dense {dense:.6g}%, more than max_top1_drop {bound:g}",
         lambda v, b: v <= b + EPS),
        ("max_latency_ms", figures.latency_ms, "latency median {value:.6g} ms is above max_latency_ms {bound:g}",
         lambda v, b: v <= b + EPS),
        ("min_latency_speedup", figures.latency_speedup,
         "latency speed-up {value:.6g}x is below min_latency_speedup {bound:g}x", lambda v, b: v >= b - EPS),
    )
    for key, value, template, holds in checks:
        bound = getattr(bounds, key)
        if bound is not None and not holds(value, bound):
            detail = template.format(value=value, bound=bound, dense=figures.top1_dense)
            failures.append(f"{figures.name}: {detail} ({source})")
    return failures
