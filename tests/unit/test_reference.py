"""The session's reference dense median: settled once, shared by every process of the session.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/e2e/test_reference.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_prunebench.case import CaseResult
from pytest_prunebench.reference import ReferenceStore, reference_key


def test_the_first_measurement_settles_the_reference_in_one_process() -> None:
    store = ReferenceStore(None)
    key = reference_key("resnet56", "digits", "CPU", None)
    assert store.settle(key, 1.25, 100.0).latency_ms == 1.25
    assert store.settle(key, 0.75, 200.0).latency_ms == 1.25  # a later window never revises it
    assert store.settle(reference_key("resnet20", "digits", "CPU", None), 0.5, 300.0).latency_ms == 0.5


def result(**values: float) -> CaseResult:
    """A plausible CaseResult, with `values` in place of its defaults."""
    base: dict[str, Any] = dict(
        name="c", model="resnet20", dataset="digits", device="CPU", schedule="s", schedule_hash="h", epochs=0,
        top1=90.0, top5=99.0, top1_pruned=90.0, top1_dense=91.0, params=10, params_dense=20, weights=8,
        weights_dense=16, macs=100, macs_dense=200, onnx_bytes=1000, onnx_path="c.onnx", latencies_s=(0.001,),
        latency_ms=1.0, latency_ms_dense=1.0, throughput_fps=100.0, collapse_reason=None, precision="f32",
        sparsities={}, measured_at=(0.0, 1.0))
    return CaseResult(**{**base, **values})


def test_drift_corrected_latency_is_the_reference_over_the_interleaved_speedup() -> None:
    # A window 40% slow: both models measured 1.4x their reference-window figure; the ratio holds.
    drifted = result(latency_ms=1.4, latency_ms_dense=2.8, latency_ms_ref=2.0)
    assert drifted.latency_speedup == pytest.approx(2.0)
    assert drifted.latency_ms_rel == pytest.approx(1.0)
    assert drifted.extra_info()["latency_ms_rel"] == pytest.approx(1.0)
    assert drifted.extra_info()["latency_ms_ref"] == 2.0
    unknown = result(latency_ms=1.4, latency_ms_dense=2.8)  # a library caller without a reference
    assert unknown.latency_ms_rel == 1.4 and unknown.extra_info()["latency_ms_ref"] is None
