"""The device lock: one file per device, real exclusion between processes, re-entrant within one, clear refusals."""

from __future__ import annotations

import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pytest_prunebench.errors import DeviceError
from pytest_prunebench.lock import default_lock_path, device_lock

# Holds the lock at argv[1] until killed; "held" on stdout once it has it.
HOLDER = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


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


def test_nested_locks_on_one_path_do_not_deadlock(tmp_path: Path) -> None:
    path = tmp_path / "device.lock"
    start = time.monotonic()
    with device_lock(path, 1), device_lock(path, 1), device_lock(tmp_path / "." / "device.lock", 1):
        entered = True
    assert entered
    assert time.monotonic() - start < 1.0  # no waiting for the timeout on the inner acquisitions
    with device_lock(path, 0):  # fully released afterwards
        pass


def test_the_lock_is_released_when_the_body_raises(tmp_path: Path) -> None:
    path = tmp_path / "device.lock"
    with pytest.raises(RuntimeError, match="boom"), device_lock(path, 1):
        raise RuntimeError("boom")
    proc = start_holder(path)  # another process can take it now
    proc.kill()
    proc.communicate(timeout=10)


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
