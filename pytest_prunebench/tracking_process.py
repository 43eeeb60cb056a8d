"""W&B runs written by a child process of the pytest process (`python -m pytest_prunebench.tracking_process`).

A session's first W&B run costs about 1.7 s of one core here (wandb's import, the modules its first `init`
imports, its service start; measured with benchmarks/harness.py P4). In the pytest process that time adds to the
session's wall time, since every case keeps the GIL or the cores busy. The child does it on the other core while
the first case loads torch, its schedule and its data; it then waits for finished cases. Every measurement of the
pytest process waits until the child is ready (`threads.in_background`), so its start never overlaps timing.

The protocol is one JSON object per line. The child sends {"ready": true} once, then one reply per request:
{"where": run directory or URL} or {"error": one line}. The parent sends one request per case. The end of its
stdin ends the child; it ignores SIGINT, so Ctrl-C in pytest leaves a run that is being written to finish.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from contextlib import suppress
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from .tracking import TrackedCase, TrackingError, WandbTarget

# How long the session's end waits for the child to exit: each run is already finished when its reply came.
EXIT_TIMEOUT_S = 30.0
# How long measurements wait for the child's start (about 1 s here; wandb gives up on its service after 30 s).
READY_TIMEOUT_S = 120.0


class TrackingProcess:
    """The pytest process's side: starts the child at once; `log` writes one case's run through it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # `ready` runs in a background thread, `log` in the main one
        self._ready = False
        self._failure: str | None = None
        try:
            self._child: subprocess.Popen[str] | None = subprocess.Popen(
                [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True, bufsize=1)
        except OSError as exc:
            self._child, self._failure = None, f"cannot start the W&B process ({exc})"

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def ready(self) -> None:
        """Wait until the child has imported wandb and started its service (or has failed to start)."""
        with self._lock:
            self._wait_ready()

    def log(self, target: WandbTarget, case: TrackedCase, suite: str, passed: bool) -> str:
        """The run's directory (offline) or URL (online); TrackingError with W&B's reason otherwise."""
        request = {"target": {**asdict(target), "directory": str(target.directory)}, "case": case.to_json(),
                   "suite": suite, "passed": passed}
        with self._lock:
            self._wait_ready()
            reply = self._exchange(json.dumps(request))
        if "error" in reply:
            raise TrackingError(reply["error"])
        return str(reply["where"])

    def close(self) -> None:
        """End the child's input: it exits after the run it is writing, if any."""
        if self._child is not None and self._child.stdin is not None:
            with suppress(OSError):
                self._child.stdin.close()

    def wait(self) -> None:
        """Wait for the child to exit (its wandb teardown); a child that hangs is killed."""
        if self._child is None:
            return
        self.close()
        try:
            self._child.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
        if self._child.stdout is not None:
            self._child.stdout.close()

    def _wait_ready(self) -> None:
        if self._ready or self._failure is not None or self._child is None or self._child.stdout is None:
            return
        started, _, _ = select.select([self._child.stdout], [], [], READY_TIMEOUT_S)
        if not started:
            self._failure = f"the W&B process did not start within {READY_TIMEOUT_S:g} s"
            self._child.kill()
            return
        reply = self._exchange(None)
        if reply.get("ready"):
            self._ready = True

    def _exchange(self, request: str | None) -> dict[str, Any]:
        """Send `request` (None: only read), then read one reply; a dead child is a failure from then on."""
        if self._failure is not None:
            return {"error": self._failure}
        assert self._child is not None and self._child.stdin is not None and self._child.stdout is not None
        try:
            if request is not None:
                self._child.stdin.write(request + "\n")
                self._child.stdin.flush()
            line = self._child.stdout.readline()
        except (OSError, ValueError) as exc:  # a closed pipe: the child is gone
            line = ""
            self._failure = f"the W&B process is gone ({exc})"
        if not line:
            code = self._child.wait()
            self._failure = self._failure or f"the W&B process exited (code {code})"
            return {"error": self._failure}
        try:
            return dict(json.loads(line))
        except (TypeError, ValueError):
            self._failure = f"the W&B process replied {line.strip()[:200]!r}"
            return {"error": self._failure}


def serve(requests: IO[str], replies: IO[str]) -> None:
    """The child's loop: warm up, say so, then write one run per request until the input ends."""
    from . import tracking

    with suppress(Exception):  # a broken wandb fails again in `log_case`, which reports why
        tracking.warm_up()
    _reply(replies, {"ready": True})
    for line in requests:
        request = json.loads(line)
        target = WandbTarget(**{**request["target"], "directory": Path(request["target"]["directory"])})
        try:
            where = tracking.log_case(target, TrackedCase.from_json(request["case"]), request["suite"],
                                      request["passed"])
        except Exception as exc:  # W&B raises many types (CommError, UsageError, OSError...): each is one line
            lines = str(exc).strip().splitlines()
            _reply(replies, {"error": lines[0] if lines else type(exc).__name__})
        else:
            _reply(replies, {"where": where})


def _reply(replies: IO[str], message: dict[str, Any]) -> None:
    replies.write(json.dumps(message) + "\n")
    replies.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pytest process handles Ctrl-C; the end of stdin ends this
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # wandb's own printing must not reach the replies
    serve(sys.stdin, replies)


if __name__ == "__main__":
    main()
