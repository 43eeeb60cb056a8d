"""pytester runs of the plugin: options, ini keys, usage errors, parametrisation, clear case failures.

None of these trains a model: each stops at a usage error, at collection, or before training starts.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_plugin.py, tests/plugin/test_plugin.py.
"""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_plugin_imports_no_heavy_library() -> None:
    code = ("import sys, pytest_prunebench.plugin; "
            "print(sorted(m for m in ('torch', 'openvino', 'wandb', 'numpy', 'yaml') if m in sys.modules))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
