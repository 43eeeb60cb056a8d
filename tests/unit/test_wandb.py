"""Weights & Biases: one offline run per case, read back from its `run-*.wandb` file and compared with the
pytest-benchmark JSON; options and their refusals; a broken W&B set-up never costs a record.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/plugin/test_wandb.py, tests/e2e/test_wandb.py.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from option_parsing import OptionParsing, assert_one_line
from wandb_offline import BLOCK, CHUNK_HEADER, FILE_HEADER, FULL, CorruptRunFile, read_run

from pytest_prunebench.settings import new_wandb_group, wandb_api_key_configured, wandb_mode
from pytest_prunebench.tracking import (
    history_rows,
    run_config,
    run_summary,
)

# -- pure parts -----------------------------------------------------------------------------------------------


def test_an_api_key_is_found_in_the_environment_or_netrc(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine example.org login user password secret\n")
    netrc.chmod(0o600)
    assert not wandb_api_key_configured({"NETRC": str(netrc)})
    assert wandb_api_key_configured({"NETRC": str(netrc), "WANDB_API_KEY": "k" * 40})
    netrc.write_text("machine api.wandb.ai login user password " + "k" * 40 + "\n")
    assert wandb_api_key_configured({"NETRC": str(netrc)})
    assert not wandb_api_key_configured({"NETRC": str(netrc), "WANDB_BASE_URL": "https://wandb.example.org"})
    assert not wandb_api_key_configured({"NETRC": str(tmp_path / "missing")})


@pytest.mark.parametrize(("text", "mode"), [("offline", "offline"), (" Online ", "online"), ("disabled", "disabled"),
                                             ("dryrun", "offline")])
def test_wandb_mode_values(text: str, mode: str) -> None:
    assert wandb_mode(text) == mode


def test_a_new_group_is_unique_and_sorts_by_time() -> None:
    first, second = new_wandb_group(), new_wandb_group()
    assert first.startswith("prunebench-") and len(first) == len("prunebench-20261121-103000-1a2b")
    assert first != second


INFO = {"model": "resnet20", "dataset": "digits", "device": "CPU", "precision": "f32", "schedule": "s",
        "schedule_hash": "abc", "epochs": 2, "top1": 91.5, "params": 1000, "collapsed": False,
        "collapse_reason": None, "onnx_path": "/x.onnx", "measured_at": [10.0, 12.5], "sparsity.p": 0.5,
        "kind.p": "filters", "ranker.p": "l1"}


def test_config_holds_the_case_and_summary_its_figures() -> None:
    config = run_config(INFO, "test_suite")
    assert config == {"model": "resnet20", "dataset": "digits", "device": "CPU", "precision": "f32", "schedule": "s",
                      "schedule_hash": "abc", "epochs": 2, "sparsity.p": 0.5, "kind.p": "filters",
                      "ranker.p": "l1", "suite": "test_suite"}
    summary = run_summary({**INFO, "latency_speedup_ci": [1.1, 1.3]}, (0.001, 0.002, 0.003, 0.004))
    assert (summary["latency_speedup_ci_low"], summary["latency_speedup_ci_high"]) == (1.1, 1.3)
    assert summary["top1"] == 91.5 and summary["params"] == 1000 and summary["collapsed"] is False
    assert summary["latency_median_ms"] == pytest.approx(2.5) and summary["latency_mean_ms"] == pytest.approx(2.5)
    assert summary["latency_p90_ms"] == pytest.approx(3.7) and summary["latency_rounds"] == 4
    assert (summary["measured_start"], summary["measured_end"]) == (10.0, 12.5)
    assert not set(summary) & set(config)  # a figure is in one place
    assert "collapse_reason" not in summary and "onnx_path" not in summary


def test_history_rows_are_one_per_epoch() -> None:
    rows = history_rows(({"epoch": 0, "loss": 1.5, "top1": 40.0, "lr": 0.01, "seconds": 2.0},
                         {"epoch": 1, "loss": 0.5, "top1": 80.0, "lr": 0.005, "seconds": 2.0}))
    assert rows == [{"epoch": 0, "retrain/loss": 1.5, "retrain/top1": 40.0, "retrain/lr": 0.01},
                    {"epoch": 1, "retrain/loss": 0.5, "retrain/top1": 80.0, "retrain/lr": 0.005}]


def test_the_run_file_reader_detects_corruption(tmp_path: Path) -> None:
    from wandb.proto import wandb_internal_pb2

    record = wandb_internal_pb2.Record()
    record.run.run_id, record.run.display_name, record.run.run_group = "abc", "case", "g"
    payload = record.SerializeToString()
    chunk = CHUNK_HEADER.pack(zlib.crc32(payload, zlib.crc32(bytes([FULL]))), len(payload), FULL) + payload
    path = tmp_path / "run-abc.wandb"
    path.write_bytes(FILE_HEADER.pack(b":W&B", 0xBEE1, 0) + chunk)
    run = read_run(path)
    assert (run.run_id, run.name, run.group) == ("abc", "case", "g")
    path.write_bytes(FILE_HEADER.pack(b":W&B", 0xBEE1, 0) + chunk[:-1] + bytes([chunk[-1] ^ 0xFF]))
    with pytest.raises(CorruptRunFile, match="checksum mismatch"):
        read_run(path)
    path.write_bytes(b"PK\x03\x04" + bytes(BLOCK))
    with pytest.raises(CorruptRunFile, match="not a W&B run file"):
        read_run(path)


# -- the W&B options, parsed and resolved in-process -------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "args", "needle", "message"),
    [
        ({}, ["--wandb-mode", "online"], "--wandb-mode", "*--wandb-mode online: no W&B API key (set WANDB_API_KEY or "
                                                         "run `wandb login`)*"),
        ({"WANDB_MODE": "online"}, [], "--wandb-mode", "*--wandb-mode online: no W&B API key*"),
        ({"WANDB_MODE": "sometimes"}, [], "WANDB_MODE", "*environment variable WANDB_MODE='sometimes': 'sometimes': "
                                                        "use online, offline (the default) or disabled*"),
        ({}, ["--wandb-mode", "loud"], "--wandb-mode", "*--wandb-mode: 'loud': use online, offline (the default) or "
                                                       "disabled*"),
    ],
    ids=["online-option-without-key", "online-env-without-key", "unknown-env-mode", "unknown-option-mode"],
)
def test_wandb_modes_that_cannot_work_are_usage_errors(parsing: OptionParsing, wandb_env: None,
                                                       monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                                       args: list[str], needle: str, message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert_one_line(parsing.usage_error("--wandb-project", "check", *args), needle, message)


def test_ini_keys_configure_wandb(parsing: OptionParsing, wandb_env: None) -> None:
    parsing.makeini("[pytest]\nprunebench_wandb_project = from-ini\nprunebench_wandb_log_model = maybe\n")
    assert_one_line(parsing.usage_error(), "ini key", "*ini key prunebench_wandb_log_model = 'maybe': use true or "
                                                      "false*")
