"""The device lock: one file per device, real exclusion between processes, re-entrant within one, clear refusals.

The host gate: a read-write lock across processes, CPU-heavy work shared, a measurement exclusive.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/e2e/test_lock.py.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from pytest_prunebench.errors import DeviceError
from pytest_prunebench.lock import (
    HostGate,
    cpu_work,
    default_host_gate_path,
    default_lock_path,
    device_lock,
    shares_host,
    use_host_gate,
)


@pytest.mark.parametrize(
    ("device", "file_name"),
    [
        ("CPU", "prunebench-device-CPU.lock"),
        ("GPU.1", "prunebench-device-GPU.1.lock"),
        ("HETERO:GPU,CPU", "prunebench-device-HETERO_GPU_CPU.lock"),
        ("AUTO:GPU.0,CPU", "prunebench-device-AUTO_GPU.0_CPU.lock"),
        ("../../etc/passwd", "prunebench-device-.._.._etc_passwd.lock"),
    ],
)
def test_default_lock_path_is_one_sanitised_file_in_the_temp_dir(device: str, file_name: str) -> None:
    path = default_lock_path(device)
    assert path.parent == Path(tempfile.gettempdir())
    assert path.name == file_name


def test_default_lock_paths_differ_per_device() -> None:
    assert default_lock_path("CPU") != default_lock_path("GPU")
    assert default_lock_path("GPU.0") != default_lock_path("GPU.1")


def test_nested_locks_on_one_path_do_not_deadlock(tmp_path: Path) -> None:
    path = tmp_path / "device.lock"
    start = time.monotonic()
    with device_lock(path, 1), device_lock(path, 1), device_lock(tmp_path / "." / "device.lock", 1):
        entered = True
    assert entered
    assert time.monotonic() - start < 1.0  # no waiting for the timeout on the inner acquisitions
    with device_lock(path, 0):  # fully released afterwards
        pass


def test_a_missing_lock_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "device.lock"
    with device_lock(path, 1):
        assert path.parent.is_dir()


@pytest.mark.parametrize("where", ["under_a_file", "a_directory"])
def test_an_unusable_lock_path_is_a_device_error(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("not a directory", encoding="utf-8")
    (tmp_path / "dir").mkdir()
    path = tmp_path / "file" / "x.lock" if where == "under_a_file" else tmp_path / "dir"
    start = time.monotonic()
    with pytest.raises(DeviceError) as info, device_lock(path, timeout=5):
        pytest.fail("acquired an unusable lock path")
    message = str(info.value)
    assert message.startswith(f"cannot create device lock {path} (")
    assert "--prunebench-lock to a writable path" in message
    assert "\n" not in message
    assert time.monotonic() - start < 2.0  # refused at once, not reported as contention after the timeout


@pytest.mark.parametrize("device", ["CPU", "GPU", "GPU.1", "AUTO", "AUTO:NPU,CPU", "HETERO:GPU,CPU",
                                    "MULTI:GPU.0,GPU.1", "BATCH:GPU(4)"])
def test_devices_on_the_host_share_it(device: str) -> None:
    assert shares_host(device)


@pytest.mark.parametrize("device", ["NPU", "MYRIAD", "NPU.0", "GNA", "CPUX", "HDDL:CPU"])
def test_devices_off_the_host_do_not_share_it(device: str) -> None:
    assert not shares_host(device)


def test_default_host_gate_path_is_one_file_per_host_in_the_temp_dir() -> None:
    path = default_host_gate_path()
    assert path.parent == Path(tempfile.gettempdir())
    assert path.name == "prunebench-host.db"
    assert default_host_gate_path() == path


def test_cpu_work_outside_a_gate_runs_ungated(tmp_path: Path) -> None:
    path = tmp_path / "host_gate.db"
    host_gate = HostGate(path, 5)
    with cpu_work():
        pass
    with use_host_gate(None), cpu_work():
        pass
    with use_host_gate(host_gate):
        with use_host_gate(None), cpu_work():  # an inner None turns the gate off for its block
            pass
        assert not path.exists()
        with cpu_work():
            assert path.exists()  # the host gate is taken, so its database exists now
    path.unlink()
    with cpu_work():  # the host gate is no longer active after its block
        pass
    assert list(tmp_path.iterdir()) == []
