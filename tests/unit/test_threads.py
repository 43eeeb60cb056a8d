"""threads.py: torch's share of the CPUs per pytest-xdist worker, and background threads a measurement waits for.

The unit layer's tests (in-process); a worker process's real torch thread count is tested in tests/e2e/test_lock.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pytest_prunebench.lock import exclusive_measurement
from pytest_prunebench.threads import in_background, worker_threads


@pytest.mark.parametrize(
    ("workers", "cpus", "environ", "threads"),
    [
        (2, 2, {}, 1),
        (2, 8, {}, 4),
        (3, 8, {}, 2),
        (4, 2, {}, 1),  # more workers than CPUs: still one thread each
        (1, 2, {}, 2),
        (0, 2, {}, None),  # not a worker: torch's own default
        (0, 2, {"PYTEST_XDIST_WORKER_COUNT": "2"}, None),  # inherited from a worker's environment: not one
        (2, 2, {"OMP_NUM_THREADS": "2"}, None),  # the user's choice stands
        (2, 8, {"MKL_NUM_THREADS": "1"}, None),
        (2, 2, {"OMP_NUM_THREADS": ""}, 1),  # set but empty: not a choice
    ],
)
def test_xdist_workers_split_the_cpus_between_their_torch_threads(workers: int, cpus: int, environ: dict[str, str],
                                                                   threads: int | None) -> None:
    assert worker_threads(workers, cpus, environ) == threads


def test_a_measurement_waits_for_this_process_s_background_work(tmp_path: Path) -> None:
    finished: list[str] = []

    def slow() -> None:
        time.sleep(0.3)
        finished.append("slow")

    def failing() -> None:
        raise RuntimeError("a warm-up that fails is left to the foreground")

    in_background(failing, "failing")
    in_background(slow, "slow")
    assert finished == []  # it runs while the caller goes on
    with exclusive_measurement("CPU", tmp_path / "device.lock", timeout=5, host_gate=None):
        assert finished == ["slow"]
