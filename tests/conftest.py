"""Shared fixtures: tiny settings so pytester and end-to-end runs take seconds, not minutes."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy  # noqa: F401
import pytest
import torch
from tiny import tiny_arguments

from pytest_prunebench import device

pytest_plugins = ["pytester"]
# pytester's in-process runs restore sys.modules afterwards; C extensions (numpy, torch, openvino) first
# imported inside such a run cannot be loaded again, so the outer process imports them once, here.
device.openvino()
# Stepping an LR scheduler (schedules check theirs on a throwaway optimizer) imports torch._dynamo, which registers
# torch operators once per process: a second import after an in-process run restored sys.modules is an error.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.optim.lr_scheduler.StepLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), 1).step()

@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One baseline cache per test process (each xdist worker has its own): each tiny baseline trains once there."""
    return tmp_path_factory.mktemp("prunebench-cache")


@pytest.fixture
def tiny_args(shared_cache: Path) -> list[str]:
    return tiny_arguments(shared_cache)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real redis-server (Debian's package; .ci/run installs it) on a free loopback port, for the session."""
    import redis_servers

    try:
        server, port = redis_servers.start(tmp_path_factory.mktemp("redis"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield port
    server.terminate()
    server.wait(10)


@pytest.fixture
def redis_url(redis_server: int) -> str:
    """The session's redis-server, emptied for this test."""
    import redis

    client = redis.Redis(port=redis_server)
    client.flushall()
    client.close()
    return f"redis://127.0.0.1:{redis_server}/0"


@pytest.fixture
def wandb_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real W&B account, config or cache of the user's is read or written."""
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_DIR", "WANDB_PROJECT", "WANDB_ENTITY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))
    netrc = tmp_path / "netrc"
    netrc.write_text("")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))

