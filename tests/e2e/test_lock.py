"""The device lock: one file per device, real exclusion between processes, re-entrant within one, clear refusals.

The host gate: a read-write lock across processes, CPU-heavy work shared, a measurement exclusive.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_lock.py.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_prunebench.errors import DeviceError
from pytest_prunebench.lock import (
    HostGate,
    cpu_work,
    device_lock,
    use_host_gate,
)

# Holds the lock at argv[1] until killed; "held" on stdout once it has it.
HOLDER = """
import sys, time
from pathlib import Path
from pytest_prunebench.lock import device_lock
with device_lock(Path(sys.argv[1]), 10):
    print("held", flush=True)
    time.sleep(120)
"""


def start_holder(path: Path) -> subprocess.Popen[str]:
    """A process that holds `path`; returns once it says so (fails the test if it does not within 10 s)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 10.0)
    assert proc.stdout is not None
    first = proc.stdout.readline() if ready else ""
    if first.strip() != "held":
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"lock holder did not start: stdout {first!r}, stderr {err!r}")
    return proc


def test_a_lock_held_by_another_process_times_out_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "device.lock"
    proc = start_holder(path)
    try:
        start = time.monotonic()
        with pytest.raises(DeviceError) as info, device_lock(path, timeout=0.5):
            pytest.fail("acquired a lock another process holds")
        waited = time.monotonic() - start
        message = str(info.value)
        assert str(path) in message
        assert "--prunebench-lock-timeout" in message
        assert "0.5 s" in message
        assert f"by pid {proc.pid} on " in message  # the holder, from the note it wrote on acquiring
        assert "\n" not in message
        assert 0.45 <= waited < 3.0

        proc.kill()  # the holder dies without releasing: the OS drops its lock with its file descriptors
        proc.wait(timeout=10)
        start = time.monotonic()
        with device_lock(path, timeout=0):
            assert path.exists()
        assert time.monotonic() - start < 0.5
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_a_lock_released_by_this_process_is_free_for_another(tmp_path: Path) -> None:
    path = tmp_path / "device.lock"
    with device_lock(path, timeout=1):
        pass
    proc = start_holder(path)  # would never say "held" if the release had not happened
    try:
        with pytest.raises(DeviceError), device_lock(path, timeout=0.2):
            pass
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_the_lock_is_released_when_the_body_raises(tmp_path: Path) -> None:
    path = tmp_path / "device.lock"
    with pytest.raises(RuntimeError, match="boom"), device_lock(path, 1):
        raise RuntimeError("boom")
    proc = start_holder(path)  # another process can take it now
    proc.kill()
    proc.communicate(timeout=10)


# --- the host gate ------------------------------------------------------------------------------------------------

# One side of the host gate at argv[2], in another process; the first stdout line says it is under way.
GATE_ROLES = """
import json, sys, time
from pathlib import Path
from pytest_prunebench.errors import DeviceError
from pytest_prunebench.lock import HostGate, cpu_work, use_host_gate

role, path = sys.argv[1], Path(sys.argv[2])
if role in ("hold-measurement", "hold-work"):  # until killed
    host_gate = HostGate(path, 30)
    with host_gate.measurement() if role == "hold-measurement" else host_gate.work():
        print("held", flush=True)
        time.sleep(120)
elif role in ("try-measurement", "try-work"):  # argv[3]: the timeout
    host_gate = HostGate(path, float(sys.argv[3]))
    try:
        with host_gate.measurement() if role == "try-measurement" else host_gate.work():
            print("acquired", flush=True)
    except DeviceError as exc:
        print(f"refused: {exc}", flush=True)
elif role == "measure":  # hold the measurement side for argv[3] s; its window goes to argv[4]
    with HostGate(path, 30).measurement():
        start = time.time()
        print("held", flush=True)
        time.sleep(float(sys.argv[3]))
        end = time.time()
    Path(sys.argv[4]).write_text(json.dumps([start, end]))
elif role == "work":  # short gated sections for argv[3] s; their windows go to argv[4]
    host_gate, sections = HostGate(path, 30), []
    print(f"started {time.time()!r}", flush=True)
    deadline = time.monotonic() + float(sys.argv[3])
    while time.monotonic() < deadline:
        with use_host_gate(host_gate), cpu_work():
            start = time.time()
            time.sleep(0.02)
            sections.append([start, time.time()])
    Path(sys.argv[4]).write_text(json.dumps(sections))
"""


def start_gate_role(role: str, path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start one side of the gate in another process; returns once it printed its first line (within 15 s)."""
    proc = subprocess.Popen([sys.executable, "-c", GATE_ROLES, role, str(path), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15.0)
    first = proc.stdout.readline().strip() if ready else ""
    if not first:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"gate process {role} did not start: stderr {err!r}")
    return proc, first


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


def try_gate(role: str, path: Path, timeout: float) -> str:
    """`acquired` or `refused: MESSAGE`: another process trying one side of the gate with `timeout`."""
    result = subprocess.run([sys.executable, "-c", GATE_ROLES, role, str(path), str(timeout)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(("workers", "expected"), [(2, "max(1, cpus // 2)"), (0, "default")])
def test_a_worker_process_runs_torch_on_its_share(workers: int, expected: str) -> None:
    script = (
        "import os, torch\n"
        "default = torch.get_num_threads()\n"
        "from pytest_prunebench.threads import share_cpus_with_workers\n"
        "cpus = len(os.sched_getaffinity(0))\n"
        f"assert share_cpus_with_workers({workers}) == torch.get_num_threads() == {expected}, "
        "torch.get_num_threads()\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    finished = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr


def test_cpu_work_inside_the_gate_holds_it_shared(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    with use_host_gate(HostGate(path, 5)), cpu_work():
        measurement = try_gate("try-measurement", path, 0.3)
        work = try_gate("try-work", path, 0.3)
    assert measurement.startswith("refused: host gate"), measurement  # exclusive: not while work runs
    assert work == "acquired"  # shared: other processes' work goes on
    assert try_gate("try-measurement", path, 0.3) == "acquired"  # released after the block


def test_the_gate_is_released_when_the_work_raises(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    with pytest.raises(RuntimeError, match="boom"), use_host_gate(HostGate(path, 5)), cpu_work():
        raise RuntimeError("boom")
    assert try_gate("try-measurement", path, 0.3) == "acquired"


@pytest.mark.parametrize(
    ("holder", "side", "waiting"),
    [("hold-measurement", "work", "work paused for a measurement"),
     ("hold-work", "measurement", "a measurement waited for CPU-heavy work")],
)
def test_a_gate_held_by_another_process_times_out_with_one_line(tmp_path: Path, holder: str, side: str,
                                                                waiting: str) -> None:
    path = tmp_path / "gate.db"
    proc, _ = start_gate_role(holder, path)
    try:
        host_gate = HostGate(path, timeout=0.2)
        start = time.monotonic()
        with pytest.raises(DeviceError) as info, getattr(host_gate, side)():
            pytest.fail(f"took the {side} side while another process held the other")
        waited = time.monotonic() - start
        message = str(info.value)
        assert message.startswith(f"host gate {path}: {waiting} longer than 0.2 s")
        assert "--prunebench-host-gate off" in message
        assert "\n" not in message
        assert 0.15 <= waited < 5.0

        proc.kill()  # the holder dies without releasing: the OS drops its locks with its file descriptors
        proc.wait(timeout=10)
        with getattr(HostGate(path, timeout=2), side)():
            pass
    finally:
        stop(proc)


def test_gated_cpu_work_times_out_while_another_process_measures(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    proc, _ = start_gate_role("hold-measurement", path)
    try:
        with pytest.raises(DeviceError, match="--prunebench-host-gate off"), \
                use_host_gate(HostGate(path, 0.2)), cpu_work():
            pytest.fail("gated work ran during another process's measurement")
        with cpu_work():  # ungated again outside the block: runs at once
            pass
    finally:
        stop(proc)


def overlapping(sections: list[list[float]], window: list[float]) -> list[list[float]]:
    return [s for s in sections if s[0] < window[1] and s[1] > window[0]]


def test_work_started_during_a_measurement_waits_for_its_end(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    measure, _ = start_gate_role("measure", path, "1.0", str(tmp_path / "window.json"))
    work, first = start_gate_role("work", path, "2.0", str(tmp_path / "sections.json"))
    try:
        assert measure.wait(timeout=30) == 0 and work.wait(timeout=30) == 0
    finally:
        stop(measure)
        stop(work)
    window = json.loads((tmp_path / "window.json").read_text())
    sections = json.loads((tmp_path / "sections.json").read_text())
    work_started = float(first.removeprefix("started "))
    assert work_started < window[1]  # the work process was up while the measurement held the gate
    assert sections, "the work process ran no section"
    assert overlapping(sections, window) == []
    assert sections[0][0] >= window[1]  # its first section waited for the measurement


def test_a_measurement_pauses_running_work_and_work_resumes_after(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    work, _ = start_gate_role("work", path, "2.5", str(tmp_path / "sections.json"))
    try:
        time.sleep(0.5)  # sections are running
        measure, _ = start_gate_role("measure", path, "1.0", str(tmp_path / "window.json"))
        try:
            assert measure.wait(timeout=30) == 0  # not starved by the stream of shared sections
        finally:
            stop(measure)
        assert work.wait(timeout=30) == 0
    finally:
        stop(work)
    window = json.loads((tmp_path / "window.json").read_text())
    sections = json.loads((tmp_path / "sections.json").read_text())
    assert overlapping(sections, window) == []
    assert any(end <= window[0] for _start, end in sections), "no section ran before the measurement"
    assert any(start >= window[1] for start, _end in sections), "no section ran after the measurement"
