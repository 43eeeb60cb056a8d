"""pytest-benchmark JSON records for the report tests: a writer and a crafted rapid-pruning run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def write_json(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": records}))
    return path


GROUPS = [f"layer{stage}.{block}" for stage in (1, 2, 3) for block in range(9)]  # ResNet-56's 27 residual blocks
STRONG = ("layer3.0", "layer2.4", "layer1.7")  # the groups the crafted latency depends on


def rapid_records(count: int = 30) -> list[dict[str, Any]]:
    """A rapid-pruning run as the suite records it: every case carries all 27 groups' sparsity (0 where not drawn),
    reached sparsities, kinds and rankers, intervals. Each case prunes the STRONG groups and up to 3 others; its
    speed-up grows with the STRONG groups' sparsity only. Two cases draw 0.02 of one group: nothing removed."""
    rng = np.random.default_rng(18)
    records = []
    for index in range(count):
        drawn = {g: 0.02 * int(rng.integers(1, 46)) for g in STRONG}
        drawn |= {g: 0.02 * int(rng.integers(1, 46)) for g in rng.choice(GROUPS, int(rng.integers(0, 4)))}
        if index in (7, 19):
            drawn = {GROUPS[index]: 0.02}
        sparsity = {g: round(drawn.get(g, 0.0), 2) for g in GROUPS}
        nothing = index in (7, 19)
        speedup = (1.0 if nothing else 1 + 0.8 * sum(sparsity[g] for g in STRONG)) * float(rng.normal(1, 0.01))
        absolute = 0.43 * float(rng.uniform(0.7, 1.3)) / speedup  # the case's own window drifts
        rel = 0.43 / speedup
        macs = 125_747_840 if nothing else int(125_747_840 * (1 - 0.3 * sum(sparsity.values()) / len(drawn)))
        info: dict[str, Any] = {
            "model": "resnet56", "dataset": "digits", "device": "CPU", "precision": "bf16", "epochs": 0,
            "top1": 99.4 - 3 * sum(sparsity.values()) + float(rng.normal(0, 0.2)), "top1_dense": 99.44,
            "top1_pruned": 99.0, "latency_ms": absolute, "latency_ms_dense": absolute * speedup,
            "latency_speedup": speedup, "latency_ms_ref": 0.43, "latency_ms_rel": rel,
            "latency_ms_ci": [0.99 * absolute, 1.01 * absolute], "latency_speedup_ci": [0.99 * speedup, 1.01 * speedup],
            "latency_ms_rel_ci": [rel / 1.01, rel / 0.99], "mac_speedup": 125_747_840 / macs, "macs": macs,
            "macs_dense": 125_747_840, "params": macs // 150, "params_dense": 855_770, "onnx_bytes": macs // 40,
            "collapsed": False, "collapse_reason": None, "measured_at": [1.0 + index, 2.0 + index],
            "latency_rounds": 200, "seconds.measure": 0.6,
            **{f"sparsity.{g}": s for g, s in sparsity.items()},
            **{f"reached.{g}": 0.0 if nothing else s for g, s in sparsity.items()},
            **{f"kind.{g}": "filters" for g in GROUPS}, **{f"ranker.{g}": "l1" for g in GROUPS}}
        name = f"test_rapid_pruning[filters]::cfg-{index:012x}"
        records.append({"name": name, "fullname": f"bench_suites/test_rapid_pruning.py::{name}",
                        "stats": {"median": absolute / 1000}, "extra_info": info})
    return records
