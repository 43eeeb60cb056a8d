"""How this process shares the host's CPUs: torch's thread count per pytest-xdist worker, and background threads
that every measurement of this process waits for (lock.exclusive_measurement)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from contextlib import suppress
from threading import Thread

_background: list[Thread] = []

# Thread counts the user chose for torch's OpenMP/MKL pools: left as they are.
THREAD_ENVIRONMENT = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def worker_threads(workers: int, cpus: int, environ: Mapping[str, str]) -> int | None:
    """Torch threads for one of `workers` pytest-xdist workers on this host: the CPUs split between them.

    Each worker's torch would otherwise start one thread per CPU: two workers training on 2 CPUs then run 4
    threads that preempt each other. None: not a worker (0), or the user set a thread count.
    """
    if workers < 1 or any(environ.get(key) for key in THREAD_ENVIRONMENT):
        return None
    return max(1, cpus // workers)


@functools.cache
def share_cpus_with_workers(workers: int) -> int:
    """Once per process: one of `workers` xdist workers runs torch on its share of the CPUs; returns torch's
    thread count. The count comes from xdist's workerinput: a process started by a worker inherits its
    environment (PYTEST_XDIST_WORKER_COUNT) without being one."""
    import torch

    threads = worker_threads(workers, len(os.sched_getaffinity(0)), os.environ)
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def in_background(work: Callable[[], None], name: str) -> Thread:
    """Run `work` (start-up work that would otherwise add to a run's wall time, such as an import) in a
    daemon thread. Every later measurement of this process waits for it to end; its failure is ignored, since
    whoever needs the result does the work again in the foreground and reports any error there."""

    def guarded() -> None:
        with suppress(Exception):  # see the docstring: the foreground repeats the work and reports its errors
            work()

    thread = Thread(target=guarded, name=f"prunebench-{name}", daemon=True)
    _background.append(thread)
    thread.start()
    return thread


def wait_for_background() -> None:
    """Until every thread `in_background` started has ended (a measurement must not share the CPUs with them)."""
    for thread in _background:
        thread.join()
