"""The `prunebench` command line: `layers` tables with Distiller's MAC counts and `check` on schedule files.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_cli.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_tables import table

from pytest_prunebench.cli import main

# --- the installed console script ---------------------------------------------------------------------------------


def test_console_script() -> None:
    script = Path(sys.executable).parent / "prunebench"
    if not script.exists():
        pytest.skip(f"console script not installed at {script}")
    done = subprocess.run([str(script), "layers", "resnet20"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "total: 22 layers, 40,813,184 MACs, 270,896 conv+fc weights"

ROOT = Path(__file__).resolve().parents[2]
SCHEDULES = sorted((ROOT / "schedules").glob("*.yaml"))


# --- layers -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "convs", "macs", "weights"),
    [
        ("resnet56", 57, "125,747,840", "851,504"),  # 55 block convs + stem + 2 downsample convs
        ("resnet56_cifar", 57, "125,747,840", "851,504"),
        ("resnet20", 21, "40,813,184", "270,896"),
    ],
)
def test_layers_table(capsys: pytest.CaptureFixture[str], model: str, convs: int, macs: str, weights: str) -> None:
    assert main(["layers", model]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    rows, total = table(out)
    kinds = [row["kind"] for row in rows]
    assert kinds.count("conv") == convs
    assert kinds.count("fc") == 1
    assert total == f"total: {convs + 1} layers, {macs} MACs, {weights} conv+fc weights"
    assert sum(int(row["macs"].replace(",", "")) for row in rows) == int(macs.replace(",", ""))


def test_layers_rows_name_the_schedule_layers(capsys: pytest.CaptureFixture[str]) -> None:
    main(["layers", "resnet56"])
    rows, _ = table(capsys.readouterr().out)
    by_name = {row["name"]: row for row in rows}
    assert list(by_name)[0] == "conv1"
    assert list(by_name)[-1] == "fc"
    downsample = by_name["layer2.0.downsample.0"]
    assert (downsample["kind"], downsample["shape"], downsample["filters"], downsample["channels"]) == \
        ("conv", "32x16x1x1", "32", "16")
    assert downsample["macs"] == "131,072"  # 16x16 output x 32x16 weights
    assert "layer3.0.downsample.0" in by_name
    assert "layer1.0.downsample.0" not in by_name  # stage 1 keeps its width: identity shortcut
    assert by_name["fc"]["macs"] == "640"


# --- check --------------------------------------------------------------------------------------------------------


def test_check_the_projects_own_schedules(capsys: pytest.CaptureFixture[str]) -> None:
    assert SCHEDULES, f"no schedules in {ROOT / 'schedules'}"
    assert main(["check", *map(str, SCHEDULES)]) == 0
    out, err = capsys.readouterr()
    assert "error:" not in err
    lines = out.splitlines()
    assert len(lines) == len(SCHEDULES)
    for line, path in zip(lines, SCHEDULES, strict=True):
        assert line.startswith(f"ok: {path}: ")
        assert re.search(r": \d+ pruner\(s\) on (resnet(20|56)|mobilenetv2)$", line), line
