"""A run needs no network and leaks no secret: a case with W&B and a report, in a network namespace of its own
(no interface but a loopback that is down) and with secrets in its environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import FILTERS_SCHEDULE, SCHEDULE_SUITE, seed_baselines, write_schedules

SECRETS = {"WANDB_API_KEY": "wandb-key-0f1e2d3c4b5a69788796a5b4c3d2e1f0aa55", "MY_SERVICE_TOKEN": "tok-7Hq2Zr9Lp4"}


def test_a_case_runs_without_network_and_writes_no_secret(tmp_path: Path, shared_cache: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {probe.stderr.strip()}")
    write_schedules(tmp_path, filters=FILTERS_SCHEDULE + "prunebench:\n  epochs: 0\n")
    (tmp_path / "test_suite.py").write_text(SCHEDULE_SUITE, encoding="utf-8")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("WANDB")}
    environment.update(SECRETS, HOME=str(tmp_path / "home"))
    command = [sys.executable, "-m", "pytest", "test_suite.py", "--prunebench-data=synthetic",
               "--prunebench-baseline-epochs=1", "--prunebench-rounds=10", "--prunebench-warmup=2",
               f"--prunebench-cache={tmp_path / 'cache'}", "--prunebench-artifacts=artifacts",
               "--benchmark-json=out.json", "--wandb-project=isolated", "--wandb-log-model",
               "--prunebench-report=report", "-p", "no:cacheprovider"]
    seed_baselines(shared_cache, tmp_path / "cache")  # the session's trained baseline: no training in this test
    result = subprocess.run(["unshare", "-rn", *command], cwd=tmp_path, env=environment, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "W&B run" in result.stdout and "report:" in result.stdout
    written = [path for path in tmp_path.rglob("*") if path.is_file() and "schedules" not in path.parts]
    assert any(path.name.endswith(".wandb") for path in written) and (tmp_path / "out.json").is_file()
    for path in written:
        content = path.read_bytes()
        for name, secret in SECRETS.items():
            assert secret.encode() not in content, f"{name} was written into {path}"
