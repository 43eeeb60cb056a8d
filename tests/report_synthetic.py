"""Synthetic pytest-benchmark records for the report tests (one seeded generator, as before the split)."""

from __future__ import annotations

from typing import Any

import numpy as np

RNG = np.random.default_rng(7)


def synthetic_records(count: int = 12) -> list[dict[str, Any]]:
    """Records shaped like the plugin's: latency falls with sparsity of `a`, top1 with sparsity of `b`."""
    records = []
    for index in range(count):
        a, b = round(float(RNG.uniform(0, 0.8)), 2), round(float(RNG.uniform(0, 0.8)), 2)
        info = {"model": "resnet20", "top1": 95 - 20 * b + float(RNG.normal(0, 1)),
                "latency_ms": 1.0 - 0.5 * a + float(RNG.normal(0, 0.02)), "latency_ms_dense": 1.0,
                "top1_dense": 96.0, "latency_speedup": 1.1 + a, "mac_speedup": 1.0 + 1.5 * a, "params": 1000 - index,
                "params_dense": 1200, "macs": 5000 - index, "macs_dense": 6000, "onnx_bytes": 40000 + index,
                "collapsed": index == 3, "collapse_reason": "predicts one class" if index == 3 else None,
                "sparsity.a": a, "sparsity.b": b}
        if index % 4 == 0:
            info["sparsity.c"] = 0.1 * (index // 4)  # only some cases have pruner c
        name = f"test_rapid[x]::cfg-{index:012d}"
        records.append({"name": name, "fullname": f"s.py::{name}", "stats": {"median": info["latency_ms"] / 1000},
                        "extra_info": info})
    return records
