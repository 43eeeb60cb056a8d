"""The `prunebench` command line: `layers` tables with Distiller's MAC counts and `check` on schedule files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# --- the installed console script ---------------------------------------------------------------------------------


def test_console_script() -> None:
    script = Path(sys.executable).parent / "prunebench"
    if not script.exists():
        pytest.skip(f"console script not installed at {script}")
    done = subprocess.run([str(script), "layers", "resnet20"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "total: 22 layers, 40,813,184 MACs, 270,896 conv+fc weights"
