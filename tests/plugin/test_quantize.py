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

# -- the plugin: options, NNCF missing, an int8 session and its rerun ------------------------------------------------

def _assert_usage_error(result: pytest.RunResult, line: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stderr.str()
    result.stderr.fnmatch_lines([line])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


@pytest.mark.parametrize(("args", "line"), [
    (["--prunebench-precision", "int4"], "*--prunebench-precision: 'int4' is not an inference precision or quantized*"),
    (["--prunebench-max-drop", "0"], "*--prunebench-max-drop: 0 must be a finite number greater than 0; use top1*"),
    (["--prunebench-max-drop", "100"], "*--prunebench-max-drop: '100': use top1 points above 0 and below 100*"),
    (["--prunebench-max-drop", "nan"], "*--prunebench-max-drop: nan must be a finite number greater than 0*"),
    (["--prunebench-calibration", "0"], "*--prunebench-calibration: '0' must be at least 1*"),
    (["--prunebench-precision", "int8", "--prunebench-max-drop", "2"],
     "*--prunebench-max-drop applies to --prunebench-precision int8-accuracy, not int8*"),
    (["--prunebench-precision", "bf16", "--prunebench-calibration", "64"],
     "*--prunebench-calibration applies to quantized precisions (int8, int8-accuracy), not bf16*"),
])
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: list[str], line: str) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    _assert_usage_error(pytester.runpytest(*args), line)


def test_int8_without_nncf_is_one_line_before_anything_runs(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import sys\nsys.modules['nncf'] = None  # as if NNCF were not installed\n")
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess("--prunebench-precision", "int8", "-p", "no:cacheprovider")
    _assert_usage_error(result, "*--prunebench-precision int8 needs NNCF, which cannot be imported here*"
                                "pip install -c constraints.txt nncf==3.4.0*")


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
