"""Exclusive device access across processes (pytest-xdist workers, parallel pytest runs) with filelock."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from threading import Lock
from typing import Any

from .errors import DeviceError, PrunebenchError
from .threads import wait_for_background

_registry_guard = Lock()
_locks: dict[str, object] = {}


def default_lock_path(device: str) -> Path:
    """One lock per device name, in the system temp dir, shared by every process on this host."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", device)
    return Path(tempfile.gettempdir()) / f"prunebench-device-{slug}.lock"


def _shared_lock(path: Path) -> object:
    """Two FileLock objects on one path in one process block each other: hand out one instance per path."""
    from filelock import FileLock

    key = str(path.resolve())
    with _registry_guard:
        if key not in _locks:
            _locks[key] = FileLock(key)
        return _locks[key]


def held_elsewhere(path: Path) -> bool:
    """Whether another process holds the file lock at `path` right now (a free lock is taken and released at once;
    through this process's one instance per path, so a lock this process holds counts as free)."""
    from filelock import Timeout

    lock = _shared_lock(path)
    try:
        lock.acquire(timeout=0)  # type: ignore[attr-defined]
    except Timeout:
        return True
    except OSError:
        return False  # the real acquisition reports it
    lock.release()  # type: ignore[attr-defined]
    return False


@contextmanager
def _held(open_lock: Callable[[], Any], acquire: str, timeout: float, busy: Callable[[], str],
          unusable: Callable[[OSError], str], error: type[PrunebenchError] = DeviceError) -> Iterator[None]:
    """Hold a filelock lock for the block; a timeout (`busy`) or an unusable lock file is one line of `error`."""
    from filelock import Timeout

    try:
        lock = open_lock()
        getattr(lock, acquire)(timeout=timeout)
    except Timeout:
        raise error(busy()) from None
    except OSError as exc:
        raise error(unusable(exc)) from None
    try:
        yield
    finally:
        lock.release()


def holder_path(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + ".holder")


def describe_holder(lock_path: Path) -> str:
    """Who holds `lock_path`, as its holder wrote it on acquiring (`pid 123 on host since 10:20:30: what`)."""
    try:
        text = holder_path(lock_path).read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "a process that did not say who it is"


@contextmanager
def file_lock(path: Path, timeout: float, what: str, busy_hint: str, unusable_hint: str,
              error: type[PrunebenchError] = DeviceError) -> Iterator[None]:
    """An exclusive cross-process lock on `path` for the block, its holder noted beside it (`<path>.holder`).

    The kernel releases the lock when its holder dies (kill -9 included), so it never stays stuck; a lock held
    by a live process past `timeout` is one line naming the lock file and its holder.
    """
    with _held(lambda: _shared_lock(path), "acquire", timeout,
               lambda: f"{what} {path} is still held after {timeout:g} s by {describe_holder(path)}; {busy_hint}",
               lambda exc: f"cannot create {what} {path} ({exc.strerror or exc}); {unusable_hint}", error):
        _write_holder(path)
        yield


def _write_holder(path: Path) -> None:
    import contextlib
    import os
    import socket
    import time

    note = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}"
    with contextlib.suppress(OSError):  # best effort: a lock without its holder note still locks
        holder_path(path).write_text(note, encoding="utf-8")


@contextmanager
def device_lock(path: Path, timeout: float) -> Iterator[None]:
    with file_lock(path, timeout, "device lock", "wait for it, or raise --prunebench-lock-timeout",
                   "set --prunebench-lock to a writable path"):
        yield


# -- the host gate: measurement excludes other processes' CPU-heavy work -----------------------------------------

# Devices that compute on (or share power and memory bandwidth with) the host CPU. Training in another process
# slowed a CPU measurement 1.7x at the median and 6x at p90 (DESIGN.md), so their measurements pause host work.
HOST_DEVICE_FAMILIES = frozenset({"CPU", "GPU", "AUTO", "MULTI", "HETERO", "BATCH"})
HOST_GATE_MODES = ("auto", "on", "off")


def device_family(device: str) -> str:
    """An OpenVINO device name without its index or its targets: `GPU.1` -> `GPU`, `AUTO:NPU,CPU` -> `AUTO`."""
    return re.split(r"[.:]", device, maxsplit=1)[0]


def shares_host(device: str) -> bool:
    """`CPU`, `GPU.1`, `AUTO:NPU,CPU`, ... compute on this host; `NPU` and `MYRIAD` do not."""
    return device_family(device) in HOST_DEVICE_FAMILIES


def default_host_gate_path() -> Path:
    """One host gate per machine (every device on it shares the CPU), in the system temp dir."""
    return Path(tempfile.gettempdir()) / "prunebench-host.db"


class HostGate:
    """A cross-process read-write lock: CPU-heavy work holds it shared, a measurement holds it exclusively.

    Work takes it in short sections (one training step, one evaluation batch, one export), so a measurement
    waits at most one section for work already running, and SQLite's writer preference stops new sections from
    starting until the measurement is done: other processes pause at their next safe point and resume after.
    """

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._instance: object | None = None

    def _lock(self) -> object:
        from filelock import ReadWriteLock

        if self._instance is None:  # filelock keeps one instance per path, but only while someone holds it
            self._instance = ReadWriteLock(self.path)
        return self._instance

    @contextmanager
    def work(self) -> Iterator[None]:
        with self._hold("acquire_read", "work paused for a measurement"):
            yield

    @contextmanager
    def measurement(self) -> Iterator[None]:
        with self._hold("acquire_write", "a measurement waited for CPU-heavy work"):
            yield

    def _hold(self, acquire: str, waiting: str) -> AbstractContextManager[None]:
        return _held(self._lock, acquire, self.timeout,
                     lambda: f"host gate {self.path}: {waiting} longer than {self.timeout:g} s; another process holds "
                     f"it (raise --prunebench-lock-timeout, or --prunebench-host-gate off)",
                     lambda exc: f"cannot open the host gate {self.path} ({exc}); the temp dir must be writable")


@contextmanager
def exclusive_measurement(device: str, lock_path: Path | None, timeout: float,
                          host_gate: HostGate | None) -> Iterator[None]:
    """What every measurement holds: the device's lock (`lock_path`, else the default one) and, when given,
    the host gate exclusively, so no other process's gated CPU work runs during the window. This process's own
    background work finishes first."""
    wait_for_background()
    with device_lock(lock_path or default_lock_path(device), timeout):
        if host_gate is None:
            yield
            return
        with host_gate.measurement():
            yield


def host_gate_for(device: str, timeout: float) -> HostGate | None:
    """The host gate a measurement on `device` takes outside a pytest session: when the device shares the host."""
    return HostGate(default_host_gate_path(), timeout) if shares_host(device) else None


_active_host_gate: ContextVar[HostGate | None] = ContextVar("prunebench_host_gate", default=None)


@contextmanager
def use_host_gate(host_gate: HostGate | None) -> Iterator[None]:
    """Within the block, `cpu_work()` sections take `host_gate` (None: they run ungated)."""
    token = _active_host_gate.set(host_gate)
    try:
        yield
    finally:
        _active_host_gate.reset(token)


@contextmanager
def cpu_work() -> Iterator[None]:
    """A safe point: CPU-heavy work in the block waits while another process measures on this host."""
    host_gate = _active_host_gate.get()
    if host_gate is None:
        yield
        return
    with host_gate.work():
        yield
