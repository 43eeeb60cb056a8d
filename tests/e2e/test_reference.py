"""The session's reference dense median: settled once, shared by every process of the session.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_reference.py.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from pytest_prunebench.reference import ReferenceStore, reference_key


def test_processes_sharing_a_directory_agree_on_the_first_published(tmp_path: Path) -> None:
    key = reference_key("resnet56", "digits", "CPU", "bf16")
    first = ReferenceStore(tmp_path / "refs").settle(key, 2.0, 1.0)
    second = ReferenceStore(tmp_path / "refs").settle(key, 3.0, 2.0)  # another process: its own store
    assert first == second and first.latency_ms == 2.0
    assert not list((tmp_path / "refs").glob("*.partial"))


def _settle(args: tuple[str, float]) -> float:
    directory, value = args
    return ReferenceStore(Path(directory)).settle("resnet20|synthetic|CPU|default", value, value).latency_ms


def test_racing_processes_settle_on_one_value(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        settled = pool.map(_settle, [(str(tmp_path), float(v)) for v in range(1, 17)])
    assert len(set(settled)) == 1 and settled[0] in range(1, 17)
