"""The session's reference dense latency: what drift-corrected latencies (`latency_ms_rel`) are expressed in.

On a shared VM the median of one compiled model moves by 20-60% between measurement windows, so a case's absolute
median ranks the host's drift as much as the pruning. What does not drift is each case's own ratio, pruned over
dense, timed interleaved in one window (`latency_speedup`). A case's drift-corrected latency is that ratio times one
dense median fixed for the whole session: the **first** dense measurement of the model in the session, on that
device and precision. It is settled once and never revised, so every case of the session (every xdist worker, every
device worker behind a broker) is scaled by the same number, and a case keeps the figure it was recorded with.

Sharing: one process (no xdist) keeps it in memory. Under xdist the controller hands its workers a directory (see
plugin.pytest_configure_node); the first worker to measure the dense model publishes its median there, atomically
(a hard link that fails when the file exists), and every later worker reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Reference:
    """One dense median the session's drift-corrected latencies are scaled to."""

    latency_ms: float
    measured_at: float  # unix seconds: the start of the window it was measured in
    by: str  # host:pid of the process that measured it


def reference_key(model: str, dataset: str, device: str, precision: str | None) -> str:
    """What a reference is the dense latency of: the model's architecture on its input, on one device."""
    return f"{model}|{dataset}|{device}|{precision or 'default'}"


class ReferenceStore:
    """The session's references: the first one settled for a key wins, in this process or in `directory`."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._settled: dict[str, Reference] = {}

    def settle(self, key: str, latency_ms: float, measured_at: float) -> Reference:
        """The reference for `key`: the one already settled, else this measurement, which becomes it."""
        if key not in self._settled:
            mine = Reference(float(latency_ms), float(measured_at), f"{socket.gethostname()}:{os.getpid()}")
            self._settled[key] = mine if self.directory is None else self._publish(key, mine)
        return self._settled[key]

    def _publish(self, key: str, mine: Reference) -> Reference:
        assert self.directory is not None
        document = publish_first(self.directory, key, asdict(mine))
        return Reference(float(document["latency_ms"]), float(document["measured_at"]), str(document["by"]))


def _published_path(directory: Path, key: str) -> Path:
    return directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def published(directory: Path | None, key: str) -> dict[str, Any] | None:
    """What a process of the session published under `key`, or None."""
    if directory is None:
        return None
    try:
        return dict(json.loads(_published_path(directory, key).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None


def publish_first(directory: Path, key: str, document: dict[str, Any]) -> dict[str, Any]:
    """Publish `document` under `key` unless a process of the session did first: the published one either way."""
    directory.mkdir(parents=True, exist_ok=True)
    target = _published_path(directory, key)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps({"key": key, **document}), encoding="utf-8")
    try:
        os.link(partial, target)  # atomic, and fails when another process published first
    except FileExistsError:
        pass
    finally:
        partial.unlink(missing_ok=True)
    return dict(json.loads(target.read_text(encoding="utf-8")))
