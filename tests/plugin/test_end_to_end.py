"""End-to-end runs on tiny settings: resnet20, synthetic data, a 1-epoch baseline, 20 timed inferences.

Everything is real: Torch-Pruning thinning, ONNX files checked by onnx.checker, OpenVINO compile and inference
on the CPU, pytest-benchmark JSON read back and by `pytest-benchmark compare`.

This file holds the plugin layer's tests (pytester runs); the topic's other tests are in
tests/e2e/test_end_to_end.py.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from resnet20_figures import FILTERS_MACS, RESNET20_MACS, conv_macs
from tiny import CHANNELS_SCHEDULE, FILTERS_SCHEDULE, write_schedules

REPO = Path(__file__).resolve().parents[2]
EXTRA_INFO_KEYS = {
    "model", "dataset", "device", "schedule", "epochs", "top1", "top5", "top1_pruned", "top1_dense", "params",
    "params_dense", "macs", "macs_dense", "onnx_bytes", "onnx_path", "throughput_fps", "latency_speedup",
    "mac_speedup", "collapsed", "precision", "latency_ms_rel", "latency_ms_ref",
}
# Writes which thread gathers the CPU info of pytest-benchmark's machine_info.
CPUINFO_PROBE = """
import threading

import cpuinfo

_get_cpu_info = cpuinfo.get_cpu_info


def get_cpu_info():
    with open("cpuinfo-calls.txt", "a") as out:
        out.write(threading.current_thread().name + "\\n")
    return _get_cpu_info()


cpuinfo.get_cpu_info = get_cpu_info
"""
# CHANNELS_SCHEDULE removes floor(0.25 * 64) = 16 input channels of layer3.1.conv2 (8x8 maps) and the same
# filters of layer3.1.conv1.
CHANNELS_MACS = RESNET20_MACS - 2 * conv_macs(8, 16, 64)


def run_suite(pytester: pytest.Pytester, tiny_args: list[str], *args: str) -> pytest.RunResult:
    shutil.copy(REPO / "bench_suites" / "test_schedules.py", pytester.path / "test_schedules.py")
    return pytester.runpytest_subprocess(*tiny_args, "--prunebench-artifacts=artifacts", *args)


def test_schedule_suite_records_every_case_for_pytest_benchmark(pytester: pytest.Pytester,
                                                                 tiny_args: list[str]) -> None:
    gated = CHANNELS_SCHEDULE + "  max_latency_ms: 0.000001\n"  # no device is that fast: this case must fail
    write_schedules(pytester.path, filters=FILTERS_SCHEDULE, gated=gated)
    pytester.makeconftest(CPUINFO_PROBE)
    result = run_suite(pytester, tiny_args, "--prunebench-epochs", "0", "--benchmark-json=out.json")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*test_schedule[[]gated[]]: latency median * ms is above max_latency_ms 1e-06 (*gated.yaml)*",
    ])
    result.stdout.fnmatch_lines(["*prunebench: 2 case(s) on CPU*",
                                 "case *top1 %*dense %*latency ms [[]95% CI[]]*speed-up [[]95% CI[]]*ONNX KB*",
                                 "test_schedule[[]filters[]] * [[]*-*[]] * [[]*-*[]] *x [[]*-*[]] *x *",
                                 "test_schedule[[]gated[]] *", "*latency ms = drift-corrected*", "95% CI: *"])
    document = json.loads((pytester.path / "out.json").read_text())
    records = {b["name"]: b for b in document["benchmarks"]}
    assert set(records) == {"test_schedule[filters]", "test_schedule[gated]"}  # a failed threshold keeps its record
    # pytest-benchmark's machine info, gathered once, in the background from the session's start
    assert (pytester.path / "cpuinfo-calls.txt").read_text().split() == ["prunebench-machine-info"]
    assert document["machine_info"]["node"] == platform.node() and document["machine_info"]["cpu"]["arch"]
    for record in records.values():
        info = record["extra_info"]
        assert set(info) >= EXTRA_INFO_KEYS, EXTRA_INFO_KEYS - set(info)
        assert "UNSERIALIZABLE" not in json.dumps(info)
        assert record["stats"]["rounds"] == 20 and len(record["stats"]["data"]) == 20
        assert 0 < record["stats"]["median"] < 1, "latency samples are in seconds"
        assert info["device"] == "CPU" and info["dataset"] == "synthetic" and info["epochs"] == 0
        assert info["top1_pruned"] == info["top1"], "0 epochs: the exported model is the pruned one"
        assert info["seconds.measure"] >= info["seconds.measure.accuracy"] + info["seconds.measure.latency"] > 0
        assert info["macs_dense"] == RESNET20_MACS
        low, high = info["latency_speedup_ci"]
        assert low <= info["latency_speedup"] <= high
        low, high = info["latency_ms_ci"]
        assert low <= info["latency_ms"] <= high
        low, high = info["latency_ms_rel_ci"]
        assert low <= info["latency_ms_rel"] <= high
        onnx.checker.check_model(info["onnx_path"], full_check=True)
        assert Path(info["onnx_path"]).stat().st_size == info["onnx_bytes"]
    assert records["test_schedule[filters]"]["extra_info"]["macs"] == FILTERS_MACS
    assert records["test_schedule[filters]"]["extra_info"]["sparsity.head_filters"] == 0.5
    assert records["test_schedule[gated]"]["extra_info"]["macs"] == CHANNELS_MACS

    compare = subprocess.run([str(Path(sys.executable).parent / "pytest-benchmark"), "compare",
                              str(pytester.path / "out.json")], capture_output=True, text=True, cwd=pytester.path)
    assert compare.returncode == 0, compare.stderr
    assert "test_schedule[filters]" in compare.stdout and "test_schedule[gated]" in compare.stdout


def test_a_rerun_reuses_the_baseline_and_keeps_record_names(pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    write_schedules(pytester.path, filters=FILTERS_SCHEDULE)
    first = run_suite(pytester, tiny_args, "--prunebench-epochs", "0", "--benchmark-json=first.json")
    second = run_suite(pytester, tiny_args, "--prunebench-epochs", "0", "--benchmark-json=second.json")
    first.assert_outcomes(passed=1)
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["*prunebench: dense resnet20: loaded from *"])

    def names(path: str) -> list[str]:
        return [(b["name"], b["fullname"]) for b in json.loads((pytester.path / path).read_text())["benchmarks"]]

    assert names("first.json") == names("second.json") == [
        ("test_schedule[filters]", "test_schedules.py::test_schedule[filters]")]


def test_several_cases_in_one_test_are_separate_records(pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    folder = write_schedules(pytester.path, filters=FILTERS_SCHEDULE, channels=CHANNELS_SCHEDULE)
    pytester.makepyfile(test_pair=f"""
        def test_pair(prunebench):
            first = prunebench.run({str(folder / "filters.yaml")!r})
            second = prunebench.run({str(folder / "channels.yaml")!r})
            assert first.macs == {FILTERS_MACS} and second.macs == {CHANNELS_MACS}
    """)
    result = pytester.runpytest_subprocess(*tiny_args, "--prunebench-epochs", "0", "--benchmark-json=out.json")
    result.assert_outcomes(passed=1)
    records = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert [b["name"] for b in records] == ["test_pair", "test_pair::channels"]


def test_autosave_compare_and_compare_fail_see_the_records(pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    write_schedules(pytester.path, filters=FILTERS_SCHEDULE)
    storage = f"--benchmark-storage=file://{pytester.path / 'storage'}"
    saved = run_suite(pytester, tiny_args, "--prunebench-epochs", "0", "--benchmark-autosave", storage)
    saved.assert_outcomes(passed=1)
    (run_file,) = (pytester.path / "storage").rglob("0001_*.json")
    compared = run_suite(pytester, tiny_args, "--prunebench-epochs", "0", "--benchmark-compare", storage)
    compared.assert_outcomes(passed=1)
    compared.stdout.fnmatch_lines_random(["*test_schedule[[]filters[]] (0001_*", "*test_schedule[[]filters[]] (NOW)*"])

    # Make the saved run impossibly fast: the gate must now report the current run as a regression.
    run = json.loads(run_file.read_text())
    for field in ("min", "max", "mean", "median"):
        run["benchmarks"][0]["stats"][field] = 1e-9
    run_file.write_text(json.dumps(run))
    gated = run_suite(pytester, tiny_args, "--prunebench-epochs", "0", "--benchmark-compare", storage,
                      "--benchmark-compare-fail=median:5%")
    assert gated.ret != 0
    output = pytest.LineMatcher(gated.stdout.lines + gated.stderr.lines)  # pytest-benchmark logs to stderr
    output.fnmatch_lines(["*Performance has regressed*", "*test_schedule[[]filters[]]*median*"])


def test_xdist_workers_records_reach_one_json_file(pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    write_schedules(pytester.path, filters=FILTERS_SCHEDULE, channels=CHANNELS_SCHEDULE)
    result = run_suite(pytester, tiny_args, "-n", "2", "--prunebench-epochs", "0", "--benchmark-json=out.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*prunebench: 2 case(s) on CPU*"])
    records = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert sorted(b["name"] for b in records) == ["test_schedule[channels]", "test_schedule[filters]"]
    assert all(len(b["stats"]["data"]) == 20 for b in records)
    # Each worker measured its own dense window; both cases are scaled to the session's one reference.
    references = {b["extra_info"]["latency_ms_ref"] for b in records}
    assert len(references) == 1 and next(iter(references)) > 0
    for record in records:
        info = record["extra_info"]
        assert info["latency_ms_rel"] == pytest.approx(info["latency_ms_ref"] / info["latency_speedup"])
