"""Exclusive device access across processes (pytest-xdist workers, parallel pytest runs) with filelock."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from threading import Lock

from .errors import DeviceError

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


@contextmanager
def device_lock(path: Path, timeout: float) -> Iterator[None]:
    from filelock import Timeout

    lock = _shared_lock(path)
    try:
        lock.acquire(timeout=timeout)  # type: ignore[attr-defined]
    except Timeout:
        raise DeviceError(f"device lock {path} is still held by another process after {timeout:g} s; wait for "
                          f"it, or raise --prunebench-lock-timeout") from None
    except OSError as exc:
        raise DeviceError(f"cannot create device lock {path} ({exc}); set --prunebench-lock to a writable path") \
            from None
    try:
        yield
    finally:
        lock.release()  # type: ignore[attr-defined]
