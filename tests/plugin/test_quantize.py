"""The deployment stage (quantize.py) for real: NNCF's post-training quantization and FP16 weight compression of this
project's ONNX exports, the IR files read back without the project (ElementTree over the .xml), the artifact cache,
and every bad input of the precision, calibration and max_drop options and schedule keys.

This file holds the plugin layer's tests (pytester runs); the topic's other tests are in
tests/unit/test_quantize.py, tests/e2e/test_quantize.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from quantized_ir import ir_constants
from tiny import FILTERS_SCHEDULE, SCHEDULE_SUITE, seed_baselines, write_schedules

from pytest_prunebench import quantize

# -- the plugin: an int8 session and its rerun -----------------------------------------------------------------------


def test_an_int8_session_records_the_quantized_models_and_a_rerun_does_not_quantize_again(
        pytester: pytest.Pytester, tiny_args: list[str], shared_cache: Path) -> None:
    seed_baselines(shared_cache, pytester.path / "cache")  # the session's tiny baseline; the rest built here
    write_schedules(pytester.path, filters=FILTERS_SCHEDULE)
    pytester.makepyfile(test_suite=SCHEDULE_SUITE)
    args = (*tiny_args, "--prunebench-epochs", "0", "--prunebench-precision", "int8", "--prunebench-calibration",
            "64", "--prunebench-artifacts=artifacts", f"--prunebench-cache={pytester.path / 'cache'}")
    first = pytester.runpytest_subprocess(*args, "--benchmark-json=first.json", "-s")
    first.assert_outcomes(passed=1)
    assert first.stdout.str().count("converting to int8") == 2  # the dense reference and the pruned model
    (info,) = [r["extra_info"] for r in json.loads((pytester.path / "first.json").read_text())["benchmarks"]]
    assert info["precision"] == "int8" and info["precision_source"] == "option"
    assert info["calibration_images"] == 64 and info["nncf_version"] == quantize.nncf_version()
    assert info["quantized_layers"] == 22 and info["float_layers"] == 0 and info["deployed_cache"] == "built"
    xml = Path(info["ir_path"])
    assert xml.suffix == ".xml" and info["ir_bytes"] == xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
    assert ir_constants(xml)["i8"] == 22
    assert Path(info["onnx_path"]).is_file() and info["onnx_bytes"] > info["ir_bytes"]
    assert 0 <= info["top1_float"] <= 100 and 0 <= info["top1_dense_float"] <= 100
    assert Path(info["layers_path"]).name.endswith(".int8.layers.json")  # per-layer device times of the INT8 model
    layers = json.loads(Path(info["layers_path"]).read_text())["layers"]
    assert sum(1 for layer in layers if layer["device_ms"] > 0) >= 11
    second = pytester.runpytest_subprocess(*args, "--benchmark-json=second.json", "-s")
    second.assert_outcomes(passed=1)
    assert "converting to int8" not in second.stdout.str()
    (again,) = [r["extra_info"] for r in json.loads((pytester.path / "second.json").read_text())["benchmarks"]]
    assert again["deployed_cache"] == "hit" and again["precision"] == "int8"
    assert again["top1"] == info["top1"]  # the same quantized model, measured again
